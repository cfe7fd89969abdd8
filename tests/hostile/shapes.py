"""Generators of hostile input shapes: each hides a crafted exploit behind something
that makes a scanner stop early (a cap, a loop, a huge count), or tries to hang it or
grow it to gigabytes. The exploits come from ``spywall.samples``; the shapes are built
here from the format specifications (APPNOTE for zip, ISO 32000 for PDF, GIF89a, RIFF).

Each generator returns bytes; the tests write them to files and run the real CLI.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

from spywall.samples import gif as gif_samples
from spywall.samples import pdf_jbig2
from spywall.samples import webp as webp_samples
from spywall.samples.containers import zip_of

MiB = 1 << 20


def webp_exploit() -> bytes:
    """BLASTPASS: a lossless WebP whose Huffman tables overflow (CVE-2023-4863)."""
    return webp_samples.riff(webp_samples.chunk(b"VP8L", webp_samples.plain()))


def jbig2_exploit() -> bytes:
    """FORCEDENTRY: JBIG2 segments whose symbol count overflows (CVE-2021-30860)."""
    return pdf_jbig2.join(pdf_jbig2.forcedentry_segments())


def deflate_zeros(mib: int, level: int = 9) -> bytes:
    """A raw-or-zlib-free deflate stream (zlib wrapper) of ``mib`` MiB of zeros."""
    comp = zlib.compressobj(level)
    block = bytes(MiB)
    return b"".join(comp.compress(block) for _ in range(mib)) + comp.flush()


def _raw_deflate_zeros(mib: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(MiB)
    return b"".join(comp.compress(block) for _ in range(mib)) + comp.flush()


# -- zip ------------------------------------------------------------------------------

def _zip_entry(name: bytes, method: int, crc: int, comp: bytes, size: int
               ) -> tuple[bytes, bytes]:
    """(local header + data, central header without its offset field filled)."""
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0, crc,
                        len(comp), size, len(name), 0) + name + comp
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 0,
                          crc, len(comp), size, len(name), 0, 0, 0, 0, 0, 0) + name
    return local, central


def _central_at(central: bytes, offset: int) -> bytes:
    return central[:42] + struct.pack("<I", offset) + central[46:]


def zip_ratio_bomb_then(member: bytes, name: str = "exploit.webp", mib: int = 300) -> bytes:
    """A zip whose first member inflates ``mib`` MiB of zeros (ratio ~1000:1), then
    ``member`` stored. Only the member count and sizes are real; the CRC of the bomb is
    not computed (no reader gets that far)."""
    crc_zero = 0
    for _ in range(mib):
        crc_zero = zlib.crc32(bytes(MiB), crc_zero)
    local1, central1 = _zip_entry(b"zeros.bin", 8, crc_zero, _raw_deflate_zeros(mib),
                                  mib * MiB)
    local2, central2 = _zip_entry(name.encode(), 0, zlib.crc32(member), member, len(member))
    body = local1 + local2
    cd = _central_at(central1, 0) + _central_at(central2, len(local1))
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, len(cd), len(body), 0)
    return body + cd + eocd


def zip_then_big_member(member: bytes, name: str = "exploit.webp", mib: int = 240
                        ) -> bytes:
    """A zip of ``member`` stored, then a member that inflates ``mib`` MiB of zeros at
    a ratio of ~230:1 (deflate level 1), within every cap of the defaults: only memory
    can stop it."""
    comp = zlib.compressobj(1, zlib.DEFLATED, -15)
    block = bytes(MiB)
    deflated = b"".join(comp.compress(block) for _ in range(mib)) + comp.flush()
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    local1, central1 = _zip_entry(name.encode(), 0, zlib.crc32(member), member, len(member))
    local2, central2 = _zip_entry(b"zeros.bin", 8, crc, deflated, mib * MiB)
    body = local1 + local2
    cd = _central_at(central1, 0) + _central_at(central2, len(local1))
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, len(cd), len(body), 0)
    return body + cd + eocd


def zip_many_entries(member: bytes, entries: int = 3_000_000) -> bytes:
    """A zip whose central directory holds ``entries`` entries: the first is ``member``
    (a real stored file), the others are folder entries ``d/`` that point at it."""
    local, central = _zip_entry(b"exploit.webp", 0, zlib.crc32(member), member, len(member))
    _, folder = _zip_entry(b"d/", 0, 0, b"", 0)
    folder = _central_at(folder, 0)
    cd = _central_at(central, 0) + folder * (entries - 1)
    count = min(entries, 0xFFFF)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(cd),
                       len(local), 0)
    return local + cd + eocd


# -- GIF / WebP -----------------------------------------------------------------------

def gif_11932_then_comments(blocks: int = 200_000) -> bytes:
    """CVE-2019-11932's frames, then ``blocks`` comment extensions, then the trailer."""
    head = gif_samples.poc_11932()[:-1]  # without its trailer
    return head + b"\x21\xfe\x01a\x00" * blocks + b"\x3b"


