"""A persistent pool of scan workers for a long-running process (the platform's gate in
``spywall serve``, ``platform ingest`` and ``consume``): one call at a time per worker,
each under the limits ``spywall.workers`` gives the ``scan`` command's workers.

- **memory**: each worker sets its ``RLIMIT_DATA`` to the pool's ceiling
  (``limits.memory_ceiling``); an allocation past it is a ``MemoryError`` the engine turns
  into a ``limit`` entry, and a worker that dies of it costs only its call;
- **time**: the engine's SIGALRM backstop fires inside the worker; the caller kills a
  worker still busy ``KILL_GRACE`` seconds after it (qpdf's C++ is not interruptible);
- **faults**: any other death (a crash in a C library, the OOM killer) is seen through
  the worker's sentinel;
- **an owner killed** (SIGKILL) while a worker is stuck in C++: nobody is left to kill
  it at the deadline. On Linux the kernel kills each worker when its parent (the fork
  server, which ends with its owner) ends (``workers.end_with_parent``); elsewhere, and
  as a second backstop, each call also sets the worker's ``RLIMIT_CPU`` to the same
  deadline, which ends a worker that spins (a worker that is not in a call reads the end
  of its pipe and exits).

A call whose worker died or was killed raises ``WorkerLost`` (with the reason, as the
``scan`` command words it); the worker is dropped and the next call gets a fresh one, the
other calls are not touched. ``scan`` does the ``scan`` command's second attempt: a worker
killed while qpdf held the input is followed by one more call with qpdf off.

Workers start on the first call, up to ``size`` at once (a caller waits for a free one),
and stay for the next calls; ``close`` stops them (a collected pool stops them too).

Start method: ``forkserver`` where the platform has it. The pool's owners run threads (the
server's event loop, its gate thread holding a database connection, the analysis), and a
``fork`` of a threaded process copies every lock another thread held at that instant (the
logging module's, a buffered stream's, the database driver's) into a child that can never
release them. The fork server is a fresh interpreter, started by ``exec`` on the first
call (no threads, no database connection, no socket of the parent's), with the scan engine
imported once; each worker is forked from it, so a replacement costs a ``fork`` and not an
interpreter start. As with any fork server, each worker imports the owner's main module
again (as ``__mp_main__``): a script that embeds a pool keeps its work under
``if __name__ == "__main__"`` (``spywall``'s own entry points do). ``method="fork"`` is
for tests whose patches must reach the workers.
"""

from __future__ import annotations

import os
import resource
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import suppress
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from spywall.limits import Limits, memory_ceiling
from spywall.workers import (
    KILL_GRACE,
    Worker,
    died,
    enter_worker,
    hard_limit,
    out_of_memory,
    stopped,
    without_qpdf,
)

T = TypeVar("T")
PRELOAD = ["spywall.engine", "spywall.platform.media"]


class WorkerLost(Exception):
    """A call's worker died or was killed before it answered; ``str`` says how."""

    def __init__(self, reason: str, in_qpdf: bool = False) -> None:
        super().__init__(reason)
        self.in_qpdf = in_qpdf


class PoolClosed(WorkerLost):
    """A call on a pool that was closed (its owner is shutting down)."""


def _cpu_deadline(seconds: float) -> None:
    """Have the kernel end this process (SIGXCPU) once it has spent ``seconds`` more of
    CPU time: the backstop for a worker spinning in C++ whose owner was killed (nobody
    is left to kill it at the deadline). A single-threaded call spends CPU time no faster
    than wall time, so while the owner lives its kill comes first."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    want = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(resource.RLIMIT_CPU,
                       (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


def _leave_fork_server() -> None:
    """Close this worker's copy of the pipe end by which a fork server learns that its
    owner is gone. The fork server runs while any process holds that end, its owner and
    every worker it forked: a worker stuck in C++ would keep it, and so itself, alive
    after the owner's death. Without it the fork server ends with its owner, and each
    worker with the fork server (``end_with_parent``). A worker starts no process of its
    own, which is all that end is for; a worker not forked by a fork server has none."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(fd, int):
        with suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]


def _serve_calls(conn: Connection, busy: Any, ceiling: int, seconds: float) -> None:
    """A pool worker's loop: ``(fn, args)`` in, ``("ok", result)`` or ``("error", why)``
    out, until ``None`` or the end of the pipe; each call within ``seconds`` of CPU time
    (``_cpu_deadline``)."""
    _leave_fork_server()
    enter_worker(busy, ceiling)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        fn, args = job
        _cpu_deadline(seconds)
        try:
            answer: tuple[str, Any] = ("ok", fn(*args))
        except MemoryError:
            answer = ("error", out_of_memory("scanning"))
        except Exception as exc:   # one call's failure, answered; the worker goes on
            answer = ("error", f"its scan worker failed: {type(exc).__name__}: {exc}")
        del job, fn, args
        conn.send(answer)


