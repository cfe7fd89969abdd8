"""PNG: walks chunks to IEND to find the logical end. No pixel data is decoded."""

from __future__ import annotations

from spywall.errors import FormatError
from spywall.formats.base import FormatSpec, ParseContext, Parsed
from spywall.formats.magic import PNG_MAGIC as MAGIC
from spywall.formats.magic import sniff_png as sniff
from spywall.formats.reader import Reader


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    r = Reader(data, len(MAGIC))
    chunks = 0
    while True:
        length = r.u32be()
        if length > 0x7FFFFFFF:
            raise FormatError(f"chunk length {length} at offset {r.pos - 4}")
        ctype = r.read(4)
        r.skip(length + 4)
        chunks += 1
        ctx.budget.charge_elements()
        if ctype == b"IEND":
            return Parsed(format="png", structure=chunks, logical_end=r.pos)


SPEC = FormatSpec(name="png", description="PNG image", sniff=sniff, parse=parse)