def webp_blastpass_then_frames(frames: int = 100_000) -> bytes:
    """An animated WebP: a BLASTPASS frame, then ``frames`` small benign frames."""
    w = webp_samples
    bad = w.anmf(16, 16, w.chunk(b"VP8L", w.plain()))
    good = w.anmf(16, 16, w.chunk(b"VP8L", w.benign_vp8l()))
    anim = w.chunk(b"ANIM", bytes(4) + struct.pack("<H", 0))
    return w.riff(w.vp8x(16, 16, 0x02), anim, bad + good * frames)


# -- TIFF -----------------------------------------------------------------------------

def tiff_many_long_tags(tags: int = 127, count: int = 1_000_000, block_mib: int = 4) -> bytes:
    """A little-endian TIFF whose IFD holds ``tags`` private tags of ``count`` LONGs each,
    all pointing at the same ``block_mib`` MiB value block."""
    block_at = 8
    block = bytes(block_mib * MiB)
    ifd_at = block_at + len(block)
    entries = [(256, 3, 1, 16), (257, 3, 1, 16)]
    entries += [(0xC000 + i, 4, count, block_at) for i in range(tags)]
    ifd = struct.pack("<H", len(entries))
    ifd += b"".join(struct.pack("<HHII", *e) for e in sorted(entries)) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_at) + block + ifd


# -- PDF ------------------------------------------------------------------------------

def _image(segments: bytes) -> bytes:
    return (b"<< /Type /XObject /Subtype /Image /Width 8 /Height 8 /BitsPerComponent 1 "
            b"/ColorSpace /DeviceGray /Filter /JBIG2Decode /Length %d >>\nstream\n"
            % len(segments)) + segments + b"\nendstream"


def _stream(head: bytes, data: bytes) -> bytes:
    return b"<< " + head + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def raw_pdf(objects: dict[int, bytes], xref: str = "table",
            type2: dict[int, tuple[int, int]] | None = None,
            padding_mib: int = 0) -> bytes:
    """A PDF of ``objects`` (number -> body), object 1 the catalog.

    ``xref="table"``: a classic table. ``xref="stream"``: a cross-reference stream
    (/W [1 4 2]) with ``type2`` entries (object -> (object stream, index)); its data is
    Flate-compressed with ``padding_mib`` MiB of free entries (zeros) after the real rows
    (compressed piece by piece: the padding is never held whole).
    """
    out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objects[num] + b"\nendobj\n"
    type2 = type2 or {}
    size = max([*objects, *type2]) + 2
    if xref == "table":
        rows = b"0000000000 65535 f\r\n" + b"".join(
            b"%010d 00000 n\r\n" % offsets[n] if n in offsets else b"0000000000 65535 f\r\n"
            for n in range(1, size))
        at = len(out)
        out += b"xref\n0 %d\n" % size + rows
        out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, at)
        return out
    xnum = size - 1
    offsets[xnum] = len(out)
    rows = b""
    for n in range(size):
        if n in offsets:
            rows += struct.pack(">BIH", 1, offsets[n], 0)
        elif n in type2:
            rows += struct.pack(">BIH", 2, *type2[n])
        else:
            rows += struct.pack(">BIH", 0, 0, 0)
    comp = zlib.compressobj(1)  # quick: only the inflated size matters here
    padding = 7 * ((padding_mib * MiB) // 7)
    data = comp.compress(rows) + b"".join(comp.compress(bytes(min(MiB, padding - at)))
                                          for at in range(0, padding, MiB))
    data += comp.flush()
    total = size + padding // 7
    head = b"/Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Filter /FlateDecode" % total
    out += b"%d 0 obj\n" % xnum + _stream(head, data) + b"\nendobj\n"
    out += b"startxref\n%d\n%%%%EOF\n" % offsets[xnum]
    return out


def _page_objects(image: bytes) -> dict[int, bytes]:
    return {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] "
           b"/Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>",
        4: image,
        5: _stream(b"", b"q 72 0 0 72 0 0 cm /Im0 Do Q"),
    }


def pdf_with_jbig2() -> bytes:
    """A one-page PDF whose image is FORCEDENTRY's JBIG2 stream, nothing else hostile."""
    return raw_pdf(_page_objects(_image(jbig2_exploit())))


def pdf_objstm_bomb_and_jbig2(mib: int = 300) -> bytes:
    """FORCEDENTRY's JBIG2 image, and an object stream no page refers to whose Flate
    data inflates to ``mib`` MiB (the cross-reference stream lists one object in it)."""
    objs = _page_objects(_image(jbig2_exploit()))
    body = b"7 0 " + bytes(16)
    comp = zlib.compressobj(9)
    data = comp.compress(body) + b"".join(comp.compress(bytes(MiB)) for _ in range(mib))
    data += comp.flush()
    objs[6] = _stream(b"/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode", data)
    return raw_pdf(objs, xref="stream", type2={7: (6, 0)})


