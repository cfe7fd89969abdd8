"""Readable output: what was found, how sure, what to do next.

Laid out for a person at any terminal width: cells wrap and never cut (a path or a rule
id is what a person searches for), findings are grouped by input with the most severe
input first, each place is shown relative to the input it is in, problems that stopped an
examination are apart from the findings (and an input that carries a finding is shown
once, as the finding), and the last line says the outcome in words. Every string from the
evidence is shown through ``spywall.render.escape.visible``, never as markup.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import PurePath
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from spywall.incomplete import INCOMPLETE_RULE
from spywall.registry import FORMATS
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
QPDF = "qpdf:"
# The first words of an engine error entry: what the object is ("WebP image: ...").
_LABELS = frozenset(f"{f.plain}: " for f in FORMATS if f.plain)
WIDE = 100  # narrower terminals get the findings in two columns


def cell(value: object, style: str = "") -> Text:
    """A table cell or line holding ``value`` as plain text: never markup, every control
    character escaped (``spywall.render.escape.visible``)."""
    return Text("" if value is None else visible(value), style=style)


def _table(title: str, *columns: str, header: bool = True,
           whole: dict[str, int] | None = None, ratios: dict[str, int] | None = None,
           flex: bool = True) -> Table:
    """A table as wide as the terminal whose cells wrap (never cut, never an ellipsis,
    never cropped): the columns named in ``whole`` get exactly that width (what a person
    searches for, a rule id, is never split over lines); the others share the rest in
    ``ratios`` (1 each by default), however long a word in them is. ``flex=False``: sized
    by their content (for tables of short words only)."""
    t = Table(title=cell(title), title_justify="left", show_header=header,
              title_style="bold", caption_justify="left", expand=flex)
    for col in columns:
        if not flex:
            t.add_column(col, overflow="fold", no_wrap=False)
            continue
        fixed = (whole or {}).get(col)
        t.add_column(col, overflow="fold", no_wrap=False, width=fixed,
                     ratio=None if fixed else (ratios or {}).get(col, 1))
    return t


def render(report: Report, out: TextIO) -> None:
    console = Console(file=out, soft_wrap=False, highlight=False)
    with console.capture() as captured:  # nothing is written unless all of it renders
        _render(console, report)
    out.write(captured.get())


def _render(console: Console, report: Report) -> None:
    root = inputs_root(report)
    if root:
        console.print(cell(f"Inputs under {root} (paths below are relative to it)"))
    for t in (*_context(report), *_calls(report, console.width, root), *_modules(report)):
        console.print(t)
    ranked = sorted((s for s in report.subjects if s.findings), key=_worst)
    narrow = console.width < WIDE
    for subject in ranked:
        console.print(_findings(subject, root, narrow))
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
        console.print(_error_table(errors, root, _hidden(report)))
    if not report.command.startswith("iocs"):
        console.print(summary_line(report))


def inputs_root(report: Report) -> str:
    """The folder the inputs share (the one the user named, for a folder), shown once;
    the paths in the tables are relative to it. "" when they share none."""
    paths = [s.path for s in report.subjects if s.path != "-"]
    if not paths:
        return ""
    try:
        root = (str(PurePath(paths[0]).parent) if len(paths) == 1
                else os.path.commonpath(paths))
    except ValueError:  # absolute and relative paths mixed
        return ""
    return "" if root in ("", ".", "/") else root


def shown(path: str, root: str) -> str:
    """``path`` relative to ``root`` (the inputs' folder), when it is under it."""
    return path[len(root) + 1:] if root and path.startswith(root + "/") else path


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


def _findings(subject: Subject, root: str, narrow: bool) -> Table:
    """The findings of one input, most severe first. Narrow terminals get two columns
    (severity and rule over where and what) so that nothing is cropped."""
    found = sorted(subject.findings, key=lambda f: SEVERITY_ORDER[f.severity])
    rule_width = max(8, *(len(visible(f.rule)) for f in found))
    title = f"{shown(subject.path, root)}: {len(found)} finding(s)"
    if narrow:
        t = _table(title, "finding", "where and what", whole={"finding": rule_width})
    else:
        t = _table(title, "severity", "rule", "where", "what",
                   whole={"severity": 8, "rule": rule_width}, ratios={"what": 2})
    for f in found:
        what = Text(visible(f.message))
        what.append(f" [{_SURE[f.kind]}]", style="italic")
        if f.indicator:
            what.append(visible(f" {f.indicator.collection} ({f.indicator.source})"))
        if f.cves:
            what.append(visible(f" {', '.join(f.cves)}"))
        sev = cell(f.severity.value, _STYLE[f.severity.value])
        where = cell(_where(f, subject.path))
        if narrow:
            t.add_row(Text("\n").join([sev, cell(f.rule)]),
                      Text("\n").join([where, what]) if where.plain else what)
        else:
            t.add_row(sev, cell(f.rule), where, what)
    return t


def _shown_as_finding(s: Subject) -> Callable[[ErrorEntry], bool]:
    """Whether a problem of ``s`` is told by a finding: one at the same place, or inside
    it (a damaged PDF whose JBIG2 stream is the exploit, a zip whose member is). A cap
    (``incomplete-examination``) covers only its own place: a damaged container whose
    member merely hit a limit is still shown as damaged."""
    places = {f.path for f in s.findings}
    holders = {p for f in s.findings if f.rule != INCOMPLETE_RULE
               for p in _containers(f.path)}
    return lambda e: e.path in places or e.path in holders


def _containers(path: str) -> Iterator[str]:
    """The places that hold ``path``: ``a.zip!/b.pdf!/obj`` -> ``a.zip``, ``a.zip!/b.pdf``."""
    at = path.find(MEMBER_SEP)
    while at >= 0:
        yield path[:at]
        at = path.find(MEMBER_SEP, at + len(MEMBER_SEP))


def _errors(report: Report) -> list[tuple[str, ErrorEntry]]:
    """(input, error) of every problem, but those an input's finding already tells
    (shown once, as the finding)."""
    out: list[tuple[str, ErrorEntry]] = []
    for s in report.subjects:
        told = _shown_as_finding(s)
        out += [(s.path, e) for e in s.errors if not told(e)]
    return out + [("", e) for e in report.errors]


def _hidden(report: Report) -> int:
    """Problems not listed: told by a finding."""
    return sum(sum(map(_shown_as_finding(s), s.errors)) for s in report.subjects)


def _label(message: str) -> tuple[str, str]:
    """("WebP image: ", the rest) for an engine error entry; ("", message) otherwise."""
    head = message[: message.find(": ") + 2]
    return (head, message[len(head):]) if head in _LABELS else ("", message)


def _merged(errors: Sequence[tuple[str, ErrorEntry]]) -> list[tuple[str, str, str]]:
    """(path, code, detail): the problems of one place and kind in one row (a PDF library
    says several things about one damaged file), in the order first met."""
    rows: dict[tuple[str, str], list[str]] = {}
    for _, e in errors:
        messages = rows.setdefault((e.path, e.code), [])
        if e.message not in messages:
            messages.append(e.message)
    out = []
    for (path, code), messages in rows.items():
        labels, texts = zip(*map(_label, messages), strict=True)
        label = labels[0] if len(set(labels)) == 1 else ""  # said once for the row
        texts = texts if label else tuple(messages)
        if all(m.startswith(QPDF) for m in texts):
            detail = ("the PDF library (qpdf) reported: "
                      + "; ".join(m[len(QPDF):].strip() for m in texts))
        else:
            detail = "; ".join(texts)
        out.append((path, code, label + detail))
    return out


def _error_table(errors: Sequence[tuple[str, ErrorEntry]], root: str, hidden: int) -> Table:
    rows = _merged(errors)
    et = _table(f"Could not fully examine ({len(rows)})", "where", "problem", "detail",
                ratios={"where": 2, "detail": 2})
    for path, code, detail in rows[:MAX_ERRORS]:
        et.add_row(cell(shown(path, root)), cell(_PROBLEM.get(code, code)), cell(detail))
    notes = []
    if len(rows) > MAX_ERRORS:
        notes.append(f"... and {len(rows) - MAX_ERRORS} more")
    if hidden:
        notes.append(f"{hidden} more at places reported above as findings")
    if notes:
        et.caption = cell("; ".join(notes) + " (--format json lists them all)")
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
    # information findings (an app from a third-party store) are listed, not a verdict
    serious = found - report.summary.by_severity.get("info", 0)
    verdict = ("FOUND" if serious else "nothing found in what could be examined"
               if incomplete else "nothing found")
    line.append(verdict, style="bold")
    return line


def _singular(verb: str) -> str:
    first, _, rest = verb.partition(" ")
    return {"match": "matches", "carry": "carries", "look": "looks"}[first] + " " + rest


def _modules(report: Report) -> list[Table]:
    if not report.modules:
        return []
    mt = _table("Modules", "module", "status", "records", "note", flex=False)
    for m in report.modules:
        mt.add_row(cell(m.name), cell(m.status), cell(m.records), cell(m.message))
    return [mt]


def _context(report: Report) -> list[Table]:
    """Device facts (or indicator statistics) and the indicator sources that were used."""
    out: list[Table] = []
    if report.device:
        key_width = min(32, max(len(visible(k)) for k in report.device))
        title = ("Device" if report.command.startswith("check") else
                 "Indicators" if report.command.startswith("iocs") else "Facts")
        dt = _table(title, "key",
                    "value", header=False, whole={"key": key_width})
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
                    "file", "entries", "collections", "sha256", flex=False)
        for src in report.ioc_sources:
            st.add_row(cell(PurePath(src.path).name), cell(src.indicators),
                       cell(", ".join(src.collections)), cell(src.sha256[:16]))
        out.append(st)
    return out


