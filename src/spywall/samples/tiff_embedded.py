"""CVE-2025-43300 hidden where decoders still find a TIFF: MakerNotes, Exif, thumbnails.

The payload is the raw IFD of ``tiff_dng`` (SamplesPerPixel 2, Compression 7, a lossless
JPEG whose SOF3 declares one component); its clean twin declares two. Each sample hides
it one way: in a MakerNote IFD of each layout (a TIFF of its own after "Nikon\\0" or
"HUAWEI\\0\\0", an IFD counted from the note after "Apple iOS\\0", "FUJIFILM", "OLYMPUS\\0",
"OM SYSTEM\\0" or "PENTAX \\0" (the last two with their own byte order), an Olympus
sub-directory entry of type IFD, an IFD counted from the file after "SONY DSC ", Nikon
type 2's "Nikon\\0\\1", "LEICA", "QVC", "EPSON", "SANYO" or with no prefix, as Canon writes,
and one with no prefix counted from the note), in the original MakerNote a DNG keeps in
DNGPrivateData (Nikon's; a Canon-style one with the original file's offsets), in a DNG
preview's JPEG strip's Exif, in a JPEG's APP1
Exif (Pillow writes the JPEG), in a PNG's eXIf and a WebP's EXIF chunk, in a TIFF's JPEG
thumbnail whose Exif holds it, in a HEIF
``Exif`` item, and in a PDF image (DCTDecode) whose JPEG carries it. MakerNote layouts
follow public descriptions of them (ExifTool's and exiv2's tag documentation).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator

from spywall.formats import tiff as t
from spywall.samples import Sample
from spywall.samples import heif as hs
from spywall.samples.tiff_dng import (
    BYTE,
    DNG_TAGS,
    LONG,
    SHORT,
    UNDEFINED,
    TiffWriter,
    dng_with,
    ljpeg,
    raw_ifd,
)

HIT = frozenset({"dng-lossless-jpeg-components"})
NONE: frozenset[str] = frozenset()


def stream(bad: bool) -> bytes:
    return ljpeg(16, 8, 1 if bad else 2)


def payload_dng(bad: bool, little: bool = True) -> bytes:
    return dng_with([stream(bad)], little=little)


def _with_note(note: Callable[[TiffWriter], bytes], little: bool = True) -> bytes:
    """IFD0 -> EXIF IFD -> MakerNote (UNDEFINED) built by ``note`` in the same file."""
    w = TiffWriter(little)
    body = note(w)
    exif = w.ifd({t.MAKER_NOTE: (UNDEFINED, body), 0x9000: (UNDEFINED, b"0232")})
    ifd0 = w.ifd({t.IMAGE_WIDTH: (LONG, (8,)), t.IMAGE_LENGTH: (LONG, (8,)),
                  t.EXIF_IFD: (LONG, (exif,))})
    return w.finish(ifd0)


IFD_TYPE = 13  # a makers' sub-directory pointer (Olympus's Equipment, 0x2010, and others)
OLYMPUS_EQUIPMENT = 0x2010


def _sub_ifd_entry(order: str, sub: int, tag: int = t.SUB_IFDS, typ: int = LONG) -> bytes:
    """An IFD of one entry, ``tag`` (SubIFDs) -> ``sub``, and no next IFD."""
    return (struct.pack(f"{order}H", 1) + struct.pack(f"{order}HHII", tag, typ, 1, sub)
            + struct.pack(f"{order}I", 0))


def rebased_note(prefix: bytes, at: int, bad: bool, little: bool,
                 pointer: tuple[int, int] = (t.SUB_IFDS, LONG)) -> bytes:
    """A note whose IFD (at ``at``) counts offsets from the note's start: built as a TIFF
    whose first 8 bytes become the first 8 of ``prefix``; its one entry (``pointer``: tag,
    type) leads to the raw IFD."""
    w = TiffWriter(little)
    w.buf += prefix[8:]
    assert len(w.buf) <= at
    w.buf += bytes(at - len(w.buf))
    slot = len(w.buf)
    w.buf += bytes(18)
    sub = w.ifd(raw_ifd(w, (16, 8), 2, [stream(bad)]))
    w.buf[slot : slot + 18] = _sub_ifd_entry(w.order, sub, *pointer)
    return prefix[:8] + bytes(w.buf[8:])


def based_note(bad: bool, little: bool = True, base: int = 0) -> bytes:
    """A note that is one IFD with no prefix, its offsets counted from ``base`` bytes
    before the note's start (0: from the note itself, as some Samsung phones and editors
    write; a DNGPrivateData note: from where it lay in the original file)."""
    w = TiffWriter(little)
    w.buf = bytearray(base)
    slot = w.blob(bytes(18))
    sub = w.ifd(raw_ifd(w, (16, 8), 2, [stream(bad)]))
    w.buf[slot : slot + 18] = _sub_ifd_entry(w.order, sub)
    return bytes(w.buf[base:])


def dng_private(note: bytes, original: int, little: bool = True) -> bytes:
    """A DNG whose IFD0 keeps ``note`` in DNGPrivateData, as found at ``original``."""
    record = (b"Adobe\x00MakN" + struct.pack(">I", len(note) + 6) + (b"II" if little else b"MM")
              + struct.pack(">I", original) + note)
    w = TiffWriter(little)
    raw = w.ifd(raw_ifd(w, (16, 8), 2, [stream(False)]))
    return w.finish(w.ifd(DNG_TAGS | {t.NEW_SUBFILE_TYPE: (LONG, (1,)),
                                      t.IMAGE_WIDTH: (LONG, (8,)), t.IMAGE_LENGTH: (LONG, (8,)),
                                      t.SUB_IFDS: (LONG, (raw,)),
                                      t.DNG_PRIVATE_DATA: (BYTE, record)}))


def dng_with_preview(jpeg: bytes) -> bytes:
    """A clean DNG with a second SubIFD: a preview whose one strip is ``jpeg``."""
    w = TiffWriter()
    at = w.blob(jpeg)
    preview = w.ifd({t.NEW_SUBFILE_TYPE: (LONG, (1,)), t.IMAGE_WIDTH: (LONG, (16,)),
                     t.IMAGE_LENGTH: (LONG, (16,)), t.BITS_PER_SAMPLE: (SHORT, (8, 8, 8)),
                     t.COMPRESSION: (SHORT, (t.LOSSLESS_JPEG,)),
                     t.SAMPLES_PER_PIXEL: (SHORT, (3,)), 0x0106: (SHORT, (6,)),
                     t.STRIP_OFFSETS: (LONG, (at,)), t.ROWS_PER_STRIP: (LONG, (16,)),
                     t.STRIP_BYTE_COUNTS: (LONG, (len(jpeg),))})
    raw = w.ifd(raw_ifd(w, (16, 8), 2, [stream(False)]))
    return w.finish(w.ifd(DNG_TAGS | {t.NEW_SUBFILE_TYPE: (LONG, (1,)),
                                      t.IMAGE_WIDTH: (LONG, (8,)), t.IMAGE_LENGTH: (LONG, (8,)),
                                      t.SUB_IFDS: (LONG, (raw, preview))}))


def _fixed(note: bytes) -> Callable[[TiffWriter], bytes]:
    return lambda _w: note


def in_file_note(prefix: bytes, bad: bool) -> Callable[[TiffWriter], bytes]:
    """A note whose IFD follows ``prefix`` and counts offsets from the file's header."""
    def build(w: TiffWriter) -> bytes:
        sub = w.ifd(raw_ifd(w, (16, 8), 2, [stream(bad)]))
        return prefix + _sub_ifd_entry(w.order, sub)
    return build


