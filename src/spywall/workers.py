"""Scan workers: every file is scanned in a worker process, under a memory ceiling, and a
supervisor makes a worker that dies or overruns cost only the input it held.

A worker scans one input at a time, so its limits are per input:

- **memory**: it sets its ``RLIMIT_DATA`` to ``limits.memory_ceiling`` (private writable
  memory: the heap, numpy and qpdf buffers; a mapped input does not count). An allocation
  past it is a ``MemoryError``, which the engine turns into a ``limit`` entry of the input
  (so an ``incomplete-examination`` finding); the worker frees it and goes on.
- **time**: parsers check the time budget, and a SIGALRM backstop fires at twice it; but
  neither interrupts C++ (qpdf). The supervisor kills a worker still busy
  ``KILL_GRACE`` seconds after that backstop.
- **faults**: a mapped input truncated by another process makes the worker fault
  (SIGBUS); any other death (the kernel's OOM killer, a crash in a C library) is caught
  the same way, by the worker's process sentinel.

What becomes of the input a worker held when it ended:

- SIGBUS on a mapped input: scanned again by a fresh worker, read rather than mapped,
  with a ``truncated`` entry saying so;
- killed at the deadline while qpdf held it (``in_qpdf``): scanned again by a fresh worker
  with qpdf off, its PDFs read from their raw bytes (``formats.pdf``), so the findings
  qpdf did not let it reach are made, and the overrun is a ``limit`` entry;
- anything else: a ``limit`` entry naming the cause (an ``incomplete-examination``
  finding): fail closed.

The other inputs' results are kept and a new worker takes the next input. Standard input
is read by this process, so ``-`` is scanned here, under the same memory ceiling.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from msgspec import structs

from spywall import incomplete
from spywall.limits import Limits, MiB, memory_ceiling
from spywall.report import ErrorEntry, Subject

if TYPE_CHECKING:
    from spywall.verdict_cache import VerdictCache

KILL_GRACE = 2.0
TRUNCATED = (
    "the file was truncated by another process while it was mapped for its scan "
    "(SIGBUS): scanned again, read rather than mapped"
)

# In a worker: a counter shared with the supervisor, non-zero while qpdf's C++ code runs.
_QPDF_BUSY: Any = None


@contextmanager
def in_qpdf() -> Iterator[None]:
    """Mark a call into qpdf, so a worker killed inside it is retried without qpdf."""
    flag = _QPDF_BUSY
    if flag is None:
        yield
        return
    flag.value += 1
    try:
        yield
    finally:
        flag.value -= 1


def ceiling_in_force() -> int | None:
    """This process's data ceiling in bytes, if it has one."""
    soft = resource.getrlimit(resource.RLIMIT_DATA)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def out_of_memory(doing: str = "parsing") -> str:
    """The error message for a ``MemoryError`` met while ``doing``."""
    ceiling = ceiling_in_force()
    if ceiling is None:
        return f"out of memory while {doing}"
    return (
        f"out of memory while {doing}: the memory ceiling of {ceiling // MiB} MiB "
        "(--max-memory) was reached"
    )


def cap_memory(ceiling: int) -> tuple[int, int]:
    """Set this process's ``RLIMIT_DATA`` to ``ceiling`` (never above the hard limit);
    return the limits it had."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(
        resource.RLIMIT_DATA,
        (ceiling if hard == resource.RLIM_INFINITY else min(ceiling, hard), hard),
    )
    return soft, hard


@contextmanager
def memory_capped(ceiling: int) -> Iterator[None]:
    """``cap_memory(ceiling)`` meanwhile."""
    before = cap_memory(ceiling)
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, before)


def end_with_parent() -> None:
    """Linux: have the kernel kill this process (SIGKILL) when the process that started
    it ends, however it ends. A supervisor killed with SIGKILL can no longer kill a worker
    stuck in C++ at its deadline, and such a worker reads no pipe: without this it would
    run on, spinning or blocked, with the input it held. If the parent ended before the
    request was made, the worker has been handed to a reaper and ends at once (a worker
    is never started by the init process itself)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) != 0:
        return                      # not fatal: the deadline and RLIMIT_CPU still hold
    if os.getppid() == 1:
        os._exit(1)


