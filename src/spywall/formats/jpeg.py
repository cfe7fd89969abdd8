"""JPEG (JFIF/EXIF): walks the marker segments up to the first scan, then takes the
logical end from the last EOI marker.

APP1 segments holding Exif ("Exif\0\0", then a TIFF) give their TIFF to the engine as a
child (format ``tiff``), so DNG/TIFF structures carried in a JPEG's metadata are
examined too. No pixel data is decoded and the entropy-coded data is not walked (that
costs a pass over every byte): an EOI (FF D9) cannot occur inside entropy-coded data,
so the last one in the file is the latest the image can end. An archive hidden before a
stray trailing EOI is still found by the engine's end-of-central-directory check for
zips (``formats.appended.trailing_zip_start``).
"""

from __future__ import annotations

from spywall.errors import FormatError
from spywall.formats.base import Child, FormatSpec, ParseContext, Parsed
from spywall.formats.magic import sniff_jpeg as sniff
from spywall.formats.reader import Reader

SOS, EOI, APP1 = 0xDA, 0xD9, 0xE1
MAX_EXIF_CHILDREN = 8


def _exif(data: bytes, start: int, end: int) -> Child | None:
    """The TIFF inside one APP1 segment's payload ``data[start:end]``, if it is Exif."""
    if data[start : start + 5] == b"Exif\x00" and end - start > 14:
        return Child(f"APP1@{start - 4} (Exif)", bytes(data[start + 6 : end]), format="tiff")
    return None


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    r = Reader(data, 2)
    segments = 0
    exif: list[Child] = []
    while True:
        if r.u8() != 0xFF:
            raise FormatError(f"expected a marker at offset {r.pos - 1}")
        marker = r.u8()
        while marker == 0xFF:
            marker = r.u8()
        if marker == EOI:
            return Parsed(format="jpeg", structure=segments, logical_end=r.pos,
                          children=exif)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        length = r.u16be()
        if length < 2:
            raise FormatError(f"segment length {length} at offset {r.pos - 2}")
        if marker == APP1 and len(exif) < MAX_EXIF_CHILDREN:
            child = _exif(data, r.pos, min(r.pos + length - 2, len(data)))
            if child is not None:
                exif.append(child)
        r.skip(length - 2)
        segments += 1
        ctx.budget.charge_elements()
        if marker == SOS:
            eoi = data.rfind(b"\xff\xd9", r.pos)
            if eoi < 0:
                return Parsed(format="jpeg", structure=segments, logical_end=None,
                              children=exif, warnings=["no EOI marker: truncated JPEG"])
            return Parsed(format="jpeg", structure=segments, logical_end=eoi + 2,
                          children=exif)


SPEC = FormatSpec(name="jpeg", description="JPEG image", sniff=sniff, parse=parse)
