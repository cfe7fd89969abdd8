"""The command line face: parse arguments, call a command, render, map to exit status.

Exit status (the same for every command):
  0  nothing found
  1  something found (an indicator match, an exploit structure or a heuristic warning),
     even if some inputs could not be read
  2  usage error, or an input could not be used at all: unreadable, not a capture,
     evidence no check module could read (and nothing was found)
  141  standard output was closed early (``spywall ... | head``): 128 + SIGPIPE, as a
     program killed by the signal would give; nothing is printed about it
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TextIO

from spywall import __version__, heap
from spywall.errors import InputError
from spywall.render import RENDERERS
from spywall.render.escape import visible
from spywall.report import Report, Severity, as_dict

EXIT_CLEAN, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
EXIT_BROKEN_PIPE = 141

# name -> module. A module is imported only when its command runs (or its --help is
# asked for): start-up stays small, and one command's heavy dependencies (qpdf for scan,
# the STIX loader for the checks) do not slow the others.
COMMANDS: dict[str, str] = {
    "scan": "spywall.commands.scan",
    "pcap": "spywall.commands.pcap",
    "check-ios": "spywall.commands.check_ios",
    "check-android": "spywall.commands.check_android",
    "check-sysdiagnose": "spywall.commands.check_sysdiagnose",
    "iocs": "spywall.commands.iocs",
    "render": "spywall.commands.render_cmd",
    "schema": "spywall.commands.schema_cmd",
    "explain": "spywall.commands.explain",
    "completion": "spywall.commands.completion",
    "man": "spywall.commands.man",
    "platform": "spywall.commands.platform",
    "share": "spywall.commands.share",
    "hunt": "spywall.commands.hunt",
    "evidence": "spywall.commands.evidence",
    "serve": "spywall.commands.serve",
}
# One-line help of each command, for the top-level listing without importing them all
# (tests check that it matches each module's HELP).
SUMMARIES: dict[str, str] = {
    "scan": "scan files, folders or standard input (-) for zero-click exploit payloads",
    "pcap": "inspect pcap/pcapng call captures for crafted VoIP packets and spyware indicators",
    "check-ios": "check an iTunes/Finder backup (or a filesystem dump) of an iPhone against "
                 "spyware indicators",
    "check-android": "check an Android bugreport or androidqf capture (folder or zip) "
                     "against spyware indicators",
    "check-sysdiagnose": "check an iPhone sysdiagnose (.tar.gz archive or folder) against "
                         "spyware indicators",
    "iocs": "list, count or update the spyware indicator sets (STIX 2.1)",
    "render": "re-render a saved JSON report (table, json or sarif)",
    "schema": "print the JSON Schema of spywall's JSON report",
    "explain": "explain a rule id: what it means, how sure, what to do next, where to read more",
    "completion": "print a shell completion script (bash, zsh or fish)",
    "man": "print the manual page (roff; read it with: spywall man | man -l -)",
    "platform": "the platform side: registry, ingest, gate, campaigns, violations, "
                "notifications",
    "share": "share indicators with other platforms over TAXII 2.1",
    "hunt": "retro-hunt: re-examine stored objects with today's detectors (Ray or local pool)",
    "evidence": "transparency log of detections, denials and notices: export and verify evidence",
    "serve": "the platform over HTTP: events, the inline gate, campaigns, violations (OpenAPI)",
}

_FATAL_CODES = {"io", "input"}


def _load(name: str) -> ModuleType:
    """The command's module, imported with the cyclic collector paused (imports create
    only objects that live to the end; see ``spywall.program``)."""
    with heap.paused():
        return importlib.import_module(COMMANDS[name])


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the chosen command's module is imported.

    ``argv=None`` loads every command (used by tests and documentation).
    """
    chosen = None if argv is None else _chosen(argv)
    parser = argparse.ArgumentParser(
        prog="spywall",
        description="Defense against zero-click mercenary spyware.",
        epilog="Exit status: 0 nothing found, 1 something found, 2 usage or input error.",
    )
    parser.add_argument("--version", action="version", version=f"spywall {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in SUMMARIES.items():
        p = sub.add_parser(name, help=summary, description=summary)
        if argv is not None and name != chosen:
            continue
        module = _load(name)
        module.add_arguments(p)
        if getattr(module, "OWN_OPTIONS", False):
            continue   # its sub-commands take --format and --quiet themselves
        p.add_argument("--format", "-f", choices=sorted(RENDERERS), default=None,
                       help="output format (default: table on a terminal, json otherwise)")
        p.add_argument("--quiet", "-q", action="store_true",
                       help="no progress or log lines on standard error")
    return parser


def exit_status(report: Report) -> int:
    """1 when anything above information level was found (an information finding, such
    as an app from a third-party store, is said but does not make a phone "found")."""
    if report.summary.findings > report.summary.by_severity.get(Severity.INFO, 0):
        return EXIT_FOUND
    errors = [*report.errors, *(e for s in report.subjects for e in s.errors)]
    if any(e.code in _FATAL_CODES for e in errors):
        return EXIT_ERROR
    return EXIT_CLEAN


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return _main(args)
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE


def _main(args: argparse.Namespace) -> int:
    fmt = args.format or ("table" if sys.stdout.isatty() else "json")
    try:
        report: Report | int | None = _load(args.command).run(args)
        if report is None:  # commands that print their own output (schema)
            return EXIT_CLEAN
        if isinstance(report, int):  # commands that render their own views (platform)
            return report
    except InputError as exc:
        print(f"spywall {args.command}: {visible(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("spywall: interrupted", file=sys.stderr)
        return 130
    logged = _evidence_log(args, report)
    emit(report, fmt, sys.stdout)
    sys.stdout.flush()
    return exit_status(report) if logged else EXIT_ERROR


def _evidence_log(args: argparse.Namespace, report: Report) -> bool:
    """With ``--evidence-log``, the report joins the transparency log (False: it could
    not, and the command ends with status 2 after printing the report)."""
    target = getattr(args, "evidence_log", None)
    if not target:
        return True
    import sqlalchemy

    from spywall.evidence.reports import ReportError, append_report
    from spywall.report import dump_json

    try:
        index = append_report(target, dump_json(report, indent=0).encode())
    except (ReportError, OSError, sqlalchemy.exc.SQLAlchemyError) as exc:
        print(f"spywall {args.command}: the report was not added to the evidence log "
              f"{visible(target)}: {visible(exc)}", file=sys.stderr)
        return False
    if not getattr(args, "quiet", False):
        print(f"spywall {args.command}: report added to the evidence log as entry {index}",
              file=sys.stderr)
    return True


def emit(report: Report, fmt: str, out: TextIO) -> None:
    """Render ``report`` as ``fmt`` on ``out``; a renderer that fails never loses the
    report: it is written as JSON instead (ASCII, every string exact as JSON escapes) and
    the failure is said on standard error. Renderers write nothing until they have all of
    their output."""
    try:
        RENDERERS[fmt](report, out)
    except BrokenPipeError:
        raise
    except Exception as exc:  # any renderer failure: the report must still come out
        print(f"spywall: the {fmt} output failed ({type(exc).__name__}: {visible(exc)}); "
              "the report follows as JSON", file=sys.stderr)
        out.write(json.dumps(as_dict(report), indent=2, ensure_ascii=True))
        out.write("\n")


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush at exit
    does not fail again on the closed pipe (the Python documentation's SIGPIPE note)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no real descriptor
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
