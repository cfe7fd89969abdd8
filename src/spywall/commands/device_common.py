"""What ``check-ios`` and ``check-android`` share: indicators, module logging, and the
MVT-compatible result folder (never inside the evidence)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spywall import heap
from spywall.commands.common import log, progress
from spywall.commands.stdin import load_iocs
from spywall.device.base import CheckContext
from spywall.errors import InputError
from spywall.iocs import IocIndex
from spywall.render.escape import visible
from spywall.report import ErrorEntry, ModuleRun, Report


def add_jobs_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", "-j", type=int, default=0, metavar="N",
                   help="processes that run the check modules (default: 2 where the machine "
                        "has two cores or more; 1: in this process, one after another)")


def add_output_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", metavar="DIR", default=None,
                   help="also write MVT-compatible result files (alerts.json, timeline.csv, "
                        "<module>.json, info.json) to DIR")


def add_module_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--module", "-m", action="append", default=[], metavar="NAME",
                   help="run only this module (repeatable); an unknown name lists them")


def add_allow_incomplete_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-incomplete", action="store_true",
                   help="report evidence a module could not read (malformed, of an unknown "
                        "form, or past a cap) as an error entry only; by default it also "
                        "gets an incomplete-examination finding, so the exit status is 1 "
                        "(an artifact that is absent is no data either way)")


def jobs(args: argparse.Namespace) -> int:
    """``--jobs``, with 0 meaning two processes when there are two cores to run them."""
    if args.jobs < 0:
        raise InputError("--jobs must be 0 (automatic) or more")
    return args.jobs or min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                            else os.cpu_count() or 1)


def load_index(args: argparse.Namespace) -> IocIndex:
    """The indicator index from ``--iocs`` (the bundled sets when none is given)."""
    index = load_iocs(args.iocs)
    if not index.sources:
        raise InputError("no indicator files loaded (check --iocs)")
    return index


@contextmanager
def settled_heap() -> Iterator[None]:
    """The collector settled and freed memory kept while a check runs
    (``spywall.heap.settled``, ``spywall.heap.freed_memory_kept``)."""
    with heap.settled(), heap.freed_memory_kept():
        yield


def refuse_output_inside(out: str | None, evidence: str) -> None:
    """``InputError`` unless ``out`` is a fit place for the result folder.

    The evidence is never written to: ``out`` may not be the evidence, nor inside the
    evidence folder (for evidence given as a file, the folder holding it: an androidqf
    ``packages.json`` is read with its siblings), nor an existing file (a folder is made
    there)."""
    if not out:
        return
    ev = Path(evidence).resolve()
    dest = Path(out).resolve()
    folder = ev if ev.is_dir() else ev.parent
    if dest in (ev, folder) or folder in dest.parents:
        raise InputError(
            f"--output {visible(out)}: must not be the evidence nor inside "
            f"{visible(folder)} (the folder that holds it); choose a folder elsewhere")
    if dest.exists() and not dest.is_dir():
        raise InputError(f"--output {visible(out)}: exists and is not a folder")


@contextmanager
def module_progress(args: argparse.Namespace, total: int,
                    label: str = "checking") -> Iterator[Callable[[ModuleRun], None]]:
    """A callback for each finished module: a progress bar over the modules (standard
    error, on a terminal) and a log line for a module that failed or met an unknown
    schema."""
    with progress(total, label, not args.quiet, thread=False) as bar:
        def done(m: ModuleRun) -> None:
            if bar is not None:
                bar.advance(bar.task_ids[0])
                bar.refresh()
            if not args.quiet and m.status not in ("ok", "skipped"):
                log((m.name, "yellow"), f": {m.status} {m.message}")

        yield done


def write_outputs(args: argparse.Namespace, report: Report, ctx: CheckContext[Any]) -> None:
    """Write the MVT-compatible result folder when ``--output`` was given."""
    if not args.output:
        return
    from spywall.device.output import parts_of, write_mvt_outputs

    parts = ctx.parts if ctx.parts is not None else parts_of(ctx.records, ctx.detected)
    write_mvt_outputs(report, parts, args.output, ctx.evidence.inputs)
    if not args.quiet:
        log(f"results written to {args.output}")


def refuse_empty_result(report: Report, evidence: str) -> None:
    """An input no module could read is an input error, not a clean device.

    A wrong file (a text file given as a capture) would otherwise skip every module and
    report "nothing found", which a user could take for a clean phone.
    """
    if report.modules and all(m.status == "skipped" for m in report.modules):
        report.errors.append(ErrorEntry(
            path=evidence, code="input",
            message="no module found anything it could read: is this the right evidence?"))
        report.finalize()
