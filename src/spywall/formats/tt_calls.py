"""Calls between TrueType programs: function bodies run from their callers' stacks.

``tt_flow.analyse`` follows one program and runs every function body it defines from an
unknown stack, so a jump whose offset a caller pushed (``PUSHB 7 0, CALL`` in a glyph
program, ``JMPR`` in function 0 of ``fpgm``) has an unknown target there. ``analyse_font``
runs the programs of one font together, as the interpreter does: ``fpgm``, ``prep`` and
every glyph program from an empty stack; FDEF/IDEF record a body (function or opcode
number as pushed, unknown meaning any), and CALL/LOOPCALL (and an opcode an IDEF may
define) enter the bodies their number names, from the caller's abstract stack (the number
popped). A body is run once per distinct entry stack, up to ``MAX_CONTEXTS`` per body;
the callers beyond that share one run whose entry is the join of theirs, so every call is
covered. ENDF hands the body's stack back to its callers (LOOPCALL: also to another round
of the body). A call to a number no FDEF defines ends the path (the interpreter stops
with an error); a call made before the definition is seen is replayed when it appears.
When some jump's target is still unknown, it could land on a call or an FDEF nobody saw
(say, hidden in push data): then every body is also run from an unknown stack, as
``tt_flow.analyse`` runs them, and a call to a number with no known body resumes its
caller with an unknown stack, so the analysis stays sound for every program.

The result, per program: the offsets control can reach in it (through any call), the
watched opcodes among them, and the jumps whose target is still not a constant. All runs
share one step budget (charged for every instruction visit, call and return); when it
runs out ``complete`` is False and callers fail closed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from spywall.formats.tt_flow import (
    CALL,
    FDEF,
    IDEF,
    LOOPCALL,
    TOP,
    Budget,
    Flow,
    State,
    Value,
    _Analysis,
    _Stack,
    join,
    result,
)

MAX_CONTEXTS = 8  # distinct entry stacks run separately per function body
MAX_ROUNDS = 16  # LOOPCALL rounds followed one by one; more count as any number

_Body = tuple[int, int]  # (program index, offset of the body's first instruction)


class _Return:
    """Where a call resumes when the body returns: the caller, the offset after the call,
    and for a LOOPCALL the function number and the rounds left after this one (None:
    unknown, or more than ``MAX_ROUNDS``: any number of them)."""

    __slots__ = ("after", "caller", "loop", "number", "rounds")

    def __init__(
        self, caller: _Run, after: int, loop: bool = False, number: Value = None, rounds: Value = 0
    ) -> None:
        self.caller, self.after, self.loop = caller, after, loop
        self.number, self.rounds = number, rounds


class _Run(_Analysis):
    """One program, or one function body from one entry stack."""

    def __init__(self, font: _Font, program: int) -> None:
        super().__init__(font.codes[program], font.budget, font.skips[program])
        self.font = font
        self.program = program
        self.back: State | None = None  # the stacks ENDF was reached with, joined
        self.callers: list[_Return] = []
        self.queued = False

    def reach(self, pc: int, state: State) -> None:
        super().reach(pc, state)
        if self.work and not self.queued:
            self.queued = True
            self.font.queue.append(self)

    def call(self, op: int, st: _Stack, after: int) -> None:
        font = self.font
        if op == CALL:
            number = st.pop()
            font.enter(FDEF, number, st.state(), _Return(self, after))
        elif op == LOOPCALL:
            number, count = st.pop(), st.pop()
            state = st.state()
            if count is None or count > 0:
                rounds = None if count is None or count > MAX_ROUNDS else count - 1
                font.enter(FDEF, number, state, _Return(self, after, True, number, rounds))
            if count is None or count <= 0:
                self.reach(after, state)  # no round at all
        else:  # an opcode with no modelled effect: an IDEF body if one defines it
            font.enter(IDEF, op, st.state(), None)
            super().call(op, st, after)

    def define(self, op: int, pc: int, number: Value) -> None:
        self.font.define(op, number, (self.program, pc + 1))

    def returned(self, state: State) -> None:
        back = state if self.back is None else join(self.back, state)
        if back != self.back:
            self.back = back
            for ret in self.callers:
                self.font.resume(ret, back)


class _Font:
    def __init__(self, codes: Sequence[bytes | memoryview], budget: Budget) -> None:
        self.codes = codes
        self.budget = budget
        self.skips: list[dict[int, int | None]] = [{} for _ in codes]
        self.runs: list[list[_Run]] = [[] for _ in codes]
        self.queue: deque[_Run] = deque()
        self.bodies: dict[tuple[int, Value], list[_Body]] = {}  # (FDEF/IDEF, number)
        self.calls: list[tuple[int, Value, State, _Return | None]] = []
        self.contexts: dict[_Body, dict[State, _Run]] = {}
        self.shared: dict[_Body, _Run] = {}  # the run of callers beyond MAX_CONTEXTS
        self.linked: set[tuple[int, int, int, bool, Value]] = set()
        self.opened = False  # open_world() was called

    def new_run(self, program: int) -> _Run:
        run = _Run(self, program)
        self.runs[program].append(run)
        return run

    def targets(self, kind: int, number: Value) -> list[_Body]:
        if number is None:
            return [b for (k, _), bodies in self.bodies.items() if k == kind for b in bodies]
        return [*self.bodies.get((kind, number), ()), *self.bodies.get((kind, None), ())]

    def define(self, kind: int, number: Value, body: _Body) -> None:
        known = self.bodies.setdefault((kind, number), [])
        if body in known:
            return
        known.append(body)
        for c_kind, c_number, state, ret in list(self.calls):  # calls made before
            if not self.budget.take():
                return
            if c_kind == kind and (number is None or c_number is None or c_number == number):
                self.start(body, state, ret)

    def enter(self, kind: int, number: Value, state: State, ret: _Return | None) -> None:
        if not self.budget.take():
            return
        self.calls.append((kind, number, state, ret))
        bodies = self.targets(kind, number)
        for body in bodies:
            self.start(body, state, ret)
        if not bodies and ret is not None and self.opened:
            ret.caller.reach(ret.after, TOP)  # a body no one saw defined may answer

    def open_world(self) -> None:
        """A jump that could land anywhere could land on a call or a definition the
        analysis never saw: every body may also be entered with any stack, by any
        number, and a call to a number with no known body may return (anything)."""
        self.opened = True
        for kind in (FDEF, IDEF):
            self.enter(kind, None, TOP, None)
        for kind, number, _state, ret in list(self.calls):
            if ret is not None and not self.targets(kind, number) and self.budget.take():
                ret.caller.reach(ret.after, TOP)

    def start(self, body: _Body, state: State, ret: _Return | None) -> None:
        if not self.budget.take():
            return
        contexts = self.contexts.setdefault(body, {})
        run = contexts.get(state)
        if run is None:
            if len(contexts) < MAX_CONTEXTS:
                run = contexts[state] = self.new_run(body[0])
            else:
                run = self.shared.get(body) or self.shared.setdefault(body, self.new_run(body[0]))
            run.reach(body[1], state)
        if ret is None:
            return
        link = (id(run), id(ret.caller), ret.after, ret.loop, ret.rounds)
        if link in self.linked:
            return
        self.linked.add(link)
        run.callers.append(ret)
        if run.back is not None:
            self.resume(ret, run.back)

    def resume(self, ret: _Return, state: State) -> None:
        if not self.budget.take():
            return
        if not ret.loop or not ret.rounds:  # the last round (or maybe the last)
            ret.caller.reach(ret.after, state)
        if ret.loop and ret.rounds is None:  # another round, from what this one left
            self.enter(FDEF, ret.number, state, ret)
        elif ret.loop and ret.rounds:
            self.enter(
                FDEF,
                ret.number,
                state,
                _Return(ret.caller, ret.after, True, ret.number, ret.rounds - 1),
            )

    def run(self) -> None:
        queue = self.queue
        while queue:
            run = queue.popleft()
            run.queued = False
            if not run.drain():
                return


def analyse_font(codes: Sequence[bytes | memoryview], max_steps: int = 1 << 20) -> tuple[Flow, ...]:
    """Reachable instructions of each program of one font (``fpgm``, ``prep`` and the
    glyph programs, in any order), each started from an empty stack, calls followed."""
    budget = Budget(max_steps)
    font = _Font(codes, budget)
    for program in range(len(codes)):
        font.new_run(program).reach(0, State())
    font.run()
    if any(run.unresolved for runs in font.runs for run in runs):
        font.open_world()
        font.run()
    out: list[Flow] = []
    for program, code in enumerate(codes):
        runs = font.runs[program]
        reach = frozenset().union(*(r.states for r in runs))
        unresolved = set().union(*(r.unresolved for r in runs))
        out.append(result(code, reach, unresolved, budget, max_steps))
    return tuple(out)