def enter_worker(busy: Any, ceiling: int) -> None:
    """What a scan worker process does first: end with its parent, share the
    supervisor's qpdf counter, leave SIGINT to the supervisor, one BLAS thread, and its
    memory ceiling."""
    global _QPDF_BUSY
    end_with_parent()
    _QPDF_BUSY = busy
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops its workers
    # One input at a time: BLAS thread pools would only spend the ceiling (each thread's
    # stack and buffers are private writable memory).
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    cap_memory(ceiling)


def _serve(conn: Connection, busy: Any, ceiling: int, cache: VerdictCache | None) -> None:
    """A worker's loop: ``(path, limits)`` in, the ``Subject`` out, until ``None``."""
    enter_worker(busy, ceiling)
    from spywall import engine

    if cache is not None:  # a handle of its own on the cache's file, not the parent's
        rebuild, args = cache.__reduce__()
        cache = rebuild(*args)  # type: ignore[operator]
    while True:
        try:
            batch = conn.recv()
        except EOFError:
            return
        if batch is None:
            return
        for path, limits in batch:  # each result as soon as it is made
            conn.send(engine.scan_path(path, limits, cache))


@dataclass(frozen=True)
class _Task:
    index: int
    path: str
    limits: Limits
    retry: str = ""  # why this is a second attempt ("" for the first)


class Worker:
    """One worker process, its pipe, its qpdf counter, and the tasks handed to it (the
    first is the one it is scanning: results come back in order). ``serve(conn, busy,
    *args)`` is the process's loop; it starts with ``enter_worker``."""

    def __init__(self, ctx: Any, serve: Callable[..., None], *args: Any) -> None:
        self.busy = ctx.RawValue("i", 0)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(child, self.busy, *args), daemon=True)
        self.proc.start()
        child.close()
        self.pending: deque[_Task] = deque()
        self.deadline = 0.0

    def give(self, tasks: list[_Task], hard_seconds: float) -> None:
        self.pending.extend(tasks)
        self.deadline = time.monotonic() + hard_seconds + KILL_GRACE
        with suppress(OSError):  # it died just now: its sentinel will say how
            self.conn.send([(t.path, t.limits) for t in tasks])

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.conn.close()


def _failed(task: _Task, why: str) -> Subject:
    subject = Subject(
        path=task.path, errors=[ErrorEntry(path=task.path, code="limit", message=why)]
    )
    return incomplete.mark_incomplete(subject, task.limits.allow_incomplete)


