"""FORCEDENTRY samples: JBIG2 symbol-count overflows, standalone and inside PDFs.

Built from T.88 (segment layout) and ISO 32000 (streams, filters, object streams) and the
public description of CVE-2021-30860: a text region that refers to a 0xFFFF-symbol
dictionary 0x10001 times plus a small one, so a 32-bit sum of exported symbols wraps.
The segments carry the trigger structure only, no working exploit (no coded bitmaps).
Benign controls come from real encoders: Pillow's PDF writer, pikepdf with a fontTools
font, and JBIG2 streams within every bound.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Iterator, Sequence

from spywall.samples import Sample

MAGIC = b"\x97JB2\r\n\x1a\n"
OVERFLOW = frozenset({"jbig2-symbol-overflow"})
FLOOD = frozenset({"jbig2-refinement-flood"})
PAGE_INFO, END_OF_PAGE, END_OF_FILE = 48, 49, 51
_REF_FMT = {1: "B", 2: "H", 4: "I"}


# -- JBIG2 segments (T.88 7.2 and 7.4) -----------------------------------------------

Seg = tuple[bytes, bytes]


def segment(number: int, seg_type: int, data: bytes, refs: Sequence[int] = (), page: int = 1,
            long_form: bool | None = None, page4: bool = False) -> Seg:
    """One segment as (header, data); the header takes the short or long referred-to form."""
    out = struct.pack(">IB", number, seg_type | (0x40 if page4 else 0))
    n = len(refs)
    if long_form if long_form is not None else n > 4:
        out += struct.pack(">I", 0xE0000000 | n) + bytes((n + 8) // 8)
    else:
        out += bytes([n << 5])
    size = 1 if number <= 256 else 2 if number <= 65536 else 4
    out += struct.pack(f">{n}{_REF_FMT[size]}", *refs)
    out += struct.pack(">I", page) if page4 else bytes([page])
    return out + struct.pack(">I", len(data)), data


def join(segments: Sequence[Seg]) -> bytes:
    """Segments in sequential order, as a PDF /JBIG2Decode stream holds them."""
    return b"".join(h + d for h, d in segments)


def symbol_dict(exported: int, new: int | None = None, flags: int = 0) -> bytes:
    """Symbol dictionary data: flags, AT bytes as the flags ask, SDNUMEXSYMS, SDNUMNEWSYMS."""
    at = b""
    if not flags & 1:
        at += bytes(8 if (flags >> 10) & 3 == 0 else 2)
    if flags & 2 and not flags & 0x1000:
        at += bytes(4)
    count = exported if new is None else new
    return struct.pack(">H", flags) + at + struct.pack(">II", exported, count) + b"\x00\x5a"


def text_region() -> bytes:
    """Region info (1x1 at 0,0), text region flags 0 and one instance; no coded data."""
    return struct.pack(">IIIIBHI", 1, 1, 0, 0, 0, 0, 1) + b"\x00\x5a"


def page_info() -> bytes:
    return struct.pack(">IIIIBH", 8, 8, 0, 0, 0, 0)


def refinement_region() -> bytes:
    """Generic refinement region: region info, flags (template 1), no coded data."""
    return struct.pack(">IIIIBB", 1, 1, 0, 0, 2, 1) + b"\x00\x5a"


def jbig2_file(segments: Sequence[Seg], sequential: bool = True) -> bytes:
    """A standalone file with a page count; random access puts every data part last."""
    head = MAGIC + bytes([1 if sequential else 0]) + struct.pack(">I", 1)
    if sequential:
        return head + join(segments)
    return head + b"".join(h for h, _ in segments) + b"".join(d for _, d in segments)


def forcedentry_segments(text_type: int = 4, text_number: int = 4, first: int = 1,
                         page: int = 1) -> list[Seg]:
    """Page info, a 0xFFFF-symbol and a 3-symbol dictionary, and a text region referring
    to the first 0x10001 times and the second once (long form)."""
    big, small = first + 1, first + 2
    return [
        segment(first, PAGE_INFO, page_info(), page=page),
        segment(big, 0, symbol_dict(0xFFFF), page=page),
        segment(small, 0, symbol_dict(3, flags=0x0002), page=page),
        segment(text_number, text_type, text_region(), [big] * 0x10001 + [small], page=page,
                page4=text_number > 255),
    ]


def short_form_segments() -> list[Seg]:
    """Two dictionaries of 0x80000001 symbols, referred to once each (short form)."""
    return [
        segment(1, PAGE_INFO, page_info()),
        segment(2, 0, symbol_dict(0x80000001, 1, flags=0x0001)),
        segment(3, 0, symbol_dict(0x80000001, 1, flags=0x0400)),
        segment(4, 6, text_region(), [2, 3]),
    ]


def benign_segments(page: int = 1) -> list[Seg]:
    return [
        segment(1, PAGE_INFO, page_info(), page=page),
        segment(2, 0, symbol_dict(12), page=page),
        segment(3, 6, text_region(), [2], page=page),
    ]


def refinement_flood(count: int = 1200, first: int = 10) -> list[Seg]:
    return [segment(first + i, 42, refinement_region()) for i in range(count)]


def trailer(number: int) -> list[Seg]:
    return [segment(number, END_OF_PAGE, b""), segment(number + 1, END_OF_FILE, b"", page=0)]


# -- PDF filter encoders (ISO 32000-1 7.4) ------------------------------------------------

def lzw_encode(data: bytes, early: int = 1) -> bytes:
    """LZW with a clear code first and whenever the table nears 4096, EarlyChange ``early``.

    A code's width is what the decoder's table size calls for when it reads that code:
    the decoder adds an entry for every code but the first after a clear.
    """
    table = {bytes([i]): i for i in range(256)}
    out, acc, bits, since_clear = bytearray(), 0, 0, 0

    def emit(code: int) -> None:
        nonlocal acc, bits, since_clear
        size = 258 + max(0, since_clear - 1)
        width = 9
        while width < 12 and size + early >= (1 << width):
            width += 1
        since_clear = 0 if code == 256 else since_clear + 1
        acc, bits = (acc << width) | code, bits + width
        while bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
        acc &= (1 << bits) - 1

    emit(256)
    word = b""
    for byte in data:
        candidate = word + bytes([byte])
        if candidate in table:
            word = candidate
            continue
        emit(table[word])
        table[candidate] = len(table) + 2
        word = bytes([byte])
        if len(table) + 2 >= 4000:
            emit(256)
            table = {bytes([i]): i for i in range(256)}
    if word:
        emit(table[word])
    emit(257)
    if bits:
        out.append((acc << (8 - bits)) & 0xFF)
    return bytes(out)


def run_length_encode(data: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(data), 128):
        chunk = data[i : i + 128]
        out += bytes([len(chunk) - 1]) + chunk
    return bytes(out + b"\x80")


ENCODERS = {
    "FlateDecode": zlib.compress,
    "ASCIIHexDecode": lambda d: d.hex().encode() + b">",
    "ASCII85Decode": lambda d: base64.a85encode(d) + b"~>",
    "LZWDecode": lzw_encode,
    "RunLengthDecode": run_length_encode,
}


def encode(data: bytes, filters: Sequence[str]) -> bytes:
    """Encode ``data`` so that decoding through ``filters`` (in order) gives it back."""
    for name in reversed(filters):
        data = ENCODERS[name](data)
    return data


# -- PDFs (pikepdf) -----------------------------------------------------------------------

def jbig2_pdf(page_segments: bytes, filters: Sequence[str] = (), globals_segments: bytes = b"",
              objstm: bool = False, user_password: str | None = None) -> bytes:
    """One page showing one JBIG2 image XObject, ``filters`` in front of /JBIG2Decode."""
    import pikepdf

    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(72, 72))
    img = pikepdf.Stream(pdf, encode(page_segments, filters))
    img.Type, img.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    img.Width, img.Height, img.BitsPerComponent = 8, 8, 1
    img.ColorSpace = pikepdf.Name.DeviceGray
    names = [pikepdf.Name("/" + f) for f in (*filters, "JBIG2Decode")]
    img.Filter = names[0] if len(names) == 1 else pikepdf.Array(names)
    if globals_segments:
        glob = pdf.make_indirect(pikepdf.Stream(pdf, zlib.compress(globals_segments)))
        glob.Filter = pikepdf.Name.FlateDecode
        parms = pikepdf.Dictionary(JBIG2Globals=glob)
        nulls = [None] * len(filters)
        img.DecodeParms = (pdf.make_indirect(parms) if not nulls
                           else pikepdf.Array([*nulls, parms]))
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=pdf.make_indirect(img)))
    page.Contents = pdf.make_stream(b"q 72 0 0 72 0 0 cm /Im0 Do Q")
    return save(pdf, objstm, user_password)


def save(pdf: object, objstm: bool = False, user_password: str | None = None) -> bytes:
    import pikepdf

    assert isinstance(pdf, pikepdf.Pdf)
    buf = io.BytesIO()
    mode = pikepdf.ObjectStreamMode.generate if objstm else pikepdf.ObjectStreamMode.disable
    if user_password is None:
        pdf.save(buf, compress_streams=False, object_stream_mode=mode,
                 stream_decode_level=pikepdf.StreamDecodeLevel.none)
    else:  # qpdf re-encodes what it can decode; a /JBIG2Decode stream it leaves alone
        pdf.save(buf, compress_streams=False, object_stream_mode=mode,
                 encryption=pikepdf.Encryption(owner="owner", user=user_password))
    return buf.getvalue()


def image_object(segments: bytes) -> bytes:
    """The body of a JBIG2 image XObject (``<< ... >> stream ... endstream``)."""
    head = (b"<< /Type /XObject /Subtype /Image /Width 8 /Height 8 /BitsPerComponent 1 "
            b"/ColorSpace /DeviceGray /Filter /JBIG2Decode /Length %d >>\nstream\n")
    return head % len(segments) + segments + b"\nendstream"


def incremental_update(data: bytes, objects: dict[int, bytes], xref: bool = True) -> bytes:
    """Append new definitions of ``objects`` (number -> body) as an update section.

    Without ``xref`` the definitions are appended bare, after the last ``%%EOF``: only a
    reader that rebuilds the table by scanning would find them.
    """
    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        root, size = pdf.Root.objgen[0], int(pdf.trailer.Size)
    prev = int(data[data.rindex(b"startxref") + 9 :].split()[0])
    out = bytearray(data)
    rows = []
    for num, body in sorted(objects.items()):
        rows.append(b"%d 1\n%010d 00000 n\r\n" % (num, len(out)))
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    if xref:
        at = len(out)
        out += b"xref\n" + b"".join(rows)
        out += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\n" % (size, root, prev)
        out += b"startxref\n%d\n%%%%EOF\n" % at
    return bytes(out)


def image_number(data: bytes) -> int:
    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        return int(pdf.pages[0].Resources.XObject.Im0.objgen[0])


def pillow_pdf() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(buf, "PDF", resolution=72)
    return buf.getvalue()


def truetype_font() -> bytes:
    """A small TrueType font made with fontTools (no hinting instructions)."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    pen = TTGlyphPen(None)
    pen.moveTo((100, 0))
    pen.lineTo((100, 700))
    pen.lineTo((500, 700))
    pen.closePath()
    glyph = pen.glyph()
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder([".notdef", "A"])
    fb.setupCharacterMap({65: "A"})
    fb.setupGlyf({".notdef": TTGlyphPen(None).glyph(), "A": glyph})
    fb.setupHorizontalMetrics({".notdef": (600, 0), "A": (600, 100)})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "Spywall Test", "styleName": "Regular"})
    fb.setupOS2()
    fb.setupPost()
    buf = io.BytesIO()
    fb.save(buf)
    return buf.getvalue()