def aoc_note(mark: bytes, bad: bool) -> Callable[[TiffWriter], bytes]:
    """A Pentax "AOC\\0" note naming its byte order (``mark``: b"MM" or b"II"): its IFD
    and everything under it in that order, offsets counted from the file's header."""

    def build(w: TiffWriter) -> bytes:
        saved, w.order = w.order, ">" if mark == b"MM" else "<"
        sub = w.ifd(raw_ifd(w, (16, 8), 2, [stream(bad)]))
        body = b"AOC\x00" + mark + _sub_ifd_entry(w.order, sub)
        w.order = saved
        return body

    return build


def jpeg_with_exif(tiff: bytes) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 150)).save(buf, "JPEG", exif=b"Exif\x00\x00" + tiff)
    return buf.getvalue()


def image_with_exif(fmt: str, tiff: bytes) -> bytes:
    """A PNG (eXIf chunk) or WebP (EXIF chunk) written by Pillow with ``tiff`` as Exif."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 150)).save(buf, fmt, exif=b"Exif\x00\x00" + tiff,
                                                     **({"lossless": True} if fmt == "WEBP"
                                                        else {}))
    return buf.getvalue()


def tiff_with_thumbnail(jpeg: bytes) -> bytes:
    w = TiffWriter()
    at = w.blob(jpeg)
    return w.finish(w.ifd({t.IMAGE_WIDTH: (LONG, (8,)), t.IMAGE_LENGTH: (LONG, (8,)),
                           t.JPEG_IF_OFFSET: (LONG, (at,)),
                           t.JPEG_IF_LENGTH: (LONG, (len(jpeg),))}))


def heif_with_exif(tiff: bytes) -> bytes:
    colour = hs.Item(1, "hvc1", (hs.ispe(64, 64), hs.pixi(8, 8, 8)))
    exif = hs.Item(2, "Exif", (), struct.pack(">I", 6) + b"Exif\x00\x00" + tiff)
    return hs.heif([colour, exif], [hs.Ref("cdsc", 2, (1,))])


def pdf_with_jpeg(jpeg: bytes) -> bytes:
    import pikepdf

    pdf = pikepdf.new()
    image = pikepdf.Stream(pdf, jpeg)
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height, image.BitsPerComponent = 16, 16, 8
    image.ColorSpace, image.Filter = pikepdf.Name.DeviceRGB, pikepdf.Name.DCTDecode
    content = pikepdf.Stream(pdf, b"q 16 0 0 16 0 0 cm /Im0 Do Q")
    page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 16, 16],
                              Contents=content, Resources=pikepdf.Dictionary(
                                  XObject=pikepdf.Dictionary(Im0=image)))
    pdf.pages.append(pikepdf.Page(page))
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def hidings(bad: bool) -> Iterator[tuple[str, bytes, str]]:
    """(name, data, how) for every place the payload (or its twin) hides."""
    yield ("makernote-nikon.tif",
           _with_note(lambda w: b"Nikon\x00\x02\x10\x00\x00" + payload_dng(bad, False)),
           "a TIFF inside a Nikon type 3 MakerNote")
    for name, prefix, at, little in (
            ("apple", b"Apple iOS\x00\x00\x01MM", 14, False),
            ("fujifilm", b"FUJIFILM" + struct.pack("<I", 12), 12, True),
            ("olympus", b"OLYMPUS\x00II\x03\x00", 12, True)):
        yield (f"makernote-{name}.tif", _with_note(_fixed(rebased_note(prefix, at, bad, little))),
               f"an IFD counted from the start of a {name} MakerNote")
    for name, prefix, at, little in (
            ("om-system", b"OM SYSTEM\x00\x00\x00II\x04\x00", 16, True),
            ("pentax", b"PENTAX \x00MM", 10, False)):
        yield (f"makernote-{name}.tif", _with_note(_fixed(rebased_note(prefix, at, bad, little))),
               f"an IFD counted from the start of a {name} MakerNote (its own byte order)")
    yield ("makernote-olympus-equipment.tif", _with_note(_fixed(rebased_note(
        b"OLYMPUS\x00II\x03\x00", 12, bad, True, (OLYMPUS_EQUIPMENT, IFD_TYPE)))),
        "an Olympus MakerNote's sub-directory (an entry of type IFD, 13)")
    for name, prefix in IN_FILE_PREFIXES:
        yield (f"makernote-{name}.tif", _with_note(in_file_note(prefix, bad)),
               f"a {name}-style MakerNote IFD counted from the file's header")
    yield ("makernote-pentax-aoc.tif", _with_note(aoc_note(b"MM", bad)),
           "a Pentax AOC MakerNote in big-endian order inside a little-endian file")
    yield ("makernote-huawei.tif",
           _with_note(lambda w: b"HUAWEI\x00\x00" + payload_dng(bad)),
           "a TIFF after a text prefix in a MakerNote (Huawei)")
    yield ("makernote-note-based.tif", _with_note(_fixed(based_note(bad))),
           "a MakerNote IFD with no prefix counting offsets from the note's start")
    yield ("dng-private-nikon.dng",
           dng_private(b"Nikon\x00\x02\x10\x00\x00" + payload_dng(bad, False), 2000),
           "the original Nikon MakerNote a DNG keeps in DNGPrivateData")
    yield ("dng-private-canon.dng", dng_private(based_note(bad, base=1234), 1234),
           "an original Canon-style MakerNote in DNGPrivateData, offsets of the original file")
    exif_jpeg = jpeg_with_exif(payload_dng(bad))
    yield "exif.jpg", exif_jpeg, "the DNG as a JPEG's APP1 Exif"
    yield "exif.png", image_with_exif("PNG", payload_dng(bad)), "a PNG's eXIf chunk"
    yield "exif.webp", image_with_exif("WEBP", payload_dng(bad)), "a WebP's EXIF chunk"
    yield "thumbnail.tif", tiff_with_thumbnail(exif_jpeg), "in a TIFF's JPEG thumbnail's Exif"
    yield "exif-item.heic", heif_with_exif(payload_dng(bad)), "a HEIF Exif item"
    yield "dct-image.pdf", pdf_with_jpeg(exif_jpeg), "a PDF image's JPEG Exif"
    yield ("dng-preview-exif.dng", dng_with_preview(exif_jpeg),
           "a DNG preview (a JPEG strip) whose Exif holds it")


IN_FILE_PREFIXES = (
    ("sony", b"SONY DSC \x00\x00\x00"), ("canon", b""), ("nikon2", b"Nikon\x00\x01\x00"),
    ("leica", b"LEICA\x00\x00\x00"), ("casio", b"QVC\x00\x00\x00"),
    ("epson", b"EPSON\x00\x01\x00"), ("sanyo", b"SANYO\x00\x01\x00"),
)


def samples() -> Iterator[Sample]:
    for bad, tag, exp in ((True, "cve-2025-43300", HIT), (False, "benign", NONE)):
        for name, data, how in hidings(bad):
            yield Sample(f"{tag}-{name}", data, exp,
                         how + (" (SOF3 Nf=1)" if bad else " (SOF3 Nf=2, consistent)"))
