"""Readable output: what was found, how sure, what to do next."""

from __future__ import annotations

from pathlib import PurePath
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from spywall.render.escape import visible
from spywall.report import SEVERITY_ORDER, Finding, FindingKind, Report

_SECTIONS = (
    (FindingKind.INDICATOR, "Known spyware indicators matched",
     "These match published indicators of a spyware campaign. Treat the device or file as "
     "compromised: stop using it for sensitive work and contact a digital-security helpline "
     "(for example Access Now's) with this report."),
    (FindingKind.EXPLOIT, "Exploit structures found",
     "These files carry the trigger condition of a known zero-click exploit. Do not open "
     "them; keep them as evidence and update the device's software."),
    (FindingKind.HEURISTIC, "Unusual, worth a look (not proof)",
     "These look unusual but match no known indicator. Review them with an expert."),
)
_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan",
          "info": "dim"}


def cell(value: object, style: str = "") -> Text:
    """A table cell or line holding ``value`` as plain text: never markup, every control
    character escaped (``spywall.render.escape.visible``)."""
    return Text("" if value is None else visible(value), style=style)


def _where(f: Finding) -> str:
    loc = f.location
    parts = [f.path]
    if loc.module:
        parts.append(f"({loc.module})")
    if loc.frame is not None:
        parts.append(f"frame {loc.frame}")
    if loc.offset is not None:
        parts.append(f"@{loc.offset}")
    return " ".join(parts)


def _table(title: str, *columns: str, header: bool = True) -> Table:
    """A table whose cells wrap (never cut, never an ellipsis): paths and rule ids are what
    a person searches for."""
    t = Table(title=Text(title), title_justify="left", show_header=header,
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
    findings = sorted(report.all_findings(), key=lambda f: SEVERITY_ORDER[f.severity])
    for t in (*_context(report), *_calls(report)):
        console.print(t)
    if report.modules:
        mt = _table("Modules", "module", "status", "records", "note")
        for m in report.modules:
            mt.add_row(cell(m.name), cell(m.status), cell(m.records), cell(m.message))
        console.print(mt)
    for kind, title, advice in _SECTIONS:
        group = [f for f in findings if f.kind == kind]
        if not group:
            continue
        t = _table(f"{title} ({len(group)})", "severity", "rule", "where", "what")
        for f in group:
            what = f.message
            if f.indicator:
                what += f" [{f.indicator.collection}; {f.indicator.source}]"
            if f.cves:
                what += f" ({', '.join(f.cves)})"
            t.add_row(cell(f.severity.value, _STYLE[f.severity.value]), cell(f.rule),
                      cell(_where(f)), cell(what))
        console.print(t)
        console.print(cell(f"  {advice}", "italic"))
        console.print()
    errors = [e for s in report.subjects for e in s.errors] + report.errors
    if errors:
        et = _table(f"Could not fully examine ({len(errors)})", "path", "problem", "detail")
        for e in errors[:200]:
            et.add_row(cell(e.path), cell(e.code), cell(e.message))
        console.print(et)
        if len(errors) > 200:
            console.print(cell(f"  ... and {len(errors) - 200} more (see --format json)"))
    s = report.summary
    verdict = "FOUND" if s.findings else "nothing found"
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(s.by_kind.items())) or "none"
    line = cell(f"{report.command}: {s.subjects} input(s), {s.findings} finding(s) ({kinds}), "
                f"{s.errors} error(s): ")
    line.append(verdict, style="bold")
    console.print(line)


def _context(report: Report) -> list[Table]:
    """Device facts (or indicator statistics) and the indicator sources that were used."""
    out: list[Table] = []
    if report.device:
        dt = _table("Device" if report.command.startswith("check") else "Facts", "key",
                    "value", header=False)
        for key, value in report.device.items():
            dt.add_row(cell(key), cell(value))
        out.append(dt)
    if report.ioc_sources and not report.command.startswith("iocs"):
        total = sum(s.indicators for s in report.ioc_sources)
        note = Table.grid()
        note.add_row(cell(f"Indicators: {total} from {len(report.ioc_sources)} source "
                          "file(s) ('spywall iocs list' or --format json lists them)"))
        out.append(note)
    elif report.ioc_sources:
        total = sum(s.indicators for s in report.ioc_sources)
        st = _table(f"Indicator sources ({len(report.ioc_sources)}, {total} indicators)",
                    "file", "indicators", "collections", "sha256")
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
