"""JPEG (JFIF/EXIF): walks the marker segments up to the first scan, then takes the
logical end from the last EOI marker.

No pixel data is decoded and the entropy-coded data is not walked (that costs a pass over
every byte): an EOI (FF D9) cannot occur inside entropy-coded data, so the last one in the
file is the latest the image can end. An archive hidden before a stray trailing EOI is
still found by the engine's end-of-central-directory check for zips
(``formats.appended.trailing_zip_start``).
"""

from __future__ import annotations

from spywall.errors import FormatError
from spywall.formats.base import FormatSpec, ParseContext, Parsed
from spywall.formats.magic import sniff_jpeg as sniff
from spywall.formats.reader import Reader

SOS, EOI = 0xDA, 0xD9


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    r = Reader(data, 2)
    segments = 0
    while True:
        if r.u8() != 0xFF:
            raise FormatError(f"expected a marker at offset {r.pos - 1}")
        marker = r.u8()
        while marker == 0xFF:
            marker = r.u8()
        if marker == EOI:
            return Parsed(format="jpeg", structure=segments, logical_end=r.pos)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        length = r.u16be()
        if length < 2:
            raise FormatError(f"segment length {length} at offset {r.pos - 2}")
        r.skip(length - 2)
        segments += 1
        ctx.budget.charge_elements()
        if marker == SOS:
            eoi = data.rfind(b"\xff\xd9", r.pos)
            if eoi < 0:
                return Parsed(format="jpeg", structure=segments, logical_end=None,
                              warnings=["no EOI marker: truncated JPEG"])
            return Parsed(format="jpeg", structure=segments, logical_end=eoi + 2)


SPEC = FormatSpec(name="jpeg", description="JPEG image", sniff=sniff, parse=parse)
