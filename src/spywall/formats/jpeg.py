"""JPEG (JFIF/EXIF): walks the marker segments; the logical end is the first EOI marker.

APP1 segments holding Exif ("Exif\0\0", then a TIFF) give their TIFF to the engine as a
child (format ``tiff``), so DNG/TIFF structures carried in a JPEG's metadata are
examined too. No pixel data is decoded. After a scan header the entropy-coded data is
skipped by searching for the next marker (a 0xFF not followed by 0x00, a restart
marker or fill): a marker segment between scans (progressive JPEGs) is skipped by its
length, and the first EOI (FF D9) ends the image, as it does for a decoder. Whatever
follows (another image, a DNG, an archive) is appended data the engine examines; taking
the last FF D9 in the file instead would let an appended file holding one (every JPEG
and lossless-JPEG DNG does) pass as part of the image. An archive hidden before a stray
trailing EOI is also found by the engine's end-of-central-directory check for zips
(``formats.appended.trailing_zip_start``).
"""

from __future__ import annotations

import re

from spywall.errors import FormatError, TruncatedError
from spywall.formats.base import Child, FormatSpec, ParseContext, Parsed
from spywall.formats.magic import sniff_jpeg as sniff
from spywall.formats.reader import Reader

try:  # the compiled marker search (setup.py); without it the pattern below does the work
    from spywall.formats import _bytescan
except ImportError:  # pragma: no cover - a build without a C compiler
    _bytescan = None  # type: ignore[assignment]

# The next marker in entropy-coded data: a 0xFF (then any fill 0xFF) and a byte that is
# not a stuffed zero, a restart marker or fill. Written with a literal first byte, so
# that Python's regex engine scans for it at memchr-like speed (about 2 GB/s here) and
# tries the rest only at each 0xFF; the same pattern written ``\xff+(...)`` starts with
# a repeat and is tested at every byte (about 140 MB/s: JPEG was the slowest type on the
# realistic corpus). A test compares the two on any bytes. ``_bytescan.next_marker``
# (memchr for the 0xFF, then a look past its run: about 10 GB/s) is used when it is
# built; tests compare it with this pattern.
_NEXT_MARKER = re.compile(rb"\xff\xff*([^\x00\xd0-\xd7\xff])")

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
        r.expect(2, "the next segment marker")
        if r.u8() != 0xFF:
            raise FormatError(f"expected a segment marker (0xFF) at offset {r.pos - 1}")
        marker = r.u8()
        while marker == 0xFF:
            marker = r.u8()
        if marker == EOI:
            return Parsed(format="jpeg", structure=segments, logical_end=r.pos,
                          children=exif)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        r.expect(2, f"the segment header (marker 0x{marker:02X})")
        length = r.u16be()
        if length < 2:
            raise FormatError(f"the segment at offset {r.pos - 4} declares a length of {length} "
                              "(at least 2)")
        if length - 2 > r.remaining:
            raise TruncatedError(f"the segment at offset {r.pos - 4} (marker 0x{marker:02X}) "
                                 f"declares {length - 2} bytes, only {r.remaining} follow")
        if marker == APP1 and len(exif) < MAX_EXIF_CHILDREN:
            child = _exif(data, r.pos, min(r.pos + length - 2, len(data)))
            if child is not None:
                exif.append(child)
        r.skip(length - 2)
        segments += 1
        ctx.budget.charge_elements()
        if marker == SOS:
            end = _after_scans(data, r.pos, ctx)
            if end is None:
                return Parsed(format="jpeg", structure=segments, logical_end=None,
                              children=exif,
                              warnings=[f"the image data ends at offset {len(data)} without "
                                        "its end marker (EOI)"])
            return Parsed(format="jpeg", structure=segments, logical_end=end,
                          children=exif)


def _after_scans(data: bytes, pos: int, ctx: ParseContext) -> int | None:
    """Offset after the first EOI from ``pos`` (inside entropy-coded data), skipping the
    marker segments between scans by their lengths; None if there is none."""
    while True:
        found = next_marker(data, pos)
        if found is None:
            return None
        start, marker, end = found
        ctx.budget.charge_elements()
        if marker == EOI:
            return end
        if marker == 0x01:
            pos = end
            continue
        if end + 2 > len(data):
            return None
        length = int.from_bytes(data[end : end + 2], "big")
        if length < 2:
            raise FormatError(f"the segment at offset {start} declares a length of {length} "
                              "(at least 2)")
        pos = end + length


def next_marker(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """The next marker at or after ``pos`` in entropy-coded data, as (offset of its run of
    0xFF, marker byte, offset after it); None when there is none."""
    if _bytescan is not None:
        return _bytescan.next_marker(data, pos)
    m = _NEXT_MARKER.search(data, pos)
    return None if m is None else (m.start(), m.group(1)[0], m.end())


SPEC = FormatSpec(name="jpeg", description="JPEG image", sniff=sniff, parse=parse)
