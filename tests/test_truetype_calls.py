"""Jumps across calls: a caller pushes the offset (or the function number) a function's
jump uses (``tt_calls``), hiding ADJUST in push data that only that jump reaches.

The oracle for instruction boundaries is fontTools' disassembler (``fonttools_offsets`` of
``test_truetype_flow``): every ADJUST found this way must sit where fontTools' linear
decoding has no instruction (inside push data), and every clean twin's jump must land on
one of fontTools' boundaries.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.engine import scan_bytes
from spywall.formats import truetype, tt_calls, tt_flow
from spywall.formats.base import ParseContext
from spywall.limits import Budget
from spywall.samples import truetype as ts
from test_truetype_flow import FILLER, fonttools_offsets

CALL_SAMPLES = list(ts._interprocedural())


def _program(data: bytes, where: str) -> bytes:
    """A program's bytes read by fontTools (``fpgm``, ``prep`` or a glyph's name)."""
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(data))
    if where in ("fpgm", "prep"):
        return bytes(font[where].program.getBytecode())
    return bytes(font["glyf"][where].program.getBytecode())


@pytest.mark.parametrize("sample", CALL_SAMPLES, ids=lambda s: s.name)
def test_call_samples(sample: ts.Sample) -> None:
    subject = scan_bytes(sample.data, sample.name)
    assert {f.rule for f in subject.findings} == set(sample.expected)
    for f in subject.findings:
        assert "CVE-2023-41990" in f.cves
        if f.rule != "truetype-adjust":
            continue
        detail = f.detail
        where = "fpgm" if detail["program"] == "fpgm" else "square"
        code = _program(sample.data, where)
        assert detail["program_length"] == len(code)
        assert f.location.offset is not None
        assert isinstance(detail["program_offset"], int)
        at = f.location.offset - detail["program_offset"]
        assert code[at] == 0x8F
        assert at not in fonttools_offsets(code)  # inside push data, by fontTools
        assert detail["jump_reached"] == 1
        # One program alone cannot resolve the jump: its offset comes from a caller.
        assert tt_flow.analyse(code).unresolved


def test_clean_twin_jumps_land_on_fonttools_boundaries() -> None:
    code = ts.FPGM_CALLEE
    boundaries = set(fonttools_offsets(code))
    glyph = ts.call_with(ts.MISS_OFFSET)
    flows = tt_calls.analyse_font([code, b"", glyph])
    assert flows[0].complete
    assert flows[0].reachable <= boundaries
    assert not flows[0].watched
    assert not flows[0].unresolved
    hit = tt_calls.analyse_font([code, b"", ts.call_with(ts.HIT_OFFSET)])
    assert hit[0].jumped == (6,)
    assert 6 not in boundaries


def body(fn: int, before: bytes, gap: bytes, after: bytes) -> tuple[bytes, int, int]:
    """FDEF ``fn`` whose JMPR jumps by its argument, past ``gap`` onto a push hiding 0x8F:
    (code, the jump's offset, the hidden byte's offset)."""
    head = b"\xb0" + bytes([fn]) + b"\x2c" + before
    jump_at = len(head)
    code = head + b"\x1c" + gap + b"\xb1\x21\x8f" + after + b"\x2d"
    return code, jump_at, jump_at + 1 + len(gap) + 2


@settings(max_examples=120, deadline=None)
@given(
    FILLER,
    FILLER,
    FILLER,
    FILLER,
    st.integers(0, 200),
    st.booleans(),
    st.sampled_from(["direct", "through", "loop"]),
    st.integers(2, 40),
)
def test_adjust_behind_a_callers_offset_is_found(
    before: bytes,
    gap: bytes,
    after: bytes,
    caller_fill: bytes,
    fn: int,
    hit: bool,
    how: str,
    glyphs: int,
) -> None:
    code, jump_at, hidden = body(fn, before, gap, after)
    target = hidden if hit else hidden + 1  # the instruction after the push
    offset = (target - jump_at).to_bytes(2, "big")
    relay = 201  # a function calling the function its caller names
    fpgm = code + bytes([0xB0, relay, 0x2C, 0x2B, 0x2D])
    push_args = b"\xb8" + offset
    if how == "direct":
        call = push_args + bytes([0xB0, fn, 0x2B])
    elif how == "through":
        call = push_args + bytes([0xB1, fn, relay, 0x2B])
    else:
        call = push_args + bytes([0xB1, 1, fn, 0x2A])
    caller = caller_fill + call
    # Many glyph programs that call the function with other stacks (over MAX_CONTEXTS):
    # their runs share one entry, which must not hide the offending one.
    others = [
        b"\xb0"
        + bytes([i])
        + b"\xb8"
        + (hidden + 1 - jump_at).to_bytes(2, "big")
        + bytes([0xB0, fn, 0x2B, 0x21])
        for i in range(glyphs)
    ]
    boundaries = set(fonttools_offsets(fpgm))
    assert hidden not in boundaries
    assert tt_flow.analyse(fpgm).unresolved == (jump_at,)  # alone: unknown
    # Up to MAX_CONTEXTS callers in all: each entry stack is run as it is.
    few = others[: tt_calls.MAX_CONTEXTS - 1]
    flow = tt_calls.analyse_font([fpgm, b"", *few, caller])[0]
    assert flow.complete
    if hit:
        assert flow.jumped == (hidden,)
    else:
        assert not flow.watched
        assert flow.reachable <= boundaries
        assert not flow.unresolved
    # More callers: the later ones share one run, whose joined offset may be unknown;
    # then the jump is unresolved (reported), never clean.
    flow = tt_calls.analyse_font([fpgm, b"", *others, caller])[0]
    assert flow.complete
    if hit:
        assert flow.jumped == (hidden,) or flow.unresolved == (jump_at,)
    else:
        assert not flow.watched
        assert flow.reachable <= boundaries
        assert not flow.unresolved


@settings(max_examples=25, deadline=None)
@given(FILLER, FILLER, st.booleans(), st.sampled_from(["prep", "simple", "composite"]))
def test_scan_follows_the_call_from_every_program(
    before: bytes, gap: bytes, hit: bool, place: str
) -> None:
    code, jump_at, hidden = body(0, before, gap, b"")
    offset = (hidden if hit else hidden + 1) - jump_at
    caller = b"\xb8" + offset.to_bytes(2, "big") + b"\xb0\x00\x2b"
    progs = ts.Programs(fpgm=code, **{place: caller})
    subject = scan_bytes(ts.font(progs), "x.ttf")
    assert {f.rule for f in subject.findings} == ({"truetype-adjust"} if hit else set())


def test_unresolved_across_calls_is_reported_not_clean() -> None:
    """The offset is read from storage by the caller: the heuristic names the jump."""
    data = ts.font(ts.Programs(fpgm=ts.FPGM_CALLEE, simple=ts.CALL_WITH_STORED))
    subject = scan_bytes(data, "x.ttf")
    (finding,) = subject.findings
    assert finding.rule == "truetype-computed-jump"
    assert finding.detail["program"] == "fpgm"
    start = finding.detail["program_offset"]
    assert isinstance(start, int)
    assert finding.detail["jumps"] == str(start + 3)  # function 0's JMPR


def test_budget_exhausted_keeps_the_heuristic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(truetype, "MAX_CALL_STEPS", 3)
    data = ts.font(ts.Programs(fpgm=ts.FPGM_CALLEE, simple=ts.call_with(ts.MISS_OFFSET)))
    subject = scan_bytes(data, "x.ttf")
    assert {f.rule for f in subject.findings} == {"truetype-computed-jump"}
    parsed = truetype.parse(data, ParseContext(Budget()))
    assert any("across calls stopped" in w for w in parsed.warnings)


def test_recursion_and_unknown_numbers_are_bounded() -> None:
    # Function 0 (x): if x < 20, it calls itself with x + 1; then JMPR (at 16) by x.
    # x = 1 lands on PUSHB[1] at 17, x = 3 on its data byte 0x8F at 19. Function 1 calls
    # a function whose number it reads from storage (any function, itself included).
    fpgm = (
        b"\xb0\x00\x2c"
        + b"\x20\xb0\x14\x50\x58"
        + b"\x20\xb0\x01\x60\xb0\x00\x2b"
        + b"\x59\x1c\xb1\x21\x8f\x2d"
        + b"\xb0\x01\x2c\xb0\x03\x43\x2b\x2d"
    )
    assert set(fonttools_offsets(fpgm)) >= {3, 16, 17}
    assert 19 not in fonttools_offsets(fpgm)
    glyph = b"\xb1\x01\x01\x2b"
    flow = tt_calls.analyse_font([fpgm, glyph], max_steps=50_000)[0]
    assert flow.complete
    assert flow.jumped == (19,)  # x = 3, two recursive calls deep
    assert flow.unresolved == (16,)  # the deeper calls share one run: x unknown


def test_hostile_call_graph_stops_at_the_budget() -> None:
    # 200 functions, each LOOPCALLing every number with varied stacks.
    fpgm = b"".join(bytes([0xB0, n, 0x2C]) + b"\xb0\x02\x4b\x2a" * 3 + b"\x2d" for n in range(200))
    glyph = b"\x4b\x4b\x2a" * 50
    flows = tt_calls.analyse_font([fpgm, glyph], max_steps=20_000)
    assert flows[0].steps <= 20_000


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=5))
def test_random_programs_are_bounded(codes: list[bytes]) -> None:
    flows = tt_calls.analyse_font(codes, max_steps=5_000)
    for code, flow in zip(codes, flows, strict=True):
        assert flow.steps <= 5_000
        assert all(0 <= pc < len(code) for pc in flow.reachable)
        assert set(flow.jumped) <= set(flow.watched) <= flow.reachable


# A concrete interpreter for a subset of the instruction set (pushes, DUP, POP, ADD,
# IF/ELSE/EIF, FDEF/ENDF, CALL, LOOPCALL, JMPR, JROT, and 0x8F as a no-op), written from
# the OpenType instruction set's descriptions: every offset it executes must be one the
# analysis found reachable (the analysis over-approximates every execution).
TOKENS = (
    [bytes([0xB0, v]) for v in range(9)]
    + [bytes([0xB1, 0, 1]), b"\xb0\xfe"]
    + [
        bytes([op])
        for op in (0x20, 0x21, 0x60, 0x58, 0x1B, 0x59, 0x2C, 0x2D, 0x2B, 0x2A, 0x1C, 0x78, 0x8F)
    ]
)


class _Stop(Exception):
    pass


class Machine:
    def __init__(self, codes: list[bytes]) -> None:
        self.codes = codes
        self.functions: dict[int, tuple[int, int]] = {}
        self.seen: set[tuple[int, int]] = set()
        self.steps = 0

    def skip(self, code: bytes, pc: int, stops: tuple[int, ...]) -> int:
        """After the instruction that ends the block at ``pc`` (linear, IF/EIF nested)."""
        depth, at = 1, pc
        while True:
            size = tt_flow.instruction_length(code, at)
            if size is None:
                raise _Stop
            at += size
            if at >= len(code):
                raise _Stop
            op = code[at]
            if op == 0x2D and 0x2D in stops:
                return at + 1
            if 0x2D in stops:
                continue
            depth += (op == 0x58) - (op == 0x59)
            if (op == 0x59 and depth == 0) or (op == 0x1B and depth == 1 and 0x1B in stops):
                return at + 1

    def run(self, program: int, pc: int, stack: list[int], depth: int) -> None:
        code = self.codes[program]
        while 0 <= pc < len(code):
            self.steps += 1
            if self.steps > 3_000 or depth > 12:
                raise _Stop
            self.seen.add((program, pc))
            op = code[pc]
            size = tt_flow.instruction_length(code, pc)
            if size is None:
                raise _Stop
            pop = _popper(stack)
            if 0xB0 <= op <= 0xB7:
                stack.extend(code[pc + 1 : pc + size])
            elif op == 0x20:
                v = pop()
                stack += [v, v]
            elif op == 0x21:
                pop()
            elif op == 0x60:
                b, a = pop(), pop()
                stack.append(a + b)
            elif op == 0x58:
                if not pop():
                    pc = self.skip(code, pc, (0x1B, 0x59))
                    continue
            elif op == 0x1B:
                pc = self.skip(code, pc, (0x59,))
                continue
            elif op == 0x2C:
                self.functions[pop()] = (program, pc + 1)
                pc = self.skip(code, pc, (0x2D,))
                continue
            elif op == 0x2D:
                if depth == 0:
                    raise _Stop
                return
            elif op in (0x2B, 0x2A):
                number = pop()
                count = pop() if op == 0x2A else 1
                if number not in self.functions:
                    raise _Stop
                for _ in range(max(0, min(count, 20))):
                    self.run(*self.functions[number], stack, depth + 1)
            elif op in (0x1C, 0x78):
                cond = pop() if op == 0x78 else 1
                offset = pop()
                if cond:
                    if offset == 0:
                        raise _Stop
                    pc += offset
                    continue
            elif op not in (0x59, 0x8F):  # outside the subset (reached inside push data)
                raise _Stop
            pc += size
        raise _Stop  # ran off the program: an error, unless it ended a top-level one


def _popper(stack: list[int]) -> Callable[[], int]:
    def pop() -> int:
        if not stack:
            raise _Stop  # the interpreter stops on a stack underflow
        return stack.pop()

    return pop


BODY = [t for t in TOKENS if t not in (b"\x2c", b"\x2d")]
_FREE = st.lists(st.sampled_from(TOKENS), max_size=30).map(b"".join)
_CODE = st.lists(st.sampled_from(BODY), max_size=16).map(b"".join)
# an fpgm of functions 0..k-1 (PUSHB n, FDEF, body, ENDF), then callers; or free bytes
_FONTS = st.one_of(
    st.tuples(st.lists(_CODE, min_size=1, max_size=4), st.lists(_CODE, min_size=1, max_size=3)).map(
        lambda t: [
            b"".join(bytes([0xB0, n, 0x2C]) + body + b"\x2d" for n, body in enumerate(t[0])),
            *t[1],
        ]
    ),
    st.lists(_FREE, min_size=1, max_size=4),
)


@settings(max_examples=400, deadline=None)
@given(_FONTS)
def test_every_concrete_execution_is_covered(codes: list[bytes]) -> None:
    m = Machine(codes)
    for program in range(len(codes)):
        with contextlib.suppress(_Stop, RecursionError):
            m.run(program, 0, [], 0)
    flows = tt_calls.analyse_font(codes, max_steps=200_000)
    if not flows[0].complete:
        return
    for program, pc in m.seen:
        # reached, or the program has a jump the analysis says could land anywhere
        assert pc in flows[program].reachable or flows[program].unresolved, (program, pc)


@pytest.mark.parametrize(("offset", "hit"), [(ts.HIT_OFFSET, True), (ts.MISS_OFFSET, False)])
def test_idef_body_runs_from_the_stack_of_the_opcode_it_defines(offset: int, hit: bool) -> None:
    """IDEF 0x92 (an undefined opcode) whose body JMPRs by what the glyph pushed before
    executing 0x92: the body of function 0 of ``FPGM_CALLEE``, defined by IDEF instead."""
    fpgm = b"\xb0\x92\x89" + ts.FPGM_CALLEE[3:9]
    glyph = bytes([0xB1, 1, offset, 0x92])
    assert tt_flow.analyse(fpgm).unresolved == (3,)
    flow = tt_calls.analyse_font([fpgm, b"", glyph])[0]
    assert flow.jumped == ((6,) if hit else ())
    assert not flow.unresolved
    subject = scan_bytes(ts.font(ts.Programs(fpgm=fpgm, simple=glyph)), "x.ttf")
    assert {f.rule for f in subject.findings} == ({"truetype-adjust"} if hit else set())


def test_a_function_defined_only_where_an_unknown_jump_may_land() -> None:
    """Program 1 jumps by a stored offset (anywhere: maybe onto the FDEF 7 hidden in its
    push data); program 2 calls 7, then jumps by a stored offset and hides 0x8F. Without
    the hidden definition the call fails, but the analysis cannot rule it out: program 2's
    jump must stay unresolved (reported), not be dropped as unreachable."""
    fpgm = b"\xb0\x00\x2c\x2d"
    hidden_def = b"\xb0\x05\x43\x1c" + b"\xb3\x07\x2c\x2d\x00" + b"\x21\x21"
    caller = b"\xb0\x07\x2b" + b"\xb0\x05\x43\x1c" + b"\xb0\x8f"
    flows = tt_calls.analyse_font([fpgm, hidden_def, caller])
    assert flows[1].unresolved == (3,)
    assert flows[2].unresolved == (6,)
    assert 3 in flows[2].reachable
