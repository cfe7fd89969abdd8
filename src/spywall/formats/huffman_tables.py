"""How many table entries libwebp writes for one VP8L prefix code, and a canonical decoder.

``simulate(lengths, root_bits)`` follows the sizing logic of libwebp's
``BuildHuffmanTable`` (huffman_utils.c) without a table: a histogram of code lengths, a
root table of ``2**root_bits`` entries, then, walking the long codes (length > root) in
canonical order, a new second-level table each time the low ``root_bits`` bits of the
bit-reversed code change; that table has ``2**NextTableBitSize`` entries, where
NextTableBitSize counts the codes still unplaced at each length. The walk goes from one
second-level table to the next rather than code by code (the same result, checked against
a per-code walk in ``tests/test_huffman_reference.py``), and results are memoised per
histogram. Vulnerable libwebp (before 1.3.2) wrote every second-level table into a fixed
block before checking that the tree was complete, so the size of an incomplete tree is
returned too, marked invalid.

``decoder(lengths)`` builds a lookup table for a *valid* code (used for the small
sub-images that must be decoded to reach what follows them in the bit stream), read with
``BitReader.decode`` (LSB-first, as VP8L packs its bits).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import msgspec

from spywall.errors import TruncatedError
from spywall.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_module("numpy")

MAX_LENGTH = 15
ROOT_BITS = 8
LENGTHS_ROOT_BITS = 7


class TableSim(msgspec.Struct, frozen=True):
    """Entries a build writes (root plus second level) and whether libwebp keeps the tree."""

    size: int
    valid: bool
    problem: str = ""


def histogram(lengths: Sequence[int]) -> list[int]:
    """Number of symbols per code length 0..15 (lengths are bytes: 0..255)."""
    packed = lengths if isinstance(lengths, bytes | bytearray) else bytes(lengths)
    counts: list[int] = np.bincount(np.frombuffer(packed, np.uint8), minlength=16).tolist()
    return counts[: MAX_LENGTH + 1]


def _next_table_bits(count: list[int], length: int, root_bits: int) -> int:
    left = 1 << (length - root_bits)
    while length < MAX_LENGTH:
        left -= count[length]
        if left <= 0:
            break
        length += 1
        left <<= 1
    return length - root_bits


def simulate_histogram(hist: Sequence[int], root_bits: int = ROOT_BITS) -> TableSim:
    """Table entries built for a code with ``hist[n]`` symbols of length ``n`` (0..15).

    Memoised (bounded): the groups of one image, and images made by the same encoder,
    share most of their histograms.
    """
    return _simulate(tuple(hist), root_bits)


@lru_cache(maxsize=4096)
def _simulate(hist: tuple[int, ...], root_bits: int) -> TableSim:
    count = list(hist) + [0] * (MAX_LENGTH + 1 - len(hist))
    symbols = sum(count[1:])
    if symbols == 0:
        return TableSim(0, False, "no symbol has a code")
    for n in range(1, MAX_LENGTH):
        if count[n] > 1 << n:
            return TableSim(0, False, f"{count[n]} codes of length {n}")
    total = 1 << root_bits
    if symbols == 1:
        return TableSim(total, True)
    num_open = num_nodes = 1
    # libwebp walks the codes one by one with a bit-reversed key (GetNextKey); here
    # ``code`` is the canonical code of the next symbol, left-aligned to the current
    # length, and a second-level table opens where its top ``root_bits`` bits (the
    # reversed key's low bits) change. The key saturates only once the tree is full,
    # after which any further code is over-subscribed, so the two walks agree.
    code = 0
    for n in range(1, root_bits + 1):
        num_open = (num_open << 1) - count[n]
        num_nodes += num_open + count[n]
        if num_open < 0:
            return TableSim(total, False, "over-subscribed")
        code = (code + count[n]) << 1
    low = -1
    for n in range(root_bits + 1, MAX_LENGTH + 1):
        num_open = (num_open << 1) - count[n]
        num_nodes += num_open + count[n]
        if num_open < 0:
            return TableSim(total, False, "over-subscribed")
        here = count[n]
        if here:
            shift = n - root_bits
            for prefix in range(code >> shift, ((code + here - 1) >> shift) + 1):
                if prefix != low:
                    # codes of this length still to place when the table opens
                    count[n] = here - (max(code, prefix << shift) - code)
                    total += 1 << _next_table_bits(count, n, root_bits)
                    low = prefix
            count[n] = 0
        code = (code + here) << 1
    if num_nodes != 2 * symbols - 1:
        return TableSim(total, False, "incomplete tree")
    return TableSim(total, True)


def simulate(lengths: Sequence[int], root_bits: int = ROOT_BITS) -> TableSim:
    """Table entries built for a code given each symbol's code length."""
    return _simulate(tuple(histogram(lengths)), root_bits)


