"""PNG: walks chunks to IEND to find the logical end. No pixel data is decoded.

An ``eXIf`` chunk holds a TIFF (Exif; some writers put "Exif\\0\\0" first): it is given to
the engine as a child (format ``tiff``), so DNG/TIFF structures carried there are examined.
"""

from __future__ import annotations

from spywall.errors import FormatError, TruncatedError
from spywall.formats.base import Child, FormatSpec, ParseContext, Parsed
from spywall.formats.magic import PNG_MAGIC as MAGIC
from spywall.formats.magic import sniff_png as sniff
from spywall.formats.reader import Reader

MAX_EXIF_CHILDREN = 4
TIFF_HEADERS = (b"II*\x00", b"MM\x00*")


def exif_child(name: str, payload: bytes) -> Child | None:
    """The TIFF of an Exif payload (with or without the "Exif\\0\\0" prefix), if any."""
    if payload[:6] == b"Exif\x00\x00":
        payload = payload[6:]
    return Child(name, bytes(payload), format="tiff") if payload[:4] in TIFF_HEADERS else None


def parse(data: bytes, ctx: ParseContext) -> Parsed:
    r = Reader(data, len(MAGIC))
    chunks = 0
    exif: list[Child] = []
    while True:
        at = r.pos
        if r.remaining < 12:
            raise TruncatedError(f"the chunk at offset {at} is cut short: 12 bytes are needed, "
                                 f"only {r.remaining} remain (no IEND chunk)")
        length = r.u32be()
        if length > 0x7FFFFFFF:
            raise FormatError(f"the chunk at offset {at} declares a length of {length}, over "
                              "PNG's 2^31-1")
        ctype = r.read(4)
        if ctype == b"eXIf" and len(exif) < MAX_EXIF_CHILDREN:
            child = exif_child(f"eXIf@{r.pos - 8}", data[r.pos : r.pos + length])
            if child is not None:
                exif.append(child)
        if length + 4 > r.remaining:
            name = ctype.decode("latin-1")
            raise TruncatedError(f"the {name!r} chunk at offset {at} declares {length} bytes "
                                 f"and a checksum, only {r.remaining} follow")
        r.skip(length + 4)
        chunks += 1
        ctx.budget.charge_elements()
        if ctype == b"IEND":
            return Parsed(format="png", structure=chunks, logical_end=r.pos, children=exif)


SPEC = FormatSpec(name="png", description="PNG image", sniff=sniff, parse=parse)
