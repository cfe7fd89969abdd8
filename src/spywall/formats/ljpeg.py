"""Just enough of the JPEG marker walk (ITU T.81 B.1) to read a frame header.

DNG stores raw data as lossless JPEG (process 14, marker SOF3 = 0xFFC3) in each strip or
tile. ``read_sof`` walks the marker segments of one such stream, from its SOI up to the
first frame header, and returns what the header declares: sample precision P, number of
lines Y, samples per line X and number of image components Nf. It never looks at the
entropy-coded data.
"""

from __future__ import annotations

import msgspec

from spywall.errors import FormatError
from spywall.formats.reader import Reader
from spywall.limits import Budget

SOI = b"\xff\xd8"
SOS, EOI, SOF3 = 0xDA, 0xD9, 0xC3
# Every SOFn: C0-C3, C5-C7, C9-CB, CD-CF (C4 is DHT, C8 is JPG, CC is DAC).
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}
MAX_SEGMENTS = 4096  # APPn/COM padding before the frame header must not hide it


class Sof(msgspec.Struct, frozen=True):
    """A frame header: its marker (0xC3 for lossless), offset of the marker and fields."""

    marker: int
    offset: int
    length: int
    precision: int
    height: int
    width: int
    components: int

    @property
    def lossless(self) -> bool:
        return self.marker == SOF3


def read_sof(data: bytes, start: int, end: int, budget: Budget | None = None) -> Sof | None:
    """The first frame header of the JPEG stream in ``data[start:end]``.

    Every marker segment walked is charged to ``budget`` when one is given.
    ``None`` when the stream reaches SOS or EOI without a frame header. Raises
    ``FormatError`` (or ``TruncatedError``) when the stream is not a JPEG marker sequence.
    """
    r = Reader(data, start, end)
    if r.read(2) != SOI:
        raise FormatError(f"no JPEG start marker (SOI) at offset {start}")
    for _ in range(MAX_SEGMENTS):
        at = r.pos
        if r.u8() != 0xFF:
            raise FormatError(f"expected a JPEG segment marker (0xFF) at offset {at}")
        marker = r.u8()
        while marker == 0xFF:
            marker = r.u8()
        if marker in (SOS, EOI):
            return None
        if budget is not None:
            budget.charge_elements()
        if marker in STANDALONE:
            continue
        length = r.u16be()
        if length < 2:
            raise FormatError(f"the JPEG segment at offset {r.pos - 4} declares a length of "
                              f"{length} (at least 2)")
        if marker in SOF_MARKERS:
            seg = r.sub(length - 2)
            precision, height, width = seg.u8(), seg.u16be(), seg.u16be()
            return Sof(marker, r.pos - length - 2, length, precision, height, width, seg.u8())
        r.skip(length - 2)
    raise FormatError(f"more than {MAX_SEGMENTS} JPEG segments before a frame header")
