"""A decoder for TrueType bytecode (fpgm, prep and glyph programs).

TrueType instructions are one byte each, except the four push families, which carry their
data inline in the instruction stream (Apple TrueType Reference Manual, appendix A;
OpenType "The TrueType Instruction Set"):

- NPUSHB 0x40: the next byte n, then n bytes;
- NPUSHW 0x41: the next byte n, then 2n bytes;
- PUSHB 0xB0-0xB7: 1..8 bytes;
- PUSHW 0xB8-0xBF: 2..16 bytes (1..8 words).

Push data is not code, so a byte that happens to equal an opcode inside push data is not
an instruction. The decoder is one regular expression for "a run of instructions, none of
them watched": runs of plain one-byte instructions, and pushes that each consume exactly
their inline data (one alternative per PUSHB/PUSHW opcode, one per NPUSHB/NPUSHW count),
matched possessively. One C-level match therefore walks a whole program and stops at the
first watched instruction, at a push whose data runs past the end (truncation), or at the
end. Where a watched instruction stops it, the first ``max_hits`` are located by a second
expression whose matches each end just after one (so matches stay on instruction
boundaries); the rest are counted in the one-byte instructions that a third expression
lists with the pushes left out. Long programs are walked in chunks of ``CHUNK`` bytes (a
chunk ends before a push that crosses it), which bounds the memory of counting.

Cost: the walk is C-level, about 4 ns a byte of one-byte instructions and 35 ns a byte for
a program of nothing but one-byte pushes (the slowest input); callers charge it by bytes.
``Decoded.steps`` adds the Python steps and C-level matches that depend on the content.
The expressions are compiled on first use (about 30 ms), not at import.

Jump instructions (JMPR, JROT, JROF) can move execution into the middle of push data; a
linear decoder does not follow them.
"""

from __future__ import annotations

import re
from functools import cache

import msgspec

try:  # the compiled walk (setup.py); without it the expressions do all the work
    from spywall.formats import _glyphs
except ImportError:  # pragma: no cover - a build without a C compiler
    _glyphs = None  # type: ignore[assignment]

NPUSHB = 0x40
NPUSHW = 0x41
PUSHB_FIRST = 0xB0
PUSHW_FIRST = 0xB8
PUSH_LAST = 0xBF
PUSH_OPCODES: frozenset[int] = frozenset({NPUSHB, NPUSHW, *range(PUSHB_FIRST, PUSH_LAST + 1)})
MAX_PUSH = 2 + 2 * 255  # the longest instruction: NPUSHW, its count, 255 words
CHUNK = 1 << 16  # bytes walked per step (more than MAX_PUSH); every glyph program fits one

# ADJUST: opcodes that Apple's rasterizer implements but no public instruction set
# documents; the Operation Triangulation font exploit used them (CVE-2023-41990).
ADJUST_OPCODES: frozenset[int] = frozenset({0x8F, 0x90})
_ADJUST_PRESENT = bytes(int(b in ADJUST_OPCODES) for b in range(256))  # may_contain's bytes


class Decoded(msgspec.Struct, frozen=True):
    """What a linear decode of one program found.

    ``hits`` are (offset, opcode) of watched opcodes decoded as instructions, offsets
    absolute in the buffer, at most ``max_hits`` of them; ``total`` counts them all.
    ``truncated`` is the offset of a push whose data runs past the program's end, if any.
    ``steps`` counts the decoder's steps: one per chunk, per recorded hit, and per run of
    one-byte instructions when counting, each a Python step or a C-level match.
    """

    hits: tuple[tuple[int, int], ...]
    total: int
    truncated: int | None
    steps: int = 0


def _byte_class(values: frozenset[int], negate: bool = False) -> bytes:
    body = b"".join(re.escape(bytes([b])) for b in sorted(values))
    return b"[" + (b"^" if negate else b"") + body + b"]"


def _push(op: int, size: int) -> bytes:
    return re.escape(bytes([op])) + (b".{%d}" % size if size else b"")


@cache
def _pushes() -> bytes:
    """One alternative per push opcode, and per count after NPUSHB/NPUSHW."""
    alts = [_push(PUSHB_FIRST + k, k + 1) for k in range(8)]
    alts += [_push(PUSHW_FIRST + k, 2 * (k + 1)) for k in range(8)]
    for op, width in ((NPUSHB, 1), (NPUSHW, 2)):
        counts = b"|".join(_push(n, width * n) for n in range(256))
        alts.append(re.escape(bytes([op])) + b"(?:" + counts + b")")
    return b"|".join(alts)


class _Patterns(msgspec.Struct, frozen=True):
    watched: frozenset[int]
    watched_bytes: tuple[bytes, ...]
    # A run of instructions other than watched ones (possessive), then group 1: the watched
    # instruction that stopped it, or nothing (the end, or a push running past the end).
    hit: re.Pattern[bytes]
    run_all: re.Pattern[bytes]  # every instruction: where a chunk's instructions end
    plain: re.Pattern[bytes]  # pushes, then the run of one-byte instructions after them
    any: re.Pattern[bytes]  # one byte equal to one of the opcodes (the pre-filter)
    flags: bytes  # 256 bytes, 1 at each watched opcode (``_glyphs.walk``)