# Bit reversal of a byte; a code of n <= 16 bits is reversed as two bytes.
_REV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _reverse(code: int, length: int) -> int:
    return (_REV8[code & 0xFF] << 8 | _REV8[code >> 8 & 0xFF]) >> (16 - length)


class Decoder(msgspec.Struct, frozen=True):
    """Lookup table indexed by the next ``bits`` bits (LSB first): ``symbol << 4 | length``.

    A code with a single symbol reads no bits (``bits == 0``), as in libwebp.
    """

    table: Sequence[int]
    bits: int


def decoder(lengths: Sequence[int]) -> Decoder:
    """Canonical decoder for a code that ``simulate`` found valid."""
    packed = lengths if isinstance(lengths, bytes | bytearray) else bytes(lengths)
    used: list[tuple[int, int]] = []  # (length, symbol) in canonical order
    for n in range(1, MAX_LENGTH + 1):
        s = packed.find(n)
        while s >= 0:
            used.append((n, s))
            s = packed.find(n, s + 1)
    if len(used) == 1:
        return Decoder((used[0][1] << 4,), 0)
    bits = used[-1][0]
    table = [0] * (1 << bits)
    code = 0
    prev = used[0][0]
    for n, sym in used:
        code <<= n - prev
        prev = n
        table[_reverse(code, n) :: 1 << n] = [sym << 4 | n] * (1 << (bits - n))
        code += 1
    return Decoder(tuple(table), bits)


@lru_cache(maxsize=1024)
def small_decoder(lengths: bytes) -> Decoder:
    """``decoder`` memoised, for short alphabets (VP8L's 19-symbol code-length code)."""
    dec = decoder(lengths)
    return Decoder(tuple(dec.table), dec.bits)  # shared: immutable


class BitReader:
    """LSB-first bit reader over ``data[start:end]``; reading past the end is an error."""

    __slots__ = ("data", "end", "nbits", "pos", "start", "val")

    def __init__(self, data: bytes, start: int, end: int) -> None:
        self.data, self.start, self.pos, self.end = data, start, start, min(end, len(data))
        self.val = self.nbits = 0

    def fill(self) -> None:
        take = min(8, self.end - self.pos)
        if take > 0:
            chunk = int.from_bytes(self.data[self.pos : self.pos + take], "little")
            self.val |= chunk << self.nbits
            self.nbits += take * 8
            self.pos += take

    @property
    def offset(self) -> int:
        """Absolute offset of the byte holding the next unread bit."""
        return self.pos - self.nbits // 8

    def read(self, n: int) -> int:
        if self.nbits < n:
            self.fill()
            if self.nbits < n:
                raise TruncatedError(f"the compressed data ends early, at offset {self.end}")
        v = self.val & ((1 << n) - 1)
        self.val >>= n
        self.nbits -= n
        return v

    def decode(self, dec: Decoder) -> int:
        if dec.bits == 0:
            return dec.table[0] >> 4
        if self.nbits < dec.bits:
            self.fill()
        entry = dec.table[self.val & ((1 << dec.bits) - 1)]
        n = entry & 15
        if n > self.nbits:
            raise TruncatedError(f"the compressed data ends early, at offset {self.end}")
        self.val >>= n
        self.nbits -= n
        return entry >> 4
