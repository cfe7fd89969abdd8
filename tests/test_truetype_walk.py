"""The compiled linear walk of TrueType programs (``_glyphs.walk``), which lets
``tt_bytecode.decode`` and ``truetype``'s program scan answer in one step for a program
where no watched opcode decodes as an instruction, against the expressions it short-cuts
(the oracle: the same code with the helper switched off): the same ``Decoded`` (hits,
totals, truncation, steps) on any program, and, on fonts, the same fonts, warnings and
elements charged, also when the element budget runs out part-way."""

from __future__ import annotations

import glob
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.errors import SpywallError
from spywall.formats import truetype, tt_bytecode, tt_flow
from spywall.formats.base import ParseContext
from spywall.limits import Budget, Limits
from spywall.samples import truetype as ts

pytestmark = pytest.mark.skipif(tt_bytecode._glyphs is None,
                                reason="the compiled glyph helpers are not built")

# Push opcodes (whose data swallows what follows), counts, ADJUST and jump opcodes, others.
_BYTES = st.lists(st.sampled_from([0x40, 0x41, 0xB0, 0xB3, 0xB7, 0xB8, 0xBF, 0x00, 0x01, 0x02,
                                   0x8F, 0x90, 0x1C, 0x78, 0x79, 0x2B, 0x4B, 0xFF]),
                  max_size=120).map(bytes)
_SETS = [tt_bytecode.ADJUST_OPCODES, tt_flow.JUMP_OPCODES,
         tt_bytecode.ADJUST_OPCODES | tt_flow.JUMP_OPCODES, frozenset({0x40, 0xB0, 0x2B})]


def _slow_decode(*args: object, **kw: object) -> tt_bytecode.Decoded:
    with mock.patch.object(tt_bytecode, "_glyphs", None):
        return tt_bytecode.decode(*args, **kw)  # type: ignore[arg-type]


@settings(max_examples=1500, deadline=None)
@given(_BYTES, st.integers(0, 10), st.integers(0, 10), st.sampled_from(_SETS),
       st.sampled_from([0, 1, 16]))
def test_decode_with_the_walk_is_decode_without(code: bytes, head: int, tail: int,
                                                opcodes: frozenset[int], max_hits: int) -> None:
    start, end = min(head, len(code)), max(0, len(code) - tail)
    fast = tt_bytecode.decode(code, start, end, opcodes, max_hits)
    assert fast == _slow_decode(code, start, end, opcodes, max_hits)
    kind = tt_bytecode.program_kind(code, start, end, opcodes)
    assert kind == (None if start >= end else
                    0 if not tt_bytecode.may_contain(code, start, end) else
                    1 if tt_bytecode._glyphs.walk(code, start, end,
                                                  tt_bytecode._patterns(opcodes).flags)
                    == (-1, -1) else 2)
    if kind == 1:
        for subset in (opcodes, frozenset(sorted(opcodes)[:1])):
            assert _slow_decode(code, start, end, subset, max_hits) == \
                tt_bytecode.Decoded((), 0, None, 1)


@pytest.mark.parametrize(("code", "expected"), [
    (b"", (-1, -1)),
    (b"\x40", (-1, 0)),                  # NPUSHB without its count
    (b"\x40\x02\x8f", (-1, 0)),          # one byte short: the ADJUST byte is data
    (b"\x40\x02\x8f\x90\x8f", (4, -1)),
    (b"\x41\x01\x8f\x90\x1c", (-1, -1)),  # a jump, not watched here
    (b"\xbf" + bytes(16) + b"\x90", (17, -1)),
    (b"\xbf" + bytes(15), (-1, 0)),
    (b"\x2b\xb0", (-1, 1)),
])
def test_walk_by_hand(code: bytes, expected: tuple[int, int]) -> None:
    flags = tt_bytecode._patterns(tt_bytecode.ADJUST_OPCODES).flags
    assert tt_bytecode._glyphs.walk(code, 0, len(code), flags) == expected
    assert tt_bytecode._glyphs.walk(code, 0, len(code) + 99, flags) == expected  # clamped
    with pytest.raises(ValueError, match="256"):
        tt_bytecode._glyphs.walk(code, 0, len(code), b"\x01")
    with pytest.raises(ValueError, match="256"):
        tt_bytecode._glyphs.program_kind(code, 0, len(code), b"\x01", flags)


def _outcome(data: bytes, max_elements: int) -> object:
    budget = Budget(Limits(seconds=60, max_elements=max_elements))
    try:
        parsed = truetype.parse(data, ParseContext(budget))
    except SpywallError as exc:
        return repr(exc), budget.elements
    return parsed.structure, parsed.warnings, parsed.logical_end, budget.elements


def _fonts() -> list[bytes]:
    corpus = [s.data for s in ts.samples() if not s.name.endswith(".pdf")]
    paths = sorted(glob.glob("/usr/share/fonts/truetype/**/*.tt[fc]", recursive=True))
    corpus += [Path(p).read_bytes() for p in paths[:: max(1, len(paths) // 25)]]
    return corpus


@pytest.mark.parametrize("max_elements", [2_000_000, 20_000, 700])
def test_fonts_scan_the_same_with_and_without_the_walk(max_elements: int) -> None:
    """Real and crafted fonts: the same structure (programs decoded, ADJUST hits,
    unresolved jumps), warnings and elements charged; with a small element cap, the
    budget runs out at the same program either way."""
    corpus = _fonts()
    fast = [_outcome(d, max_elements) for d in corpus]
    with mock.patch.object(tt_bytecode, "_glyphs", None):
        slow = [_outcome(d, max_elements) for d in corpus]
    assert fast == slow
    if max_elements == 700:
        assert any("more than 700 elements" in str(o) for o in fast)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([ts.font(ts.Programs(simple=ts.GLYPH_ADJUST)),
                        ts.font(ts.Programs(composite=ts.GLYPH_ADJUST), long_loca=True)]),
       st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1,
                max_size=12))
def test_mutated_fonts_scan_the_same(seed: bytes, edits: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for at, value in edits:
        data[at % len(data)] = value
    fast = _outcome(bytes(data), 2_000_000)
    with mock.patch.object(tt_bytecode, "_glyphs", None):
        assert _outcome(bytes(data), 2_000_000) == fast