def _run(watched: frozenset[int]) -> bytes:
    plain = _byte_class(PUSH_OPCODES | watched, negate=True)
    return b"(?s)(?:" + plain + b"++|" + _pushes() + b")*+"


@cache
def _patterns(opcodes: frozenset[int]) -> _Patterns:
    watched = opcodes - PUSH_OPCODES  # a push opcode is decoded as a push, never watched
    never = b"(?!)"  # no byte: for an empty set
    one = _byte_class(watched) if watched else never
    return _Patterns(
        watched,
        tuple(bytes([op]) for op in sorted(watched)),
        re.compile(_run(watched) + b"(" + one + b"?)"),
        re.compile(_run(frozenset())),
        re.compile(b"(?s)(?:" + _pushes() + b")*+(" + _byte_class(PUSH_OPCODES, True) + b"*+)"),
        re.compile(_byte_class(opcodes) if opcodes else never),
        bytes(int(b in watched) for b in range(256)),
    )


def _match(pattern: re.Pattern[bytes], data: bytes, pos: int, endpos: int
           ) -> re.Match[bytes]:
    m = pattern.match(data, pos, endpos)
    assert m is not None  # every pattern here matches the empty string
    return m


def decode(
    data: bytes,
    start: int = 0,
    end: int | None = None,
    opcodes: frozenset[int] = ADJUST_OPCODES,
    max_hits: int = 16,
) -> Decoded:
    """Decode ``data[start:end]`` as one program and find ``opcodes`` used as instructions.

    The first ``max_hits`` are recorded (one Python step each); the rest are only counted,
    at C level, so a program made of nothing but watched opcodes costs one step per chunk
    beyond those.
    """
    end = len(data) if end is None else min(end, len(data))
    pats = _patterns(opcodes)
    if _glyphs is not None and 0 <= start < end and end - start <= CHUNK:
        # One chunk: when the compiled walk meets no watched instruction, the answer is
        # the one the loop below gives in one step (tests compare the two).
        at, cut = _glyphs.walk(data, start, end, pats.flags)
        if at < 0:
            return Decoded((), 0, None if cut < 0 else cut, 1)
    hits: list[tuple[int, int]] = []
    total = steps = 0
    pos = start
    while pos < end:
        steps += 1
        limit = min(end, pos + CHUNK)
        m = _match(pats.hit, data, pos, limit)
        at = m.start(1)
        if m.end(1) > at:  # a watched instruction
            stop = _match(pats.run_all, data, at, limit).end()
            n, k = _hits(pats, data, pos, stop, hits, max_hits)
            total += n
            steps += k
            at = stop
        if limit == end:  # ``at`` short of the end: a push whose data runs past it
            return Decoded(tuple(hits), total, at if at < end else None, steps)
        pos = at  # short of ``limit``: a push that crosses it starts the next chunk
    return Decoded(tuple(hits), total, None, steps)


def _hits(pats: _Patterns, data: bytes, pos: int, stop: int,
          hits: list[tuple[int, int]], max_hits: int) -> tuple[int, int]:
    """Watched instructions in ``data[pos:stop]`` (whole instructions, none truncated):
    record them in ``hits`` up to ``max_hits``; return (how many in all, Python steps)."""
    n = steps = 0
    if len(hits) < max_hits:
        for m in pats.hit.finditer(data, pos, stop):
            steps += 1
            at = m.start(1)
            if at == m.end(1):  # the run up to ``stop``: no watched instruction left
                return n, steps
            n += 1
            hits.append((at, data[at]))
            pos = m.end()
            if len(hits) >= max_hits:
                break
    # The rest are counted: the one-byte instructions of the segment, pushes left out, one
    # findall match per run of them (each a step: a C-level match costs about that much),
    # and an empty one at ``stop``.
    runs = pats.plain.findall(data, pos, stop)
    kept = b"".join(runs)
    return n + sum(kept.count(op) for op in pats.watched_bytes), steps + len(runs) - 1


def program_kind(data: bytes, start: int, end: int, watched: frozenset[int]) -> int | None:
    """For a scan of one program ``data[start:end]``, in one compiled call: 0 when
    ``may_contain`` (ADJUST) is False; 1 when the program is one chunk in which a linear
    decode meets none of ``watched`` as an instruction and no push runs past the end
    (``decode`` then gives ``Decoded((), 0, None, 1)`` for ``watched`` and any subset of
    it); 2 otherwise. None when not known (no compiled walk, more than one chunk, bounds
    outside the data): the caller takes the steps itself."""
    if _glyphs is None or not 0 <= start < end <= len(data) or end - start > CHUNK:
        return None
    return _glyphs.program_kind(data, start, end, _ADJUST_PRESENT, _patterns(watched).flags)


def may_contain(
    data: bytes, start: int, end: int, opcodes: frozenset[int] = ADJUST_OPCODES
) -> bool:
    """Cheap pre-filter: does any byte of ``data[start:end]`` equal one of ``opcodes``?"""
    return _patterns(opcodes).any.search(data, start, end) is not None
