"""Jumps into push data: the reachable-offset analysis of TrueType programs (``tt_flow``).

The instruction-length table is checked against an independent decoder, fontTools'
``ttLib.tables.ttProgram`` (its disassembly of every program of every font under
/usr/share/fonts and of the samples), and the three decoders of spywall (the regular
expression walk of ``tt_bytecode``, ``tt_flow.linear`` and the analysis) against each
other. Property tests hide ADJUST at random places behind jumps.
"""

from __future__ import annotations

import glob
import io
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.engine import scan_bytes
from spywall.formats import tt_bytecode, tt_flow
from spywall.samples import all_samples
from spywall.samples import truetype as ts

NON_PUSH = frozenset(range(256)) - tt_bytecode.PUSH_OPCODES
_MNEMONIC = re.compile(r"^([A-Z][A-Z0-9]*)\[")
_PUSH_SIZE = {"NPUSHB": (2, 1), "NPUSHW": (2, 2), "PUSHB": (1, 1), "PUSHW": (1, 2)}
REAL_FONTS = sorted(glob.glob("/usr/share/fonts/**/*.tt[fc]", recursive=True))


def fonttools_offsets(code: bytes) -> list[int]:
    """Instruction offsets by fontTools' disassembler (push sizes from the values it
    lists after each push)."""
    from fontTools.ttLib.tables import ttProgram

    prog = ttProgram.Program()
    prog.fromBytecode(code)
    lines = prog.getAssembly(preserve=True)
    out: list[int] = []
    pc = 0
    i = 0
    while i < len(lines):
        m = _MNEMONIC.match(lines[i])
        assert m, lines[i]
        name = m.group(1)
        i += 1
        values = 0
        while i < len(lines) and not _MNEMONIC.match(lines[i]):
            values += len(lines[i].split())
            i += 1
        out.append(pc)
        head, width = _PUSH_SIZE.get(name, (1, 0))
        pc += head + width * values
    assert pc == len(code)
    return out


def programs(font: Any) -> list[tuple[str, bytes]]:
    out = [(tag, font[tag].program.getBytecode()) for tag in ("fpgm", "prep") if tag in font]
    if "glyf" in font:
        glyf = font["glyf"]
        for name in font.getGlyphOrder():
            glyph = glyf[name]
            if getattr(glyph, "program", None):
                out.append((name, glyph.program.getBytecode()))
    return out


def check_decoders_agree(code: bytes, label: str) -> None:
    expected = fonttools_offsets(code)
    assert tt_flow.linear(code) == expected, label
    dec = tt_bytecode.decode(code, opcodes=NON_PUSH, max_hits=len(code) + 1)
    pushes = [pc for pc in expected if code[pc] in tt_bytecode.PUSH_OPCODES]
    assert sorted([at for at, _ in dec.hits] + pushes) == expected, label
    assert dec.truncated is None, label


def _fonts_in(data: bytes) -> list[Any]:
    from fontTools.ttLib import TTCollection, TTFont

    if data[:4] == b"ttcf":
        return list(TTCollection(io.BytesIO(data)).fonts)
    return [TTFont(io.BytesIO(data))]


@pytest.mark.parametrize("path", REAL_FONTS or ["(none)"])
def test_linear_decode_agrees_with_fonttools_on_real_fonts(path: str) -> None:
    if not REAL_FONTS:
        pytest.skip("no fonts under /usr/share/fonts (apt-get install fonts-dejavu-core)")
    with open(path, "rb") as fh:
        data = fh.read()
    for font in _fonts_in(data):
        for name, code in programs(font):
            check_decoders_agree(code, f"{path}:{name}")
            if any(code[pc] in tt_flow.JUMP_OPCODES for pc in tt_flow.linear(code)):
                flow = tt_flow.analyse(code)
                # Real fonts never jump off their linear decoding.
                assert flow.complete, (path, name)
                assert flow.reachable <= set(tt_flow.linear(code)), (path, name)


def test_linear_decode_agrees_with_fonttools_on_samples() -> None:
    seen = 0
    for sample in all_samples():
        if sample.data[:4] not in (b"\x00\x01\x00\x00", b"true", b"ttcf"):
            continue
        for font in _fonts_in(sample.data):
            for name, code in programs(font):
                check_decoders_agree(code, f"{sample.name}:{name}")
                seen += 1
    assert seen > 20


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_three_decoders_agree_on_random_bytes(code: bytes) -> None:
    """Where fontTools decodes random bytes too (it rejects a truncated push)."""
    offsets = tt_flow.linear(code)
    dec = tt_bytecode.decode(code, opcodes=NON_PUSH, max_hits=len(code) + 1)
    pushes = [pc for pc in offsets if code[pc] in tt_bytecode.PUSH_OPCODES]
    assert sorted([at for at, _ in dec.hits] + pushes) == offsets
    end = offsets[-1] + (tt_flow.instruction_length(code, offsets[-1]) or 0) if offsets else 0
    assert (dec.truncated is None) == (end == len(code))
    # fontTools asserts that an NPUSHB/NPUSHW pushes something; a count of 0 is legal
    # bytecode (it pushes nothing), so those programs are compared among spywall's only.
    empty_push = any(code[pc] in (0x40, 0x41) and code[pc + 1] == 0 for pc in offsets)
    if dec.truncated is None and not empty_push:
        assert fonttools_offsets(code) == offsets
    flow = tt_flow.analyse(code, max_steps=20_000)
    assert flow.steps <= 20_000
    assert all(0 <= pc < len(code) for pc in flow.reachable)
    assert not offsets or 0 in flow.reachable


