"""Readable output: what was found, how sure, what to do next.

Laid out for a person at any terminal width: cells wrap and never cut (a path or a rule
id is what a person searches for), findings are grouped by input with the most severe
input first, each place is shown relative to the input it is in, problems that stopped an
examination are apart from the findings (and an input that carries a finding is shown
once, as the finding), and the last line says the outcome in words. Every string from the
evidence is shown through ``spywall.render.escape.visible``, never as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from spywall.render.escape import visible
from spywall.report import (
    MEMBER_SEP,
    SEVERITY_ORDER,
    ErrorEntry,
    Finding,
    FindingKind,
    Report,
    Subject,
)
from spywall.rulebook import NEXT_STEPS

# How sure a finding is, in a few words (``spywall explain RULE`` tells the whole story).
_SURE: dict[FindingKind, str] = {
    FindingKind.INDICATOR: "known spyware indicator",
    FindingKind.EXPLOIT: "known exploit structure",
    FindingKind.HEURISTIC: "unusual, not proof",
}
_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan",
          "info": "dim"}
# Error codes in plain words.
_PROBLEM = {
    "malformed": "damaged or crafted structure",
    "truncated": "ends before its structure does",
    "limit": "stopped at a limit (not examined to the end)",
    "io": "could not be read",
    "input": "not usable as this kind of evidence",
    "unsupported": "not supported (not examined)",
    "schema": "database layout not known",
}
MAX_ERRORS = 200


def cell(value: object, style: str = "") -> Text:
    """A table cell or line holding ``value`` as plain text: never markup, every control
    character escaped (``spywall.render.escape.visible``)."""
    return Text("" if value is None else visible(value), style=style)


def _table(title: str, *columns: str, header: bool = True) -> Table:
    """A table whose cells wrap (never cut, never an ellipsis)."""
    t = Table(title=cell(title), title_justify="left", show_header=header,
              title_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold", no_wrap=False)
    return t


def render(report: Report, out: TextIO) -> None:
    console = Console(file=out, soft_wrap=False, highlight=False)
    with console.capture() as captured:  # nothing is written unless all of it renders
        _render(console, report)
    out.write(captured.get())


def _render(console: Console, report: Report) -> None:
    for t in (*_context(report), *_calls(report), *_modules(report)):
        console.print(t)
    ranked = sorted((s for s in report.subjects if s.findings), key=_worst)
    for subject in ranked:
        console.print(_findings(subject))
    kinds = {f.kind for s in ranked for f in s.findings}
    for kind in FindingKind:
        if kind in kinds:
            console.print(cell(f"{_SURE[kind].capitalize()}: {NEXT_STEPS[kind]}", "italic"))
    if kinds:
        console.print(cell("'spywall explain RULE' tells what a rule means and where to read "
                           "more.", "italic"))
        console.print()
    errors = _errors(report)
    if errors:
        console.print(_error_table(errors))
    if not report.command.startswith("iocs"):
        console.print(summary_line(report))


def _worst(s: Subject) -> tuple[int, int, str]:
    return (min(SEVERITY_ORDER[f.severity] for f in s.findings), -len(s.findings), s.path)


def relative(path: str, subject: str) -> str:
    """``path`` as seen from the input ``subject`` it is in ("." for the input itself)."""
    if path == subject:
        return "."
    for sep in (MEMBER_SEP, "/"):
        if path.startswith(subject + sep):
            return path[len(subject) + len(sep):]
    return path


def _where(f: Finding, subject: str) -> str:
    loc = f.location
    rel = relative(f.path, subject)
    parts = [] if rel == "." else [rel]
    if loc.module:
        parts.append(f"({loc.module})")
    if loc.record:
        parts.append(loc.record)
    if loc.frame is not None:
        parts.append(f"frame {loc.frame}")
    if loc.offset is not None:
        parts.append(f"@{loc.offset}")
    return " ".join(parts)


def _findings(subject: Subject) -> Table:
    found = sorted(subject.findings, key=lambda f: SEVERITY_ORDER[f.severity])
    t = _table(f"{subject.path}: {len(found)} finding(s)", "severity", "rule", "where",
               "what")
    for f in found:
        what = Text(visible(f.message))
        what.append(f" [{_SURE[f.kind]}]", style="italic")
        if f.indicator:
            what.append(visible(f" {f.indicator.collection} ({f.indicator.source})"))
        if f.cves:
            what.append(visible(f" {', '.join(f.cves)}"))
        t.add_row(cell(f.severity.value, _STYLE[f.severity.value]), cell(f.rule),
                  cell(_where(f, subject.path)), what)
    return t


def _errors(report: Report) -> list[tuple[str, ErrorEntry]]:
    """(input, error) of every problem, but those of an input already shown with a
    finding at the same place (shown once, as the finding)."""
    out: list[tuple[str, ErrorEntry]] = []
    for s in report.subjects:
        found = {f.path for f in s.findings}
        out += [(s.path, e) for e in s.errors if e.path not in found]
    return out + [("", e) for e in report.errors]


def _error_table(errors: Sequence[tuple[str, ErrorEntry]]) -> Table:
    et = _table(f"Could not fully examine ({len(errors)})", "where", "problem", "detail")
    for _, e in errors[:MAX_ERRORS]:
        et.add_row(cell(e.path), cell(_PROBLEM.get(e.code, e.code)), cell(e.message))
    if len(errors) > MAX_ERRORS:
        et.caption = cell(f"... and {len(errors) - MAX_ERRORS} more (see --format json)")
    return et


def summary_line(report: Report) -> Text:
    """The outcome in words, e.g. ``scan: 3 inputs examined; 2 carry known exploit
    structures; 1 could not be examined completely: FOUND``."""
    n = len(report.subjects)
    parts = [f"{n} input{'s' if n != 1 else ''} examined"]
    for kind, verb in ((FindingKind.INDICATOR, "match known spyware indicators"),
                       (FindingKind.EXPLOIT, "carry known exploit structures"),
                       (FindingKind.HEURISTIC, "look unusual")):
        k = sum(1 for s in report.subjects if any(f.kind == kind for f in s.findings))
        if k:
            parts.append(f"{k} {verb if k != 1 else _singular(verb)}")
    incomplete = {p for p, _ in _errors(report) if p} | ({"run"} if report.errors else set())
    if incomplete:
        k = len(incomplete)
        parts.append(f"{k} could not be examined completely")
    found = report.summary.findings
    line = cell(f"{report.command}: {'; '.join(parts)} ({found} finding(s)): ")
    line.append("FOUND" if found else "nothing found", style="bold")
    return line


def _singular(verb: str) -> str:
    first, _, rest = verb.partition(" ")
    return {"match": "matches", "carry": "carries", "look": "looks"}[first] + " " + rest


def _modules(report: Report) -> list[Table]:
    if not report.modules:
        return []
    mt = _table("Modules", "module", "status", "records", "note")
    for m in report.modules:
        mt.add_row(cell(m.name), cell(m.status), cell(m.records), cell(m.message))
    return [mt]


def _context(report: Report) -> list[Table]:
    """Device facts (or indicator statistics) and the indicator sources that were used."""
    out: list[Table] = []
    if report.device:
        dt = _table("Device" if report.command.startswith("check") else "Facts", "key",
                    "value", header=False)
        for key, value in report.device.items():
            dt.add_row(cell(key), cell(value))
        out.append(dt)
    entries = sum(s.indicators for s in report.ioc_sources)
    if report.ioc_sources and not report.command.startswith("iocs"):
        note = Table.grid()
        note.add_row(cell(f"Indicators: {entries} entries from {len(report.ioc_sources)} "
                          "file(s), the same value may be in several ('spywall iocs list' "
                          "counts distinct ones)"))
        out.append(note)
    elif report.ioc_sources:
        st = _table(f"Indicator sources ({len(report.ioc_sources)} files, {entries} entries)",
                    "file", "entries", "collections", "sha256")
        for src in report.ioc_sources:
            st.add_row(cell(PurePath(src.path).name), cell(src.indicators),
                       cell(", ".join(src.collections)), cell(src.sha256[:16]))
        out.append(st)
    return out


def _calls(report: Report) -> list[Table]:
    if not report.calls:
        return []
    t = _table(f"Calls ({len(report.calls)})", "Call-ID", "caller", "callee", "state",
               "frames", "media flows", "packets", "anomalies")
    for c in report.calls:
        t.add_row(cell(c.call_id), cell(c.caller), cell(c.callee), cell(c.state),
                  cell(f"{c.first_frame}-{c.last_frame}"), cell(len(c.media)),
                  cell(c.packets), cell(c.anomalies))
    return [t]