def _calls(report: Report, width: int, root: str) -> list[Table]:
    """The calls, by capture (the same Call-ID may be in several)."""
    if not report.calls:
        return []
    calls = sorted(report.calls, key=lambda c: (c.path or "", c.first_frame))
    if width < WIDE:
        t = _table(f"Calls ({len(calls)})", "capture and Call-ID", "from / to", "state")
        for c in calls:
            t.add_row(Text("\n").join([cell(shown(c.path or "", root)), cell(c.call_id)]),
                      Text("\n").join([cell(c.caller), cell(c.callee)]),
                      cell(f"{c.state}, {len(c.legs)} leg(s), frames "
                           f"{c.first_frame}-{c.last_frame}, "
                           f"{len(c.media)} media flow(s), {c.packets} packet(s), "
                           f"{c.anomalies} anomal{'y' if c.anomalies == 1 else 'ies'}"))
        return [t]
    small = {"state": max(len(visible(c.state)) for c in calls),
             "frames": max(len(f"{c.first_frame}-{c.last_frame}") for c in calls),
             "legs": 4, "media": 5, "packets": max(7, *(len(str(c.packets)) for c in calls)),
             "anomalies": 9}
    small["state"] = max(5, small["state"])
    small["frames"] = max(6, small["frames"])
    t = _table(f"Calls ({len(calls)})", "capture", "Call-ID", "caller", "callee", "state",
               "legs", "frames", "media", "packets", "anomalies", whole=small)
    for c in calls:
        t.add_row(cell(shown(c.path or "", root)), cell(c.call_id), cell(c.caller),
                  cell(c.callee), cell(c.state), cell(len(c.legs)),
                  cell(f"{c.first_frame}-{c.last_frame}"),
                  cell(len(c.media)), cell(c.packets), cell(c.anomalies))
    return [t]