def text_pdf() -> bytes:
    """A page of text in an embedded TrueType font (FontFile2), made with pikepdf."""
    import pikepdf

    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(200, 100))
    font_file = pdf.make_stream(truetype_font())
    descriptor = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor, FontName=pikepdf.Name("/SpywallTest"), Flags=32,
        FontBBox=[0, -200, 1000, 800], ItalicAngle=0, Ascent=800, Descent=-200, CapHeight=700,
        StemV=80, FontFile2=font_file))
    font = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.TrueType,
        BaseFont=pikepdf.Name("/SpywallTest"), FirstChar=65, LastChar=65, Widths=[600],
        FontDescriptor=descriptor))
    helv = pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                              BaseFont=pikepdf.Name.Helvetica)
    page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font, F2=helv))
    page.Contents = pdf.make_stream(b"BT /F1 24 Tf 10 50 Td (AAA) Tj /F2 12 Tf (hi) Tj ET")
    return save(pdf, objstm=True)


def flate_bomb_pdf(mib: int = 64) -> bytes:
    """An embedded file whose Flate stream inflates to ``mib`` MiB of zeros."""
    import pikepdf

    comp = zlib.compressobj(9)
    zeros = bytes(1 << 20)
    body = b"".join(comp.compress(zeros) for _ in range(mib)) + comp.flush()
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(72, 72))
    bomb = pdf.make_indirect(pikepdf.Stream(pdf, body))
    bomb.Type, bomb.Filter = pikepdf.Name.EmbeddedFile, pikepdf.Name.FlateDecode
    pdf.Root.Names = pikepdf.Dictionary(EmbeddedFiles=pikepdf.Dictionary(Names=[
        "zeros.bin", pikepdf.Dictionary(Type=pikepdf.Name.Filespec, F="zeros.bin",
                                        EF=pikepdf.Dictionary(F=bomb))]))
    return save(pdf)


