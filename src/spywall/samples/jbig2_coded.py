"""Decodable JBIG2 samples: FORCEDENTRY's trigger with symbol dictionaries a decoder accepts.

The samples in ``pdf_jbig2`` carry the trigger structure with filler where coded data
goes; a real decoder stops at the first dictionary. These ones are coded per ITU T.88 so
that a decoder (jbig2dec, the oracle of ``tests/test_oracle_jbig2.py``) reads every
segment: symbol dictionaries with Huffman coding (SDHUFF 1, standard tables B.4 for the
height deltas, B.2 for the width deltas, B.1 for BMSIZE and the export run lengths) and
one uncompressed collective bitmap per height class (BMSIZE 0, 6.5.9), and text regions
with arithmetic coding and no symbol instances. The crafted stream refers to a
0xFFFF-symbol dictionary 0x10001 times plus a 3-symbol one (the 32-bit sum wraps to 2);
its twin refers to each once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

from spywall.samples import Sample
from spywall.samples.pdf_jbig2 import (
    END_OF_FILE,
    END_OF_PAGE,
    OVERFLOW,
    PAGE_INFO,
    Seg,
    jbig2_file,
    page_info,
    segment,
)

# Standard Huffman tables as (low, prefix bits, range bits) lines in T.88 Annex B order,
# with the canonical prefixes they get (B.3); "oob" is the out-of-band line.
_B1 = ((0, "0", 4), (16, "10", 8), (272, "110", 16), (65808, "111", 32))
_B2 = ((0, "0", 0), (1, "10", 0), (2, "110", 0), (3, "1110", 3), (11, "11110", 6),
       (75, "111110", 32))
_B2_OOB = "111111"
_B4 = ((1, "0", 0), (2, "10", 0), (3, "110", 0), (4, "1110", 3), (12, "11110", 6),
       (76, "11111", 32))


def _code(table: Sequence[tuple[int, str, int]], value: int) -> str:
    """The bits of ``value`` in a standard table (the last line whose low is <= value)."""
    for low, prefix, bits in reversed(table):
        if value >= low:
            rest = value - low
            if bits == 0 and rest:
                break
            if rest >= 1 << bits and bits:
                break
            return prefix + (format(rest, f"0{bits}b") if bits else "")
    raise ValueError(f"{value} not codable")


class _Bits:
    def __init__(self) -> None:
        self.bits: list[str] = []
        self.out = bytearray()

    def put(self, bits: str) -> None:
        self.bits.append(bits)

    def align(self) -> None:
        s = "".join(self.bits)
        s += "0" * (-len(s) % 8)
        self.out += int(s, 2).to_bytes(len(s) // 8, "big") if s else b""
        self.bits = []

    def raw(self, data: bytes) -> None:
        self.align()
        self.out += data

    def done(self) -> bytes:
        self.align()
        return bytes(self.out)


def huffman_dictionary(count: int, height: int = 1) -> bytes:
    """A symbol dictionary of ``count`` new symbols, all exported, in one height class:
    the first ``height`` x 1, the rest 1 pixel wider each time by a width delta of 0
    (so all 1 wide), their collective bitmap stored uncompressed, all pixels set."""
    b = _Bits()
    b.put(_code(_B4, height))  # HCDH: the first height class is ``height`` rows high
    b.put(_code(_B2, 1))  # DW of the first symbol: width 1
    for _ in range(count - 1):
        b.put(_code(_B2, 0))  # the same width
    b.put(_B2_OOB)  # end of the height class
    b.put(_code(_B1, 0))  # BMSIZE 0: uncompressed
    row = (count + 7) // 8
    b.raw(b"\xff" * row * height)
    b.put(_code(_B1, 0))  # export runs: none skipped, then all of them
    b.put(_code(_B1, count))
    return struct.pack(">HII", 0x0001, count, count) + b.done()


def empty_text_region(width: int = 8, height: int = 8) -> bytes:
    """Region info, flags (arithmetic coding, no refinement), no instances, and an
    arithmetic-coded STRIPT (any bytes decode: 0xFF 0xAC is the end marker)."""
    return (struct.pack(">IIIIB", width, height, 0, 0, 0) + struct.pack(">HI", 0, 0)
            + b"\x00\x00\xff\xac")


def xpdf_page_info() -> Seg:
    """A page information segment whose header claims 7 referred-to segments in the long
    form: xpdf reads two retention bytes after the count ((7 + 9) >> 3), T.88 and
    jbig2dec one. Read with one byte, the numbers, page and data length shift by a byte
    and the length becomes 0x01000000: past the end, so that walk stops here."""
    head = struct.pack(">IBI", 1, PAGE_INFO, 0xE0000000 | 7) + b"\x00\x00" + bytes(7)
    data = page_info()
    return head + b"\x01" + struct.pack(">I", len(data)), data


def stream(refs_big: int, refs_small: int = 1, first: Seg | None = None) -> bytes:
    """Page info, a 0xFFFF-symbol and a 3-symbol dictionary, a text region referring to
    the first ``refs_big`` times and the second ``refs_small`` times, end of page and of
    file."""
    segs: list[Seg] = [
        first or segment(1, PAGE_INFO, page_info()),
        segment(2, 0, huffman_dictionary(0xFFFF)),
        segment(3, 0, huffman_dictionary(3)),
        segment(4, 6, empty_text_region(), [2] * refs_big + [3] * refs_small),
        segment(5, END_OF_PAGE, b""),
        segment(6, END_OF_FILE, b"", page=0),
    ]
    return jbig2_file(segs)


def samples() -> Iterator[Sample]:
    # 0x10001 + 6 references: count + 1 is a multiple of 8, so T.88 and jbig2dec read the
    # same retention bytes (xpdf one more).
    yield Sample("forcedentry-coded.jbig2", stream(0x10001, 6), OVERFLOW,
                 "decodable Huffman dictionaries: 0xFFFF symbols x 0x10001 + 3 x 6")
    yield Sample("benign-coded.jbig2", stream(1), frozenset(),
                 "the same dictionaries, each referred to once: 0xFFFF + 3 symbols")
    yield Sample("forcedentry-xpdf-retention.jbig2",
                 stream(0x10001, 1, xpdf_page_info()), OVERFLOW,
                 "the trigger seen only when the retention bytes are read as xpdf does")
    yield Sample("benign-xpdf-retention.jbig2", stream(1, 1, xpdf_page_info()), frozenset(),
                 "the same long-form page header, dictionaries referred to once")