def _forget_inherited_fork_server() -> None:
    """A process forked from one that had started a fork server (a retro-hunt's task
    process, forked from its driver) holds that fork server's pid, address and a copy of
    the pipe end that keeps it running: ``multiprocessing`` would wait for it as its own
    child (ECHILD: no worker could start), and its workers would end with that other
    process. Forget it, so this process starts a fork server of its own."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if not isinstance(pid, int) or not hasattr(os, "waitid"):
        return
    try:      # WNOWAIT: a fork server of this process's that has ended stays waitable
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        with suppress(OSError, TypeError):
            os.close(server._forkserver_alive_fd)  # type: ignore[union-attr]
        server._forkserver_pid = None  # type: ignore[union-attr]
        server._forkserver_address = None  # type: ignore[union-attr]
        server._forkserver_alive_fd = None  # type: ignore[union-attr]


def _context(method: str | None) -> Any:
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    if method is None:
        method = "forkserver" if "forkserver" in methods else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":   # only read when the fork server starts (once a process)
        _forget_inherited_fork_server()
        ctx.set_forkserver_preload(PRELOAD)
    return ctx


def _stop_all(workers: set[Worker]) -> None:
    for w in list(workers):
        w.stop()
    workers.clear()


class ScanPool:
    """Supervised scan workers under ``limits`` (memory ceiling, deadline), at most
    ``size`` at once; ``method``: the start method (default: see the module's text)."""

    def __init__(self, limits: Limits, size: int = 2, method: str | None = None) -> None:
        self.limits, self.size, self.method = limits, max(1, size), method
        self.ceiling = memory_ceiling(limits)
        self._ctx: Any = None
        self._idle: list[Worker] = []
        self._all: set[Worker] = set()
        self._cond = threading.Condition()
        self._closed = False
        self._finalizer = weakref.finalize(self, _stop_all, self._all)

    def scan(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args, limits)`` in a worker; after a worker killed while qpdf held the
        input, once more with qpdf off. Raises ``WorkerLost``."""
        try:
            return self.call(fn, *args, self.limits)
        except WorkerLost as lost:
            again = without_qpdf(self.limits, lost.in_qpdf)
            if again is None:
                raise
            return self.call(fn, *args, again)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker (``fn`` importable by name, the arguments and the
        result picklable), killed after the deadline of the pool's limits."""
        w = self._checkout()
        healthy = False
        try:
            status, value = self._run(w, fn, args)
            healthy = True       # it answered: the call's own failure costs no worker
        finally:
            self._checkin(w, healthy)
        if status != "ok":
            raise WorkerLost(value)
        return value  # type: ignore[no-any-return]

    def _run(self, w: Worker, fn: Callable[..., Any], args: tuple[Any, ...]
             ) -> tuple[str, Any]:
        """The worker's answer, ``(status, value)``; ``WorkerLost`` when it died or was
        killed at the deadline."""
        seconds = hard_limit(self.limits) + KILL_GRACE
        deadline = time.monotonic() + seconds
        with suppress(OSError):  # it died while idle, just now: its exit status says how
            w.conn.send((fn, args))
        while True:
            wait([w.conn, w.proc.sentinel], max(0.0, deadline - time.monotonic()))
            if w.conn.poll():
                try:
                    answer: tuple[str, Any] = w.conn.recv()
                except (EOFError, OSError):
                    pass     # it died while answering: its exit status says how
                else:
                    return answer
            if not w.proc.is_alive():
                w.proc.join()
                raise WorkerLost(died(w.proc.exitcode))
            if time.monotonic() >= deadline:
                in_qpdf = w.busy.value > 0
                w.stop()
                raise WorkerLost(stopped(seconds), in_qpdf)

    def _checkout(self) -> Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise PoolClosed("the scan worker pool was closed")
                while self._idle:
                    w = self._idle.pop()
                    if w.proc.is_alive():
                        return w
                    self._drop(w)   # killed from outside while idle
                if len(self._all) < self.size:
                    try:
                        if self._ctx is None:
                            self._ctx = _context(self.method)
                        w = Worker(self._ctx, _serve_calls, self.ceiling,
                                   hard_limit(self.limits) + KILL_GRACE)
                    except (OSError, RuntimeError) as exc:   # no process, no fork server
                        raise WorkerLost(f"no scan worker could be started: {exc}") from exc
                    self._all.add(w)
                    return w
                self._cond.wait()

    def _checkin(self, w: Worker, healthy: bool) -> None:
        with self._cond:
            if healthy and not self._closed:
                self._idle.append(w)
            else:
                self._drop(w)
            self._cond.notify()

    def _drop(self, w: Worker) -> None:
        self._all.discard(w)
        w.stop()

    def pids(self) -> list[int]:
        """The process ids of the pool's workers (none before the first call)."""
        with self._cond:
            return sorted(w.proc.pid for w in self._all)

    def close(self) -> None:
        """Stop every worker (one busy with a call is killed: that call raises
        ``WorkerLost``); later calls raise ``PoolClosed``."""
        with self._cond:
            self._closed = True
            for w in self._idle:
                with suppress(OSError):
                    w.conn.send(None)
                self._drop(w)
            self._idle.clear()
            for w in self._all:   # busy: its caller sees it die and drops it
                w.proc.kill()
            self._cond.notify_all()