def _signal_name(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit status {exitcode}"


def _after_death(task: _Task, exitcode: int | None) -> _Task | Subject:
    if exitcode == -signal.SIGBUS and task.limits.map_inputs:
        return replace(task, limits=structs.replace(task.limits, map_inputs=False), retry=TRUNCATED)
    return _failed(task, died(exitcode))


def died(exitcode: int | None) -> str:
    """Why an input is incomplete when its worker died with ``exitcode``."""
    return f"its scan worker died ({_signal_name(exitcode)}): the input was not examined completely"


def stopped(seconds: float) -> str:
    """Why an input is incomplete when its worker was stopped after ``seconds``."""
    return f"hard time limit: its scan worker was stopped after {seconds:g}s"


def hard_limit(limits: Limits) -> float:
    """Seconds of the engine's SIGALRM backstop for one input; a worker still busy with
    it ``KILL_GRACE`` seconds later is killed."""
    from spywall.engine import HARD_LIMIT_FACTOR

    return limits.seconds * HARD_LIMIT_FACTOR + 1.0


def without_qpdf(limits: Limits, in_qpdf: bool) -> Limits | None:
    """The limits of a second attempt after a worker was killed at its deadline: qpdf
    off when qpdf held the input (its PDFs read from their raw bytes, the overrun a
    ``limit`` entry), else None (no second attempt)."""
    return structs.replace(limits, use_qpdf=False) if in_qpdf and limits.use_qpdf else None


def _after_overrun(task: _Task, seconds: float, in_qpdf: bool) -> _Task | Subject:
    again = without_qpdf(task.limits, in_qpdf)
    if again is not None:
        return replace(task, limits=again, retry="qpdf")
    return _failed(task, stopped(seconds))


def _finish(subject: Subject, task: _Task) -> Subject:
    if task.retry == TRUNCATED:
        subject.errors.insert(0, ErrorEntry(path=task.path, code="truncated", message=TRUNCATED))
    return subject


# Files handed to a worker at once: up to this many, or this many bytes, and few enough
# that every worker gets several batches. Results still come back one by one.
BATCH_FILES = 64
BATCH_BYTES = 8 * MiB


class _Supervisor:
    def __init__(
        self, files: Sequence[str], limits: Limits, jobs: int, cache: VerdictCache | None
    ) -> None:
        import multiprocessing

        methods = multiprocessing.get_all_start_methods()
        self.ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        self.jobs, self.cache = jobs, cache
        self.ceiling = memory_ceiling(limits)
        self.hard = hard_limit(limits)
        self.queue = deque(_Task(i, f, limits) for i, f in enumerate(files))
        self.most = max(1, min(BATCH_FILES, len(files) // (jobs * 4)))
        self.workers: list[Worker] = []
        self.results: list[Subject | None] = [None] * len(files)

    def batch(self) -> list[_Task]:
        out: list[_Task] = []
        size = 0
        while self.queue and len(out) < self.most and size < BATCH_BYTES:
            task = self.queue.popleft()
            with suppress(OSError):  # the worker reports it
                size += os.stat(task.path).st_size
            out.append(task)
        return out

    def hand_out(self) -> None:
        for w in [w for w in self.workers if not w.pending and not w.proc.is_alive()]:
            w.stop()  # killed from outside while idle
            self.workers.remove(w)
        for w in self.workers:
            if not w.pending and self.queue:
                w.give(self.batch(), self.hard)
        while self.queue and len(self.workers) < self.jobs:
            w = Worker(self.ctx, _serve, self.ceiling, self.cache)
            self.workers.append(w)
            w.give(self.batch(), self.hard)

    def collect(self) -> None:
        from multiprocessing.connection import wait

        busy = [w for w in self.workers if w.pending]
        left = min(w.deadline for w in busy) - time.monotonic()
        wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], max(0.0, left))
        for w in busy:
            self.check(w)

    def check(self, w: Worker) -> None:
        while w.pending and w.conn.poll():
            try:
                subject = w.conn.recv()
            except (EOFError, OSError):
                break  # it died while sending: its sentinel says how
            task = w.pending.popleft()
            self.results[task.index] = _finish(subject, task)
            w.deadline = time.monotonic() + self.hard + KILL_GRACE  # the next one's
        if not w.pending:
            return
        if not w.proc.is_alive():
            w.proc.join()
            outcome = _after_death(w.pending[0], w.proc.exitcode)
        elif time.monotonic() >= w.deadline:
            in_qpdf = w.busy.value > 0
            w.stop()
            outcome = _after_overrun(w.pending[0], self.hard + KILL_GRACE, in_qpdf)
        else:
            return
        # It ended scanning its first task: that one has its outcome, the others it was
        # handed go back to the queue, and a fresh worker replaces it.
        task = w.pending.popleft()
        self.queue.extendleft(reversed(w.pending))
        w.stop()
        self.workers.remove(w)
        if isinstance(outcome, _Task):
            self.queue.appendleft(outcome)
        else:
            self.results[task.index] = outcome

    def close(self) -> None:
        for w in self.workers:
            if not w.pending and w.proc.is_alive():
                with suppress(OSError):
                    w.conn.send(None)
            w.stop()


def scan_files(
    files: Sequence[str],
    limits: Limits,
    jobs: int,
    on_done: Callable[[Subject], None] | None = None,
    cache: VerdictCache | None = None,
) -> list[Subject]:
    """Scan ``files`` (``-``: standard input) in ``jobs`` worker processes; the results
    in the order of ``files``, each passed to ``on_done`` in that order."""
    from spywall import engine

    sup = _Supervisor(
        [f for f in files if f != engine.STDIN], limits, max(1, min(jobs, len(files))), cache
    )
    stdin: Subject | None = None
    if engine.STDIN in files:
        with memory_capped(sup.ceiling):
            stdin = engine.scan_path(engine.STDIN, limits, cache)
    out: list[Subject] = []
    done = 0
    try:
        for f in files:
            if f == engine.STDIN:
                got: Subject | None = stdin
            else:
                while (got := sup.results[done]) is None:
                    sup.hand_out()
                    sup.collect()
                done += 1
            assert got is not None
            out.append(got)
            if on_done:
                on_done(got)
    finally:
        sup.close()
    return out
