"""Pieces every command shares: the report frame, progress on standard error, and the
``--iocs`` option."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from spywall import __version__
from spywall.render.escape import visible
from spywall.report import Report

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


def stderr() -> Console:
    """The console on standard error. rich is imported on first use only: a quiet run
    (or one whose standard error is not a terminal) never pays for it. Made on each call
    (a few a run): it follows the standard error and environment of the moment."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def new_report(command: str) -> Report:
    return Report(tool_version=__version__, command=command, started=datetime.now(UTC))


def finish(report: Report) -> Report:
    report.finished = datetime.now(UTC)
    return report.finalize()


def add_ioc_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--iocs", action="append", default=[], metavar="PATH",
        help="STIX 2 indicator file or folder (repeatable; '-': a bundle on standard "
             "input); default: the bundled sets",
    )


Part = str | tuple[str, str]


def log(*parts: Part) -> None:
    """A progress or log line on standard error (never on standard output).

    Each part is plain text, or ``(text, style)``: never markup, and every control or
    format character in it is shown escaped (``spywall.render.escape.visible``), so file
    names and other evidence strings can be passed as they are."""
    from rich.text import Text

    line = Text()
    for part in parts:
        text, style = (part, "") if isinstance(part, str) else part
        line.append(visible(text), style=style)
    stderr().print(line)


@contextmanager
def progress(total: int | None, label: str, enabled: bool = True,
             thread: bool = True) -> Iterator[Progress | None]:
    """A progress bar on standard error when it is a terminal and ``enabled``.

    ``thread=False``: no refresh thread; the bar is redrawn when it advances (a device
    check forks worker processes only while no other thread runs)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(  # the label may be a file name: plain text, escaped
        TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=stderr(), transient=True, auto_refresh=thread,
    )
    with bar:
        bar.add_task(visible(label), total=total)
        yield bar


def add_evidence_log_argument(p: argparse.ArgumentParser) -> None:
    """``--evidence-log URL|FILE``: the report is appended to a transparency log
    (``spywall.evidence``, imported only when the option is given)."""
    p.add_argument("--evidence-log", default=None, metavar="URL|FILE",
                   help="append the report (input hashes, findings, tool version) to an "
                        "evidence log: a database URL or a SQLite log file")
