"""A decoder for TrueType bytecode (fpgm, prep and glyph programs).

TrueType instructions are one byte each, except the four push families, which carry their
data inline in the instruction stream (Apple TrueType Reference Manual, appendix A;
OpenType "The TrueType Instruction Set"):

- NPUSHB 0x40: the next byte n, then n bytes;
- NPUSHW 0x41: the next byte n, then 2n bytes;
- PUSHB 0xB0-0xB7: 1..8 bytes;
- PUSHW 0xB8-0xBF: 2..16 bytes (1..8 words).

Push data is not code, so a byte that happens to equal an opcode inside push data is not
an instruction. The decoder walks the stream linearly, jumping from one push (or one
watched opcode) to the next with a compiled byte-class search, so a program costs one
regex step per push rather than one Python step per byte.

Jump instructions (JMPR, JROT, JROF) can move execution into the middle of push data; a
linear decoder does not follow them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NPUSHB = 0x40
NPUSHW = 0x41
PUSHB_FIRST = 0xB0
PUSHW_FIRST = 0xB8
PUSH_LAST = 0xBF

# ADJUST: opcodes that Apple's rasterizer implements but no public instruction set
# documents; the Operation Triangulation font exploit used them (CVE-2023-41990).
ADJUST_OPCODES: frozenset[int] = frozenset({0x8F, 0x90})


@dataclass(frozen=True)
class Decoded:
    """What a linear decode of one program found.

    ``hits`` are (offset, opcode) of watched opcodes decoded as instructions, offsets
    absolute in the buffer, at most ``max_hits`` of them; ``total`` counts them all.
    ``truncated`` is the offset of a push whose data runs past the program's end, if any.
    ``steps`` counts the decoder's search steps (its cost, charged to the budget).
    """

    hits: tuple[tuple[int, int], ...]
    total: int
    truncated: int | None
    steps: int = 0


def _byte_class(opcodes: frozenset[int]) -> re.Pattern[bytes]:
    stops = {NPUSHB, NPUSHW, *range(PUSHB_FIRST, PUSH_LAST + 1), *opcodes}
    return re.compile(b"[" + b"".join(re.escape(bytes([b])) for b in sorted(stops)) + b"]")


_PATTERNS: dict[frozenset[int], re.Pattern[bytes]] = {}


def _pattern(opcodes: frozenset[int]) -> re.Pattern[bytes]:
    pat = _PATTERNS.get(opcodes)
    if pat is None:
        pat = _PATTERNS[opcodes] = _byte_class(opcodes)
    return pat


def push_size(data: bytes, pos: int, end: int) -> int | None:
    """Bytes of inline data after the push opcode at ``pos`` (``None``: not a push).

    For NPUSHB/NPUSHW the count byte is included. If the count byte itself lies past
    ``end``, the size returned (1) still runs past the end, which the caller reports as
    truncation.
    """
    op = data[pos]
    if PUSHB_FIRST <= op < PUSHW_FIRST:
        return op - PUSHB_FIRST + 1
    if PUSHW_FIRST <= op <= PUSH_LAST:
        return 2 * (op - PUSHW_FIRST + 1)
    if op in (NPUSHB, NPUSHW):
        if pos + 1 >= end:
            return 1
        n = data[pos + 1]
        return 1 + (n if op == NPUSHB else 2 * n)
    return None


def decode(
    data: bytes,
    start: int = 0,
    end: int | None = None,
    opcodes: frozenset[int] = ADJUST_OPCODES,
    max_hits: int = 16,
) -> Decoded:
    """Decode ``data[start:end]`` as one program and find ``opcodes`` used as instructions.

    Once ``max_hits`` are recorded, the rest are only counted: the search then stops at
    pushes alone and counts watched bytes between them, so a program made of nothing but
    watched opcodes costs no more steps than one without.
    """
    end = len(data) if end is None else min(end, len(data))
    search = _pattern(opcodes if max_hits > 0 else frozenset()).search
    hits: list[tuple[int, int]] = []
    total = steps = 0
    pos = start
    while pos < end:
        steps += 1
        m = search(data, pos, end)
        at = end if m is None else m.start()
        if len(hits) >= max_hits:  # counting only: the search stops at pushes alone
            total += _count(data, pos, at, opcodes)
        if m is None:
            break
        size = push_size(data, at, end)
        if size is None:
            total += 1
            hits.append((at, data[at]))
            if len(hits) >= max_hits:
                search = _pattern(frozenset()).search
            pos = at + 1
            continue
        pos = at + 1 + size
        if pos > end:
            return Decoded(tuple(hits), total, at, steps)
    return Decoded(tuple(hits), total, None, steps)


def _count(data: bytes, start: int, end: int, opcodes: frozenset[int]) -> int:
    return sum(data.count(bytes([op]), start, end) for op in opcodes) if end > start else 0


def may_contain(
    data: bytes, start: int, end: int, opcodes: frozenset[int] = ADJUST_OPCODES
) -> bool:
    """Cheap pre-filter: does any byte of ``data[start:end]`` equal one of ``opcodes``?"""
    return any(data.find(bytes([op]), start, end) >= 0 for op in opcodes)
