"""Readable output: what was found, how sure, what to do next."""

from __future__ import annotations

from pathlib import PurePath
from typing import TextIO

from rich.console import Console
from rich.table import Table

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


def _where(f: Finding) -> str:
    loc = f.location
    parts = [f.path]
    if loc.module:
        parts.append(f"[{loc.module}]")
    if loc.frame is not None:
        parts.append(f"frame {loc.frame}")
    if loc.offset is not None:
        parts.append(f"@{loc.offset}")
    return " ".join(parts)


def render(report: Report, out: TextIO) -> None:
    console = Console(file=out, width=max(100, Console(file=out).width), soft_wrap=False)
    findings = sorted(report.all_findings(), key=lambda f: SEVERITY_ORDER[f.severity])
    for t in (*_context(report), *_calls(report)):
        console.print(t)
    if report.modules:
        mt = Table(title="Modules", show_lines=False)
        for col in ("module", "status", "records", "note"):
            mt.add_column(col)
        for m in report.modules:
            mt.add_row(m.name, m.status, str(m.records), m.message)
        console.print(mt)
    for kind, title, advice in _SECTIONS:
        group = [f for f in findings if f.kind == kind]
        if not group:
            continue
        t = Table(title=f"{title} ({len(group)})", title_justify="left", expand=False)
        t.add_column("severity")
        t.add_column("rule")
        t.add_column("where", overflow="fold")
        t.add_column("what", overflow="fold")
        for f in group:
            what = f.message
            if f.indicator:
                what += f" [{f.indicator.collection}; {f.indicator.source}]"
            if f.cves:
                what += f" ({', '.join(f.cves)})"
            t.add_row(f"[{_STYLE[f.severity.value]}]{f.severity.value}[/]", f.rule, _where(f),
                      what)
        console.print(t)
        console.print(f"  {advice}\n", style="italic")
    errors = [e for s in report.subjects for e in s.errors] + report.errors
    if errors:
        et = Table(title=f"Could not fully examine ({len(errors)})", title_justify="left")
        for col in ("path", "problem", "detail"):
            et.add_column(col, overflow="fold")
        for e in errors[:200]:
            et.add_row(e.path, e.code, e.message)
        console.print(et)
        if len(errors) > 200:
            console.print(f"  ... and {len(errors) - 200} more (see --format json)")
    s = report.summary
    verdict = "FOUND" if s.findings else "nothing found"
    console.print(
        f"{report.command}: {s.subjects} input(s), {s.findings} finding(s) "
        f"({', '.join(f'{k} {v}' for k, v in sorted(s.by_kind.items())) or 'none'}), "
        f"{s.errors} error(s): [bold]{verdict}[/]"
    )


def _context(report: Report) -> list[Table]:
    """Device facts (or indicator statistics) and the indicator sources that were used."""
    out: list[Table] = []
    if report.device:
        dt = Table(title="Device" if report.command.startswith("check") else "Facts",
                   title_justify="left", show_header=False)
        dt.add_column("key")
        dt.add_column("value", overflow="fold")
        for key, value in report.device.items():
            dt.add_row(key, "" if value is None else str(value))
        out.append(dt)
    if report.ioc_sources and not report.command.startswith("iocs"):
        total = sum(s.indicators for s in report.ioc_sources)
        note = Table.grid()
        note.add_row(f"Indicators: {total} from {len(report.ioc_sources)} source file(s) "
                     "('spywall iocs list' or --format json lists them)")
        out.append(note)
    elif report.ioc_sources:
        total = sum(s.indicators for s in report.ioc_sources)
        st = Table(title=f"Indicator sources ({len(report.ioc_sources)}, {total} indicators)",
                   title_justify="left")
        for col in ("file", "indicators", "collections", "sha256"):
            st.add_column(col, overflow="fold")
        for src in report.ioc_sources:
            st.add_row(PurePath(src.path).name, str(src.indicators),
                       ", ".join(src.collections), src.sha256[:16])
        out.append(st)
    return out


def _calls(report: Report) -> list[Table]:
    if not report.calls:
        return []
    t = Table(title=f"Calls ({len(report.calls)})", title_justify="left")
    for col in ("Call-ID", "caller", "callee", "state", "legs", "frames", "media flows",
                "packets", "anomalies"):
        t.add_column(col, overflow="fold")
    for c in report.calls:   # legs: INVITE hops (2 or more: through proxies or an SBC)
        t.add_row(c.call_id, c.caller or "", c.callee or "", c.state, str(len(c.legs)),
                  f"{c.first_frame}-{c.last_frame}", str(len(c.media)), str(c.packets),
                  str(c.anomalies))
    return [t]
