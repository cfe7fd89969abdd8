"""``spywall render REPORT.json``: re-render a saved JSON report without re-scanning."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spywall.errors import InputError
from spywall.report import DocumentError, Report, load_report

HELP = "re-render a saved JSON report (table, json or sarif)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("report", metavar="REPORT.json", help="a saved JSON report, or - for "
                   "standard input")


def run(args: argparse.Namespace) -> Report:
    try:
        data = (sys.stdin.buffer.read() if args.report == "-"
                else Path(args.report).read_bytes())
        return load_report(data)
    except OSError as exc:
        raise InputError(f"cannot read {args.report}: {exc.strerror or exc}") from exc
    except DocumentError as exc:
        raise InputError(f"{args.report} is not a spywall report: {exc}") from exc