# Filler instructions with no net effect on the stack: SVTCA, RTG, PUSHB x + POP, MPPEM+POP.
FILLER = st.lists(st.sampled_from([b"\x00", b"\x01", b"\x18", b"\xb0\x07\x21",
                                   b"\xb8\x12\x34\x21", b"\x4b\x21", b"\x40\x02\x8e\x91\x21\x21"]),
                  max_size=12).map(b"".join)


def hide(before: bytes, gap: bytes, after: bytes, kind: int, hit: bool) -> bytes:
    """``before``, a jump, ``gap``, then a push hiding 0x8F, then ``after``: the jump lands
    on the hidden byte (``hit``) or on the instruction after the push (the clean twin)."""
    push = b"\xb1\x21\x8f"  # PUSHB[1] 0x21 0x8F: 0x8F is data at offset 2 of the push
    jump_len = {tt_flow.JMPR: 4, tt_flow.JROT: 6, tt_flow.JROF: 6}[kind]
    jump_at = len(before) + jump_len - 1
    target = len(before) + jump_len + len(gap) + (2 if hit else len(push))
    offset = (target - jump_at).to_bytes(2, "big")
    if kind == tt_flow.JMPR:
        jump = b"\xb8" + offset + b"\x1c"
    else:
        jump = b"\xb8" + offset + b"\xb0" + (b"\x01" if kind == tt_flow.JROT else b"\x00")
        jump += bytes([kind])
    return before + jump + gap + push + b"\x00" + after


@settings(max_examples=150, deadline=None)
@given(FILLER, FILLER, FILLER, st.sampled_from(sorted(tt_flow.JUMP_OPCODES)))
def test_adjust_hidden_behind_any_jump_is_found(before: bytes, gap: bytes, after: bytes,
                                                kind: int) -> None:
    bad = hide(before, gap, after, kind, hit=True)
    good = hide(before, gap, after, kind, hit=False)
    assert tt_bytecode.decode(bad).total == 0  # invisible to the linear decode
    flow = tt_flow.analyse(bad)
    assert flow.complete
    assert len(flow.jumped) == 1
    assert bad[flow.jumped[0]] == 0x8F
    clean = tt_flow.analyse(good)
    assert clean.complete
    assert not clean.watched
    assert not clean.unresolved


@settings(max_examples=40, deadline=None)
@given(FILLER, FILLER, st.booleans())
def test_hidden_jump_in_a_glyph_is_reported_by_the_scan(before: bytes, gap: bytes,
                                                        hit: bool) -> None:
    code = hide(before, gap, b"", tt_flow.JMPR, hit)
    subject = scan_bytes(ts.font(ts.Programs(simple=code)), "x.ttf")
    ids = {f.rule for f in subject.findings}
    assert ids == ({"truetype-adjust"} if hit else set())
    for f in subject.findings:
        assert "CVE-2023-41990" in f.cves


def test_backward_jump_loop_and_storage_offsets() -> None:
    # PUSHB 3 at 0, JMPR at 2 -> 5: PUSHW -4, JMPR at 8 -> 4, the data byte of the
    # PUSHB[0] 0x90 at 3: ADJUST, reached only by the backward jump.
    code = b"\xb0\x03\x1c\xb0\x90\xb8\xff\xfc\x1c"
    flow = tt_flow.analyse(code)
    assert flow.jumped == (4,)
    # An offset read from the storage area: unknown, and the 0x8F it could reach is not.
    flow = tt_flow.analyse(ts.COMPUTED_JUMP)
    assert flow.unresolved == (3,)
    assert not flow.watched


def test_if_else_states_are_joined_not_inherited() -> None:
    """PUSHB 9 (the offset), then IF x: PUSHB 4 ... ELSE ... EIF, JMPR: on the ELSE path
    the offset is 9, on the IF path 4; both targets are followed (one hides 0x8F)."""
    code = (b"\xb0\x09" + b"\x4b" + b"\x58" + b"\x21\xb0\x04" + b"\x1b" + b"\x59" + b"\x1c"
            + b"\xb1\x00\x8f")
    # offsets: 0 PUSHB 9, 2 MPPEM, 3 IF, 4 POP, 5 PUSHB 4, 7 ELSE, 8 EIF, 9 JMPR, 10 PUSHB[1]
    flow = tt_flow.analyse(code)
    assert flow.unresolved == (9,)  # the two paths disagree: 4 vs 9 joins to unknown
    assert flow.complete


def test_analysis_is_bounded() -> None:
    # Thousands of nested IFs and a jump back to the start: the step budget stops it.
    code = b"\x4b\x58" * 20_000 + b"\xb8\x80\x00\x1c"
    flow = tt_flow.analyse(code, max_steps=5_000)
    assert not flow.complete
    assert flow.steps <= 5_000 + tt_flow.MAX_SCAN
    data = ts.font(ts.Programs(simple=code + b"\xb0\x8f"))
    subject = scan_bytes(data, "x.ttf")
    assert {f.rule for f in subject.findings} == {"truetype-computed-jump"}
