"""JPEG (JFIF/EXIF): walks marker segments to find the logical end (EOI).

No pixel data is decoded; the entropy-coded segment is skipped with a compiled search
for the next marker that is not a stuffed byte or a restart marker.
"""

from __future__ import annotations

import re

from spywall.errors import FormatError
from spywall.formats.base import FormatSpec, ParseContext, Parsed
from spywall.formats.reader import Reader

_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
SOS, EOI = 0xDA, 0xD9


def sniff(head: bytes) -> bool:
    return head.startswith(b"\xff\xd8\xff")


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
            m = _MARKER.search(data, r.pos)
            if m is None:
                return Parsed(format="jpeg", structure=segments, logical_end=None,
                              warnings=["no EOI marker: truncated JPEG"])
            r.seek(m.start())


SPEC = FormatSpec(name="jpeg", description="JPEG image", sniff=sniff, parse=parse)
