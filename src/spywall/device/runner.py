"""The runner of a device check: every module in turn (or spread over forked workers by
``device.parallel``), each module's failure kept to that module.

Dependencies run one way: ``runner`` uses ``parallel`` and ``timeline`` (which renders
the result folder's share of each module); both use only ``base``; ``base`` uses
neither. ``output`` (the folder itself) uses ``timeline``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

from spywall import __version__
from spywall.device import sqlite
from spywall.device.base import (
    MODULE_ERRORS,
    ArtifactMissing,
    CheckContext,
    Module,
    SchemaUnknown,
)
from spywall.errors import LimitExceeded
from spywall.incomplete import mark_unread
from spywall.report import ErrorEntry, ModuleRun, Report

E = TypeVar("E")
_ERROR_CODES = {"error": "malformed", "schema-unknown": "schema"}


def run_module(mod: Module[E], ctx: CheckContext[E]) -> ModuleRun:
    """Run one module; its failure becomes its ``ModuleRun`` (and an error entry of the
    subject, so summaries count it), never the run's. An artifact the evidence names but
    does not hold (``ArtifactMissing``) is no data: ``skipped``, with the reason. A
    module stopped by a cap leaves evidence unread: its error entry is a ``limit``.

    Fail closed: each error entry the run added (the module's failure, a malformed or
    unknown artifact, a cap, or an artifact the module itself could not read and went
    past) is evidence not examined, so it also becomes an ``incomplete-examination``
    finding (``spywall.incomplete.mark_unread``) unless ``limits.allow_incomplete``."""
    capped = False
    mark = _mark(ctx)
    try:
        run = mod.run(ctx)
    except ArtifactMissing as exc:
        run = ModuleRun(name=mod.name, status="skipped", message=f"no data: {exc}"[:500])
    except SchemaUnknown as exc:
        run = ModuleRun(name=mod.name, status="schema-unknown", message=str(exc))
    except sqlite3.OperationalError as exc:
        if str(exc).startswith(sqlite.UNDECODABLE) and not sqlite.is_lenient():
            return _rerun_lenient(mod, ctx, mark)
        drift = str(exc).startswith(("no such table", "no such column"))
        run = ModuleRun(name=mod.name, status="schema-unknown" if drift else "error",
                        message=f"{type(exc).__name__}: {exc}"[:500])
    except MODULE_ERRORS as exc:
        run = ModuleRun(name=mod.name, status="error",
                        message=f"{type(exc).__name__}: {exc}"[:500])
        capped = isinstance(exc, LimitExceeded)  # a cap, not damage: evidence left unread
    if run.records == 0:
        run.records = ctx.count(mod.name)
    if run.status in _ERROR_CODES:
        ctx.subject.errors.append(ErrorEntry(
            path=ctx.subject.path, code="limit" if capped else _ERROR_CODES[run.status],
            message=f"module {mod.name}: {run.message}"[:600]))
    mark_unread(ctx.subject, ctx.unread_since(mark[3]), mod.name,
                ctx.limits.allow_incomplete)
    return run


_Mark = tuple[dict[str, int], dict[str, int], int, int]


def _mark(ctx: CheckContext[E]) -> _Mark:
    """Where a module's output starts: so a module run again leaves no half of a run."""
    return ({k: len(v) for k, v in ctx.records.items()},
            {k: len(v) for k, v in ctx.detected.items()},
            len(ctx.subject.findings), len(ctx.subject.errors))


def _rerun_lenient(mod: Module[E], ctx: CheckContext[E], mark: _Mark) -> ModuleRun:
    """A row's text was not valid UTF-8: what the first run added is taken back and the
    module runs again with such text read escaped (so one hostile row cannot hide the
    rest of the artifact), and the damage is an error entry of its own (the text was
    read, so it leaves the check complete)."""
    records, detected, findings, errors = mark
    for store, marks in ((ctx.records, records), (ctx.detected, detected)):
        for name in [k for k in store if k not in marks]:
            del store[name]
        for name, n in marks.items():
            del store[name][n:]
    del ctx.subject.findings[findings:]
    del ctx.subject.errors[errors:]
    with sqlite.lenient_text():
        run = run_module(mod, ctx)
    ctx.subject.errors.append(ErrorEntry(
        path=ctx.subject.path, code="malformed",
        message=f"module {mod.name}: text that is not valid UTF-8 in its database, read "
                "with the invalid bytes escaped"))
    return run


def run_modules(modules: Iterable[Module[E]], ctx: CheckContext[E],
                on_done: Callable[[ModuleRun], None] | None = None, *, jobs: int = 1,
                render: bool = False) -> list[ModuleRun]:
    """Run every module (``run_module``); the runs in module order.

    ``jobs`` > 1 spreads the modules over forked worker processes where that is safe
    (``spywall.device.parallel``); the report is the same. ``render``: also render the
    records into the parts of an MVT result folder (``ctx.parts``), where each module ran.
    """
    mods = list(modules)
    ctx.columns = render  # (a module's batches of records stay columns for the renderer)
    if jobs > 1:
        from spywall.device import parallel  # (only a parallel run pays for it)

        if parallel.can_fork(ctx.evidence, len(mods)):
            done = parallel.run_forked(mods, ctx, jobs, render, run_module, on_done)
            return parallel.merge(ctx, done)
    runs: list[ModuleRun] = []
    for mod in mods:
        runs.append(run_module(mod, ctx))
        if on_done is not None:
            on_done(runs[-1])
    if render:
        from spywall.device.timeline import parts_of  # (only a result folder pays for it)

        ctx.parts = parts_of(ctx.records, ctx.detected, ctx.batches)
    return runs


def new_report(command: str) -> Report:
    """An empty report of a device check, started now (the same as the commands' own)."""
    return Report(tool_version=__version__, command=command, started=datetime.now(UTC))


def finish(report: Report) -> Report:
    report.finished = datetime.now(UTC)
    return report.finalize()