def pdf_page_tree_loop_and_jbig2() -> bytes:
    """FORCEDENTRY's JBIG2 image on a page whose page tree refers to itself."""
    objs = _page_objects(_image(jbig2_exploit()))
    objs[2] = b"<< /Type /Pages /Kids [3 0 R 2 0 R 6 0 R] /Count 3 >>"
    objs[6] = b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R 6 0 R] /Count 2 >>"
    return raw_pdf(objs)


def pdf_xref_stream_bomb_and_jbig2(mib: int = 1024) -> bytes:
    """FORCEDENTRY's JBIG2 image in a PDF whose cross-reference stream inflates to
    ``mib`` MiB (free entries after the real rows)."""
    return raw_pdf(_page_objects(_image(jbig2_exploit())), xref="stream", padding_mib=mib)


def pdf_jbig2_then_segments(segments: int = 1_000_001) -> bytes:
    """FORCEDENTRY's segments, then ``segments`` end-of-stripe segments, in one
    Flate-compressed /JBIG2Decode image (the segment cap is a million)."""
    head, data = pdf_jbig2.segment(4000, 50, bytes(4))
    body = zlib.compress(jbig2_exploit() + (head + data) * segments, 9)
    image = _stream(b"/Type /XObject /Subtype /Image /Width 8 /Height 8 /BitsPerComponent 1 "
                    b"/ColorSpace /DeviceGray /Filter [/FlateDecode /JBIG2Decode]", body)
    return raw_pdf(_page_objects(image))


def pdf_flate_bomb_then_jbig2(mib: int = 300) -> bytes:
    """An embedded file (object 4) whose Flate data inflates to ``mib`` MiB, then
    FORCEDENTRY's JBIG2 image (object 9, no filter: it costs no decompression budget)."""
    objs = _page_objects(_image(jbig2_exploit()))
    objs[9] = objs.pop(4)
    objs[3] = objs[3].replace(b"4 0 R", b"9 0 R")
    objs[4] = _stream(b"/Type /EmbeddedFile /Filter /FlateDecode", deflate_zeros(mib))
    return raw_pdf(objs)


def pdf_budget_spent_then_jbig2(mib: int = 32) -> bytes:
    """An embedded file that inflates to exactly ``mib`` MiB at a ratio under 1000:1
    (spending a ``--max-decompressed mib`` budget), a Flate bomb that then fails at once,
    and FORCEDENTRY's JBIG2 image with no filter (object 9)."""
    pattern = bytes((i * 37 + 11) % 251 for i in range(251))
    block = (pattern * (MiB // len(pattern) + 1))[:MiB]
    comp = zlib.compressobj(9)
    spend = b"".join(comp.compress(block) for _ in range(mib)) + comp.flush()
    objs = _page_objects(_image(jbig2_exploit()))
    objs[9] = objs.pop(4)
    objs[3] = objs[3].replace(b"4 0 R", b"9 0 R")
    objs[4] = _stream(b"/Type /EmbeddedFile /Filter /FlateDecode", spend)
    objs[6] = _stream(b"/Type /EmbeddedFile /Filter /FlateDecode", deflate_zeros(8))
    return raw_pdf(objs)


def pdf_embedding(name: str, payload: bytes) -> bytes:
    """A one-page PDF holding ``payload`` as an embedded file (no filter)."""
    objs = {
        1: b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(%s) "
           b"<< /Type /Filespec /F (%s) /EF << /F 4 0 R >> >>] >> >> >>"
           % (name.encode(), name.encode()),
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>",
        4: _stream(b"/Type /EmbeddedFile", payload),
    }
    return raw_pdf(objs)


def _bomb_zip() -> bytes:
    """A 40 MiB bomb: the nested cases run with --max-decompressed 32 (the per-stream
    cap follows it, so the bomb spends the whole budget), which keeps the suite quick."""
    return zip_ratio_bomb_then(webp_exploit(), mib=40)


# The same shapes inside each other container: (name, generator, the exploit rule).
NESTED: list[tuple[str, Callable[[], bytes], str]] = [
    ("zip-in-pdf.pdf", lambda: pdf_embedding("pass.zip", _bomb_zip()), "webp-huffman-overflow"),
    ("pdf-in-zip.zip", lambda: zip_of({"doc.pdf": pdf_objstm_bomb_and_jbig2(40)},
                                      compression=0), "jbig2-symbol-overflow"),
    ("xref-pdf-in-zip.zip", lambda: zip_of({"doc.pdf": pdf_xref_stream_bomb_and_jbig2()}),
     "jbig2-symbol-overflow"),
    ("gif-in-zip.zip", lambda: zip_of({"a.gif": gif_11932_then_comments()}),
     "gif-zero-area-frame"),
    ("webp-in-pdf.pdf", lambda: pdf_embedding("a.webp", webp_blastpass_then_frames()),
     "webp-huffman-overflow"),
    ("zip-in-zip.zip", lambda: zip_of({"inner.zip": _bomb_zip()}, compression=0),
     "webp-huffman-overflow"),
    ("many-entries-zip-in-pdf.pdf",
     lambda: pdf_embedding("x.zip", zip_many_entries(webp_exploit(), 100_000)),
     "webp-huffman-overflow"),
]
