"""A device check's modules spread over forked worker processes.

The modules of a check are independent (each reads its own artifacts; none reads another's
records), and a backup's large ones (Safari history, SMS, WhatsApp) take most of the time.
``run_forked`` lets the calling process and ``jobs - 1`` forked workers take modules from
one queue (a pipe holding one byte per module: each read of one byte takes one module, so
a process that finishes early takes the next, and no module runs twice). Each module runs
on a view of the context (``CheckContext.view``) whose findings, errors and records are
that module's own; a worker writes them to a private temporary file, one pickled message
per finished module, and the parent merges everything in module order, so the report and
the result folder are the ones a sequential run makes (a test compares them).

What goes back is small: findings, error entries, and either the records that carry a
finding or, when the result folder is rendered (``render``), the module's rendered part
of it (``ModulePart``: JSON text and timeline rows), not tens of thousands of records.

Only where forking is safe: Linux (macOS system libraries do not survive ``fork``), no
other thread running, and evidence that opens its files afresh on every access (an iOS
backup that is not encrypted, a filesystem dump; not a zip held open, not a decryptor with
its own database connection). Otherwise the modules run in order, in this process.

A worker that dies (killed, out of memory) loses nothing: the modules it took but did not
report are run again here. An exception a module may not raise (a bug) is reported by the
worker and raised here by running that module again in this process, with its traceback.
"""

from __future__ import annotations

import mmap
import os
import pickle
import signal
import struct
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, NamedTuple, TypeVar

from spywall.report import ErrorEntry, Finding, ModuleRun

if TYPE_CHECKING:
    from spywall.device.base import CheckContext, Module, Record
    from spywall.device.timeline import ModulePart

E = TypeVar("E")
_LEN = struct.Struct("<Q")
_TORN = 2**64 - 1  # the length of a message still being written
MAX_MODULES = 255  # module numbers travel as single bytes


class Done(NamedTuple):
    """What one module produced, wherever it ran."""

    number: int
    run: ModuleRun
    findings: list[Finding]
    errors: list[ErrorEntry]
    objects: int
    records: dict[str, list[Record]]  # empty when rendered
    detected: dict[str, list[Record]]  # empty when rendered
    parts: list[ModulePart]
    inputs: dict[str, str]  # evidence files read (path -> sha256), when the evidence says


class Crash(NamedTuple):
    """A worker met an exception that is not a module failure (a bug)."""

    number: int


def can_fork(evidence: object, modules: int) -> bool:
    """Whether the modules may run in forked workers (see the module docstring)."""
    return (sys.platform == "linux" and hasattr(os, "fork") and 1 < modules <= MAX_MODULES
            and threading.active_count() == 1 and getattr(evidence, "fork_safe", False))


RunModule = Callable[["Module[Any]", "CheckContext[Any]"], ModuleRun]


def run_one(mods: Sequence[Module[E]], index: int, ctx: CheckContext[E],
            render: bool, run_module: RunModule) -> Done:
    """Module ``index`` on a view of ``ctx`` (run by ``run_module``, the runner's): its
    results, separate from the others'."""
    view = ctx.view()
    inputs: dict[str, str] | None = getattr(view.evidence, "inputs", None)
    known = dict(inputs) if isinstance(inputs, dict) else {}
    run = run_module(mods[index], view)
    parts: list[ModulePart] = []
    if render:
        from spywall.device.timeline import parts_of

        parts = parts_of(view.records, view.detected, view.batches)
        view.records, view.detected, view.batches = {}, {}, {}
    new_inputs = ({k: v for k, v in inputs.items() if k not in known}
                  if isinstance(inputs, dict) else {})
    return Done(index, run, view.subject.findings, view.subject.errors,
                view.subject.objects, view.records, view.detected, parts, new_inputs)


def _send(out: IO[bytes], msg: Done | Crash) -> None:
    """Append one message: its length, then its pickle, written straight to the file (a
    rendered part holds megabytes: pickled in memory first, its buffer grew by copies, 7 ms
    for a 20,000-message part, measured). The length is written last: a worker killed
    while writing leaves a length of ``_TORN``, which ``_receive`` drops."""
    start = out.tell()
    out.write(_LEN.pack(_TORN))
    pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(msg)
    end = out.tell()
    out.seek(start)
    out.write(_LEN.pack(end - start - _LEN.size))
    out.seek(end)
    out.flush()