def samples() -> Iterator[Sample]:
    yield from _standalone()
    yield from _pdfs()


def _standalone() -> Iterator[Sample]:
    for t, num in ((4, 4), (6, 300), (7, 70000)):
        yield Sample(f"forcedentry-type{t}.jbig2",
                     jbig2_file([*forcedentry_segments(t, num), *trailer(num + 1)]), OVERFLOW,
                     f"0xFFFF symbols x 0x10001 + 3 in a type {t} text region, long form")
    yield Sample("forcedentry-random-access.jbig2",
                 jbig2_file([*forcedentry_segments(), *trailer(5)], sequential=False), OVERFLOW,
                 "random-access organisation: every header first, data parts after")
    yield Sample("short-form-overflow.jbig2", jbig2_file([*short_form_segments(), *trailer(5)]),
                 OVERFLOW, "two dictionaries of 0x80000001 symbols, short form")
    yield Sample("refinement-flood.jbig2",
                 jbig2_file([*benign_segments(), *refinement_flood(), *trailer(2000)]), FLOOD,
                 "1200 generic refinement region segments")
    yield Sample("benign-small-dict.jbig2", jbig2_file([*benign_segments(), *trailer(4)]),
                 frozenset(), "a 12-symbol dictionary referred to once")


def _pdfs() -> Iterator[Sample]:
    attack = join(forcedentry_segments())
    yield Sample("forcedentry-plain.pdf", jbig2_pdf(attack), OVERFLOW, "/JBIG2Decode alone")
    yield Sample("forcedentry-flate.pdf", jbig2_pdf(attack, ["FlateDecode"]), OVERFLOW,
                 "[/FlateDecode /JBIG2Decode]")
    yield Sample("forcedentry-objstm.pdf", jbig2_pdf(attack, ["FlateDecode"], objstm=True),
                 OVERFLOW, "dictionaries in an object stream, xref stream")
    for chain in (["ASCIIHexDecode"], ["ASCII85Decode", "FlateDecode"], ["LZWDecode"],
                  ["RunLengthDecode"]):
        label = "-".join(c.removesuffix("Decode").lower() for c in chain)
        yield Sample(f"forcedentry-{label}.pdf", jbig2_pdf(attack, chain), OVERFLOW,
                     f"{chain} in front of /JBIG2Decode")
    dicts = join(forcedentry_segments(page=0)[1:3])
    text = join([segment(1, PAGE_INFO, page_info()), forcedentry_segments()[3]])
    yield Sample("forcedentry-globals.pdf", jbig2_pdf(text, ["FlateDecode"], dicts), OVERFLOW,
                 "dictionaries in /JBIG2Globals, text region in the page stream")
    flood = join([*forcedentry_segments(), *refinement_flood()])
    yield Sample("forcedentry.gif", jbig2_pdf(flood, ["FlateDecode"], objstm=True),
                 OVERFLOW | FLOOD, "FORCEDENTRY-style: a PDF named .gif, overflow and logic")
    base = jbig2_pdf(attack)
    benign_image = {image_number(base): image_object(join(benign_segments()))}
    yield Sample("forcedentry-shadowed.pdf", incremental_update(base, benign_image), OVERFLOW,
                 "the trigger in a revision an incremental update replaced")
    plain = jbig2_pdf(join(benign_segments()))
    yield Sample("forcedentry-orphan.pdf",
                 incremental_update(plain, {image_number(plain): image_object(attack)},
                                    xref=False), OVERFLOW,
                 "the trigger in a definition after %%EOF that no table points to")
    yield Sample("benign-incremental.pdf", incremental_update(plain, {
        image_number(plain): image_object(join(benign_segments()))}), frozenset(),
                 "an ordinary incremental update")
    yield Sample("forcedentry-empty-password.pdf", jbig2_pdf(attack, user_password=""),
                 OVERFLOW, "encrypted with the empty user password: still examined")
    locked = jbig2_pdf(attack, user_password="secret")  # noqa: S106 (a sample's password)
    yield Sample("locked.pdf", locked, frozenset({"incomplete-examination"}),
                 "needs a password: an 'unsupported' error entry, not examined, so not "
                 "clean (incomplete examination)")
    yield Sample("benign-jbig2.pdf", jbig2_pdf(join(benign_segments()), ["FlateDecode"]),
                 frozenset(), "a small dictionary referred to once")
    yield Sample("benign-pillow.pdf", pillow_pdf(), frozenset(), "Pillow's PDF writer (DCT)")
    yield Sample("benign-text.pdf", text_pdf(), frozenset(), "text, FontFile2, object streams")
    yield Sample("flate-bomb.pdf", flate_bomb_pdf(), frozenset({"incomplete-examination"}),
                 "64 MiB of zeros in an embedded file: a 'limit' error entry, and (fail "
                 "closed) an incomplete-examination finding")
