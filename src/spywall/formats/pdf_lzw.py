"""LZWDecode at C speed where that is exact (imagecodecs' TIFF LZW), planned with numpy.

``pdf_filters.lzw`` (one code at a time, in Python) says what a PDF stream decodes to,
including its errors. imagecodecs decodes the same codes in C, but reads some invalid
ones leniently and has no output cap. So a stream goes to imagecodecs only when numpy has
first shown, without decoding anything, that:

- it starts with a clear code (so imagecodecs does not take it for old-style LZW) and
  uses EarlyChange 1 (TIFF's, the PDF default);
- every code is one the table holds when it is read (a code's width and the table's size
  follow from its place after the last clear code, so the codes of a run between clear
  codes are cut out of the bits at once);
- no run fills the table (4,096 entries) before its next clear code, and the codes end
  with an end-of-data code (at the end of a cut stream imagecodecs can read the last
  code otherwise);
- the output passes neither the stream cap nor the ratio cap at any code (each code's
  output length comes from the entry it names, by pointer jumping): the sizes and the
  first code to pass a cap are exactly those of the per-code decoder.

Otherwise ``plan`` returns ``None`` and the per-code decoder runs. Inputs over
``MAX_INPUT`` bytes go there too (the plan holds eight bytes per input byte).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from spywall.lazy import lazy_module
from spywall.limits import MiB

if TYPE_CHECKING:
    import imagecodecs
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy")
    imagecodecs = lazy_module("imagecodecs")

MAX_INPUT = 8 * MiB
CLEAR, EOD, FIRST = 256, 257, 258
TABLE = 4096
# Codes in a run after which the table is full (258 + 3838 = 4096 entries).
RUN = TABLE - FIRST + 1


@cache
def schedule() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Width of the j-th code after a clear code (EarlyChange 1), and its bit offset."""
    widths = []
    width = 9
    for j in range(1, RUN + 2):
        widths.append(width)
        size = FIRST if j == 1 else min(TABLE, FIRST + j - 1)  # table after code j
        if size + 1 >= (1 << width) and width < 12:
            width += 1
    w = np.array(widths, dtype=np.int64)
    return w, np.concatenate(([0], np.cumsum(w)[:-1]))


def _codes(buf: npt.NDArray[np.int64], nbits: int, start: int) -> npt.NDArray[np.int64]:
    """The codes of a run from bit ``start``: as many as the bits hold, up to RUN + 1.

    ``buf`` is the data as integers with three zero bytes after it: a code (at most 12
    bits, starting anywhere in a byte) lies within the 24 bits of three bytes.
    """
    widths, offsets = schedule()
    n = int(np.searchsorted(offsets + widths, nbits - start, side="right"))
    at = start + offsets[:n]
    byte = at >> 3
    window = (buf[byte] << 16) | (buf[byte + 1] << 8) | buf[byte + 2]
    w = widths[:n]
    codes: npt.NDArray[np.int64] = (window >> (24 - (at & 7) - w)) & ((1 << w) - 1)
    return codes


def _lengths(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Output length of each code of a run (all valid): a literal gives one byte, code
    ``c`` the entry made at step ``c - 256``, one byte longer than step ``c - 257``'s."""
    n = len(codes)
    acc = np.ones(n, dtype=np.int64)
    ptr = np.where(codes >= FIRST, codes - FIRST, -1)  # 0-based step whose output c extends
    live = np.flatnonzero(ptr >= 0)
    while len(live):
        p = ptr[live]
        acc[live] += acc[p]
        ptr[live] = ptr[p]
        live = live[ptr[live] >= 0]
    return acc


def plan(data: bytes, early: int, room: int, ratio: int) -> tuple[int, str | None] | None:
    """``(output size, None)`` when imagecodecs gives exactly the per-code result,
    ``(0, "cap"|"ratio")`` when that result is the given cap's error, else ``None``.

    ``room`` is how many bytes may still be written (the stream cap left, plus one).
    """
    if early != 1 or len(data) > MAX_INPUT or data[:1] != b"\x80" or len(data) < 2:
        return None
    if data[1] & 0x80:  # the first 9 bits must be 256
        return None
    buf = np.frombuffer(data + b"\0\0\0", dtype=np.uint8).astype(np.int64)
    nbits = 8 * len(data)
    widths, offsets = schedule()
    pos = 0
    ends: list[npt.NDArray[np.int64]] = []  # bit after each output code
    sizes: list[npt.NDArray[np.int64]] = []
    while True:
        codes = _codes(buf, nbits, pos)
        stop = np.flatnonzero(codes >= CLEAR)
        stop = stop[(codes[stop] == CLEAR) | (codes[stop] == EOD)]
        m = int(stop[0]) if len(stop) else len(codes)
        run = codes[:m]
        if m > RUN - 1 or (m == len(codes) and len(codes) > RUN - 1):
            return None  # the table would fill up: left to the per-code decoder
        limit = FIRST + np.maximum(np.arange(m) - 1, 0)  # table size when code j is read
        if m and (run[0] >= CLEAR or bool((run[1:] > limit[1:]).any())):
            return None  # an invalid code: the per-code decoder reports it
        if m:
            sizes.append(_lengths(run))
            ends.append(pos + offsets[:m] + widths[:m])
        if m == len(codes):
            return None  # no end-of-data code: imagecodecs may read the last code apart
        if codes[m] == EOD:
            break
        pos += int(offsets[m] + widths[m])  # past the clear code
    if not sizes:
        return 0, None
    out = np.cumsum(np.concatenate(sizes))
    consumed = (np.concatenate(ends) - 1) // 8 + 1
    over_cap = np.flatnonzero(out >= room)
    over_ratio = np.flatnonzero((out > MiB) & (out > ratio * consumed))
    first_cap = int(over_cap[0]) if len(over_cap) else len(out)
    first_ratio = int(over_ratio[0]) if len(over_ratio) else len(out)
    if first_cap < len(out) and first_cap <= first_ratio:
        return 0, "cap"
    if first_ratio < len(out):
        return 0, "ratio"
    return int(out[-1]), None


def decode(data: bytes, size: int) -> bytes | None:
    """The stream decoded by imagecodecs, if it gives exactly ``size`` bytes (one more
    byte of room shows a longer result)."""
    if size == 0:
        return b""
    try:
        out = imagecodecs.lzw_decode(data, out=size + 1)
    except imagecodecs.LzwError:
        return None
    result = bytes(out)
    return result if len(result) == size else None
