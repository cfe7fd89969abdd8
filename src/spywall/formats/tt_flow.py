"""Where TrueType bytecode can execute: jump targets found by tracking pushed constants.

A linear decode (``tt_bytecode``) reads a program from its first byte and skips push data.
The interpreter instead executes from wherever control lands: JMPR (0x1C), JROT (0x78) and
JROF (0x79) add a popped offset to the jump instruction's own address, so a jump can land
in the middle of push data and start a different, overlapping decoding there. Calls
(CALL, LOOPCALL, and opcodes given a body by IDEF) enter function bodies, which are on
the linear decoding of the program that defines them (FDEF/IDEF), as are both arms of
IF/ELSE/EIF (the interpreter skips over code by decoding it linearly).

``analyse`` runs a small abstract interpretation over the program: each instruction offset
gets the abstract stack it can be reached with (top entries each a known int32 or unknown,
and whether anything below them is unknown), and the SLOOP counter. States that meet at an
offset are joined (entries that differ become unknown, a depth mismatch makes the bottom
unknown), so the fixed point over-approximates every execution. Pushes give constants;
DUP/SWAP/ROLL/CINDEX/MINDEX/POP/CLEAR/DEPTH move them; ADD/SUB/NEG/ABS/MAX/MIN, the
comparisons and logic ops compute them; every other instruction pops and pushes unknowns
by its stack effect (OpenType "The TrueType Instruction Set"). Function bodies start from
an unknown stack, and a call leaves one (``tt_calls`` overrides both, following calls
across a font's programs). Both arms of every branch are followed.

The result: every reachable instruction offset, the offsets of watched opcodes
(ADJUST, 0x8F/0x90) among them, and the jumps whose target is not a constant (they could
land anywhere). The work is bounded by ``max_steps`` (instruction visits); when the budget
runs out the analysis says so (``complete`` False) and callers fail closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from spywall.formats.tt_bytecode import (
    ADJUST_OPCODES,
    NPUSHB,
    NPUSHW,
    PUSH_LAST,
    PUSHB_FIRST,
    PUSHW_FIRST,
)

JMPR, JROT, JROF = 0x1C, 0x78, 0x79
JUMP_OPCODES: frozenset[int] = frozenset({JMPR, JROT, JROF})
IF, ELSE, EIF, FDEF, ENDF, IDEF = 0x58, 0x1B, 0x59, 0x2C, 0x2D, 0x89
CALL, LOOPCALL, SLOOP = 0x2B, 0x2A, 0x17
MAX_DEPTH = 64  # stack entries tracked; deeper ones count as the unknown bottom
MAX_SCAN = 1 << 16  # instructions one IF/FDEF skip may decode
_INT32 = 1 << 32

Value = int | None


class State(msgspec.Struct, frozen=True):
    stack: tuple[Value, ...] = ()  # top last
    bottom: bool = False  # entries below ``stack`` exist but are unknown (or may)
    loop: Value = 1


TOP = State((), True, None)


class Flow(msgspec.Struct, frozen=True):
    """What ``analyse`` found in one program (offsets relative to its start)."""

    reachable: frozenset[int]  # instruction offsets control can reach
    watched: tuple[int, ...]  # reachable offsets holding a watched opcode, ascending
    jumped: tuple[int, ...]  # of those, the ones off the linear decoding
    unresolved: tuple[int, ...]  # offsets of jumps whose target is not a constant
    complete: bool  # False: the step budget ran out first
    steps: int


def instruction_length(code: bytes | memoryview, pc: int) -> int | None:
    """Bytes of the instruction at ``pc`` (with its push data); None if it runs past the end."""
    op = code[pc]
    if op in (NPUSHB, NPUSHW):
        if pc + 1 >= len(code):
            return None
        size = 2 + code[pc + 1] * (1 if op == NPUSHB else 2)
    elif PUSHB_FIRST <= op < PUSHW_FIRST:
        size = 1 + op - PUSHB_FIRST + 1
    elif PUSHW_FIRST <= op <= PUSH_LAST:
        size = 1 + 2 * (op - PUSHW_FIRST + 1)
    else:
        size = 1
    return size if pc + size <= len(code) else None


def linear(code: bytes | memoryview) -> list[int]:
    """Instruction offsets of a linear decode from 0 (stops at a truncated push)."""
    out: list[int] = []
    pc = 0
    while pc < len(code):
        size = instruction_length(code, pc)
        if size is None:
            break
        out.append(pc)
        pc += size
    return out


def pushed(code: bytes | memoryview, pc: int) -> tuple[int, ...]:
    """The values a push instruction at ``pc`` pushes, in push order."""
    op = code[pc]
    if op in (NPUSHB, NPUSHW):
        n, at, word = code[pc + 1], pc + 2, op == NPUSHW
    elif op < PUSHW_FIRST:
        n, at, word = op - PUSHB_FIRST + 1, pc + 1, False
    else:
        n, at, word = op - PUSHW_FIRST + 1, pc + 1, True
    if not word:
        return tuple(code[at : at + n])
    return tuple(int.from_bytes(code[at + 2 * i : at + 2 * i + 2], "big", signed=True)
                 for i in range(n))


def _i32(v: int) -> int:
    v %= _INT32
    return v - _INT32 if v >= 1 << 31 else v


# Stack effects (pops, pushes) of the instructions whose results are not tracked. Opcodes
# not listed (and not handled in ``_step``) are undefined: unknown effect, like a call.
_EFFECT: dict[int, tuple[int, int]] = {}


def _fill(ops: range | tuple[int, ...], pops: int, pushes: int) -> None:
    for op in ops:
        _EFFECT[op] = (pops, pushes)


_fill((0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0E, 0x18, 0x19, 0x2D, 0x30, 0x31, 0x3D, 0x4D,
       0x4E, 0x7A, 0x7C, 0x7D, ELSE, EIF), 0, 0)
_fill(range(0x06, 0x0C), 2, 0)  # SPVTL, SFVTL, SPVFS, SFVFS
_fill((0x0C, 0x0D), 0, 2)  # GPV, GFV
_fill((0x0F,), 5, 0)  # ISECT
_fill((0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x1A, 0x1D, 0x1E, 0x1F, 0x29, 0x2E, 0x2F,
       0x34, 0x35, 0x36, 0x37, 0x4F, 0x5E, 0x5F, 0x76, 0x77, 0x7E, 0x7F, 0x85, 0x8D, IF,
       FDEF, IDEF), 1, 0)
_fill((0x27, 0x3A, 0x3B, 0x3E, 0x3F, 0x42, 0x44, 0x48, 0x70, 0x81, 0x82, 0x86, 0x87, 0x8E),
      2, 0)
_fill((67, 69, 70, 71, 86, 87, 102, 103, 136, *tuple(range(104, 112))), 1, 1)
_fill((0x49, 0x4A, 0x62, 0x63), 2, 1)  # MD, DIV, MUL (F26Dot6: not tracked)
_fill((0x4B, 0x4C), 0, 1)  # MPPEM, MPS
_fill(range(0xC0, 0xE0), 1, 0)  # MDRP
_fill(range(0xE0, 0x100), 2, 0)  # MIRP
LOOPED: frozenset[int] = frozenset({0x32, 0x33, 0x39, 0x3C, 0x80})  # pop ``loop`` points
SHPIX = 0x38  # pops an amount, then ``loop`` points
DELTAS: frozenset[int] = frozenset({0x5D, 0x71, 0x72, 0x73, 0x74, 0x75})  # n, then 2n


def _known(a: Value, b: Value, fn: Callable[[int, int], int]) -> Value:
    return None if a is None or b is None else _i32(fn(a, b))


_BINARY: dict[int, Callable[[int, int], int]] = {
    0x50: lambda a, b: int(a < b), 0x51: lambda a, b: int(a <= b),
    0x52: lambda a, b: int(a > b), 0x53: lambda a, b: int(a >= b),
    0x54: lambda a, b: int(a == b), 0x55: lambda a, b: int(a != b),
    0x5A: lambda a, b: int(bool(a) and bool(b)), 0x5B: lambda a, b: int(bool(a) or bool(b)),
    0x60: lambda a, b: a + b, 0x61: lambda a, b: a - b,
    0x8B: max, 0x8C: min,
}
_UNARY: dict[int, Callable[[int], int]] = {
    0x5C: lambda a: int(not a), 0x64: abs, 0x65: lambda a: -a,
}


class _Stack:
    """A mutable copy of a ``State`` for one step."""

    def __init__(self, s: State) -> None:
        self.items: list[Value] = list(s.stack)
        self.bottom = s.bottom
        self.loop = s.loop

    def pop(self) -> Value:
        return self.items.pop() if self.items else None

    def drop(self, n: int) -> None:
        del self.items[max(0, len(self.items) - n):]

    def push(self, *values: Value) -> None:
        self.items.extend(values)

    def unknown(self) -> None:
        self.items, self.bottom, self.loop = [], True, None

    def state(self) -> State:
        items = self.items
        if len(items) > MAX_DEPTH:
            items, self.bottom = items[-MAX_DEPTH:], True
        return State(tuple(items), self.bottom, self.loop)


def _effect(op: int, st: _Stack, code: bytes | memoryview, pc: int) -> None:
    """Apply instruction ``op`` at ``pc`` to the abstract stack."""
    if op in _BINARY:
        b, a = st.pop(), st.pop()
        st.push(_known(a, b, _BINARY[op]))
    elif op in _UNARY:
        a = st.pop()
        st.push(None if a is None else _i32(_UNARY[op](a)))
    elif op in _EFFECT:
        pops, pushes = _EFFECT[op]
        st.drop(pops)
        st.push(*([None] * pushes))
    elif op in _SPECIAL:
        _SPECIAL[op](st, code, pc)
    else:  # CALL, LOOPCALL, undefined opcodes (maybe an IDEF), ADJUST, GETVARIATION...
        st.unknown()


def _push(st: _Stack, code: bytes | memoryview, pc: int) -> None:
    st.push(*pushed(code, pc))


def _dup(st: _Stack, code: bytes | memoryview, pc: int) -> None:
    a = st.pop()
    st.push(a, a)


def _swap(st: _Stack, code: bytes | memoryview, pc: int) -> None:
    b, a = st.pop(), st.pop()
    st.push(b, a)


def _clear(st: _Stack, code: bytes | memoryview, pc: int) -> None:
    st.items, st.bottom = [], False


def _depth(st: _Stack, code: bytes | memoryview, pc: int) -> None:
    st.push(None if st.bottom else len(st.items))


def _pick(st: _Stack, move: bool) -> None:
    k = st.pop()
    if k is None or k < 1 or k > len(st.items):
        st.unknown()  # an element below what is tracked, or an interpreter error
        return
    v = st.items[-k]
    if move:
        del st.items[-k]
    st.push(v)


def _roll(st: _Stack, code: bytes | memoryview, pc: int) -> None:
    c, b, a = st.pop(), st.pop(), st.pop()
    st.push(b, c, a)


def _sloop(st: _Stack, code: bytes | memoryview, pc: int) -> None:
    st.loop = st.pop()


def _looped(st: _Stack, extra: int) -> None:
    if st.loop is None or st.loop < 0 or st.loop > 0xFFFF:
        st.unknown()
    else:
        st.drop(st.loop + extra)
    st.loop = 1


def _delta(st: _Stack, code: bytes | memoryview, pc: int) -> None:
    n = st.pop()
    if n is None or n < 0 or n > 0xFFFF:
        st.unknown()
    else:
        st.drop(2 * n)


_SPECIAL: dict[int, Callable[[_Stack, bytes | memoryview, int], None]] = {
    NPUSHB: _push, NPUSHW: _push, 0x20: _dup, 0x21: lambda st, c, p: st.drop(1),
    0x22: _clear, 0x23: _swap, 0x24: _depth,
    0x25: lambda st, c, p: _pick(st, False), 0x26: lambda st, c, p: _pick(st, True),
    0x8A: _roll, SLOOP: _sloop, SHPIX: lambda st, c, p: _looped(st, 1),
    JMPR: lambda st, c, p: st.drop(1), JROT: lambda st, c, p: st.drop(2),
    JROF: lambda st, c, p: st.drop(2),
    **{op: (lambda st, c, p: _looped(st, 0)) for op in LOOPED},
    **dict.fromkeys(DELTAS, _delta),
    **{op: _push for op in range(PUSHB_FIRST, 0x100) if op < 0xC0},
}
CALLING: frozenset[int] = frozenset({CALL, LOOPCALL})
# Opcodes whose stack effect is modelled; the rest (undefined opcodes, which an IDEF may
# define, ADJUST, GETVARIATION...) have an unknown effect, like a call.
TRACKED: frozenset[int] = (frozenset(_BINARY) | frozenset(_UNARY) | frozenset(_EFFECT)
                           | frozenset(_SPECIAL)) - CALLING


def join(a: State, b: State) -> State:
    """The least state covering both."""
    if a == b:
        return a
    k = min(len(a.stack), len(b.stack))
    top = tuple(x if x == y else None for x, y in
                zip(a.stack[len(a.stack) - k:], b.stack[len(b.stack) - k:], strict=True))
    bottom = a.bottom or b.bottom or len(a.stack) != len(b.stack)
    return State(top, bottom, a.loop if a.loop == b.loop else None)


class Budget:
    """Instruction visits left, shared by every analysis of one font."""

    def __init__(self, steps: int) -> None:
        self.left = steps
        self.complete = True  # False once a visit was refused

    def take(self) -> bool:
        if self.left <= 0:
            self.complete = False
            return False
        self.left -= 1
        return True


class _Analysis:
    """The fixed point of one program run from its start (or of one function body run
    from one entry state: ``tt_calls``, which overrides the hooks ``call``, ``define`` and
    ``returned``)."""

    def __init__(self, code: bytes | memoryview, budget: Budget,
                 skips: dict[int, int | None] | None = None) -> None:
        self.code = code
        self.budget = budget
        self.states: dict[int, State] = {}
        self.work: list[int] = []
        self.unresolved: set[int] = set()
        self.skips: dict[int, int | None] = {} if skips is None else skips

    def reach(self, pc: int, state: State) -> None:
        if not 0 <= pc < len(self.code):
            return  # off the program: the interpreter stops with an error
        old = self.states.get(pc)
        new = state if old is None else join(old, state)
        if new != old:
            self.states[pc] = new
            self.work.append(pc)

    def skip(self, pc: int, stop: frozenset[int]) -> int | None:
        """Offset after the instruction that ends the block opened at ``pc`` (an IF stops
        at its ELSE or EIF, an ELSE at its EIF, an FDEF/IDEF at ENDF), as the interpreter
        finds it: decoding linearly, counting nested IF/EIF."""
        if pc in self.skips:
            return self.skips[pc]
        code, at, depth, out = self.code, pc, 1, None
        for _ in range(MAX_SCAN):
            size = instruction_length(code, at)
            if size is None:
                break
            if not self.budget.take():
                return None
            at += size
            if at >= len(code):
                break
            op = code[at]
            if op == IF and stop != _ENDF_ONLY:
                depth += 1
            elif op == EIF and stop != _ENDF_ONLY:
                depth -= 1
            if op in stop and (op == ENDF or (op == EIF and depth == 0)
                               or (op == ELSE and depth == 1)):
                out = at + 1
                break
        self.skips[pc] = out
        return out

    def drain(self) -> bool:
        """Step until no work is left (True) or the budget runs out (False)."""
        while self.work:
            if not self.budget.take():
                return False
            pc = self.work.pop()
            self.step(pc, self.states[pc])
        return True

    def call(self, op: int, st: _Stack, after: int) -> None:
        """CALL, LOOPCALL or an opcode an IDEF may define, at the instruction before
        ``after``, with ``st`` the stack before it: here, an unknown effect."""
        st.unknown()
        self.reach(after, st.state())

    def define(self, op: int, pc: int, number: Value) -> None:
        """FDEF/IDEF ``number`` at ``pc``: here, its body is run from an unknown stack."""
        self.reach(pc + 1, TOP)

    def returned(self, state: State) -> None:
        """ENDF reached with ``state``: here, nothing (the caller resumes unknown)."""

    def step(self, pc: int, state: State) -> None:
        code = self.code
        size = instruction_length(code, pc)
        if size is None:
            return  # a push running past the end
        op = code[pc]
        st = _Stack(state)
        if op in JUMP_OPCODES:
            if op != JMPR:
                st.pop()  # the condition
            offset = st.pop()
            after = st.state()
            if offset is None:
                self.unresolved.add(pc)
            elif offset != 0:  # JMPR 0 would loop on itself
                self.reach(pc + offset, after)
            if op != JMPR:  # both arms, whatever the condition
                self.reach(pc + size, after)
            return
        if op in (FDEF, IDEF):
            self.define(op, pc, st.pop())
            end = self.skip(pc, _ENDF_ONLY)
            if end is not None:
                self.reach(end, st.state())
            return
        if op == ENDF:
            self.returned(state)
            return
        if op == IF:
            st.drop(1)
            after = st.state()
            self.reach(pc + 1, after)
            other = self.skip(pc, _ELSE_EIF)
            if other is not None:
                self.reach(other, after)
            return
        if op == ELSE:
            end = self.skip(pc, _EIF_ONLY)
            if end is not None:
                self.reach(end, state)
            return
        if op in CALLING or op not in TRACKED:
            self.call(op, st, pc + size)
            return
        _effect(op, st, code, pc)
        self.reach(pc + size, st.state())


_ENDF_ONLY = frozenset({ENDF})
_ELSE_EIF = frozenset({ELSE, EIF})
_EIF_ONLY = frozenset({EIF})


def result(code: bytes | memoryview, reach: frozenset[int], unresolved: Iterable[int],
           budget: Budget, max_steps: int, watched: frozenset[int] = ADJUST_OPCODES) -> Flow:
    """The ``Flow`` of ``code`` given the offsets found reachable in it."""
    on_line = set(linear(code))
    hits = tuple(sorted(pc for pc in reach if code[pc] in watched))
    return Flow(reach, hits, tuple(pc for pc in hits if pc not in on_line),
                tuple(sorted(unresolved)), budget.complete, max_steps - budget.left)


def analyse(code: bytes | memoryview, watched: frozenset[int] = ADJUST_OPCODES,
            max_steps: int = 1 << 20) -> Flow:
    """Reachable instructions of ``code`` (one program) from its start; function bodies
    from an unknown stack (``tt_calls`` runs them from their callers' stacks)."""
    budget = Budget(max_steps)
    a = _Analysis(code, budget)
    a.reach(0, State())
    a.drain()
    return result(code, frozenset(a.states), a.unresolved, budget, max_steps, watched)