def _receive(out: IO[bytes]) -> list[Done | Crash]:
    """The complete messages a worker wrote (a torn last one, from a worker killed while
    writing, is dropped: its module runs again). Read in place from the mapped file."""
    out.flush()
    size = os.fstat(out.fileno()).st_size
    if size < _LEN.size:
        return []
    got: list[Done | Crash] = []
    with mmap.mmap(out.fileno(), size, access=mmap.ACCESS_READ) as mapped, \
            memoryview(mapped) as data:
        pos = 0
        while pos + _LEN.size <= size:
            (n,) = _LEN.unpack_from(data, pos)
            if pos + _LEN.size + n > size:
                break
            with data[pos + _LEN.size:pos + _LEN.size + n] as message:
                got.append(pickle.loads(message))  # noqa: S301 (our own worker's file)
            pos += _LEN.size + n
    return got


def _largest_first(mods: Sequence[Module[E]], ctx: CheckContext[E]) -> list[int]:
    """Module numbers, the largest artifacts first (a module's ``weight``, when it has
    one): one large database started last would leave the other processes idle."""
    weights = [getattr(m, "weight", None) for m in mods]
    cost = [int(w(ctx)) if callable(w) else 0 for w in weights]
    return sorted(range(len(mods)), key=lambda i: -cost[i])  # stable: ties keep order


def _take(queue: int) -> int | None:
    b = os.read(queue, 1)
    return b[0] if b else None


def _worker(mods: Sequence[Module[E]], ctx: CheckContext[E], queue: int, out: IO[bytes],
            render: bool, run_module: RunModule) -> None:
    while (i := _take(queue)) is not None:
        try:
            done = run_one(mods, i, ctx, render, run_module)
        except BaseException:  # reported; the parent runs it again and raises
            _send(out, Crash(i))
            return
        _send(out, done)


def run_forked(mods: Sequence[Module[E]], ctx: CheckContext[E], jobs: int, render: bool,
               run_module: RunModule,
               on_done: Callable[[ModuleRun], None] | None = None) -> list[Done]:
    """Run ``mods`` over this process and ``jobs - 1`` forked workers; the results in
    module order (``on_done`` is called here as results come in)."""
    r, w = os.pipe()
    try:
        os.write(w, bytes(_largest_first(mods, ctx)))
    finally:
        os.close(w)
    workers: list[tuple[int, IO[bytes]]] = []
    results: dict[int, Done] = {}

    def finished(d: Done) -> None:
        results[d.number] = d
        if on_done is not None:
            on_done(d.run)

    try:
        for _ in range(max(1, jobs - 1)):
            try:
                out: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
            except OSError:  # no room for a worker's results: this process does the work
                break
            sys.stdout.flush()
            sys.stderr.flush()
            try:
                pid = os.fork()
            except OSError:  # no process to spare: the others (or this one) do the work
                out.close()
                break
            if pid == 0:  # the worker: never returns
                code = 0
                try:
                    _worker(mods, ctx, r, out, render, run_module)
                except BaseException:  # a worker must not unwind into the CLI
                    code = 1
                finally:
                    os._exit(code)
            workers.append((pid, out))
        while (i := _take(r)) is not None:
            finished(run_one(mods, i, ctx, render, run_module))
    except BaseException:
        for pid, out in workers:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            out.close()
        raise
    finally:
        os.close(r)
    for pid, done_file in workers:
        os.waitpid(pid, 0)
        with done_file:
            for msg in _receive(done_file):
                if isinstance(msg, Done) and msg.number not in results:
                    finished(msg)
    for i in range(len(mods)):  # taken by a worker that died or hit a bug: run them here
        if i not in results:
            finished(run_one(mods, i, ctx, render, run_module))
    return [results[i] for i in range(len(mods))]


def merge(ctx: CheckContext[Any], done: Sequence[Done]) -> list[ModuleRun]:
    """Fold per-module results into ``ctx`` in module order; the runs, in that order."""
    inputs = getattr(ctx.evidence, "inputs", None)
    parts: list[ModulePart] = []
    for d in done:
        ctx.subject.findings.extend(d.findings)
        ctx.subject.errors.extend(d.errors)
        ctx.subject.objects += d.objects
        for name, recs in d.records.items():
            ctx.records.setdefault(name, []).extend(recs)
        for name, recs in d.detected.items():
            ctx.detected.setdefault(name, []).extend(recs)
        parts.extend(d.parts)
        if isinstance(inputs, dict):
            inputs.update(d.inputs)
    if any(d.parts for d in done) or ctx.parts is not None:
        ctx.parts = parts
    return [d.run for d in done]
