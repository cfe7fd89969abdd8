"""Append a scan / pcap / check-ios / check-android report to an evidence log.

``append_report(target, report_json)``: ``target`` is a database URL (the platform's,
whose schema ``spywall platform init`` made) or the path of a standalone SQLite log file
(created on first use). The entry (kind ``report``) keeps what a court needs to tie the
report to its inputs: the command, the tool version, every input's path, SHA-256 and
size, the findings (rule, kind, severity, path, object hash, CVEs) and the SHA-256 of the
report's JSON, so that the saved report itself can be shown to be the one logged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from spywall.evidence import log, store

MAX_FINDINGS = 2000
MAX_INPUTS = 10000
_FINDING_FIELDS = ("rule", "kind", "severity", "path", "object_sha256", "cves", "title")


class ReportError(ValueError):
    """Not a spywall JSON report, or no log at the target."""


def report_entry(report_json: bytes) -> dict[str, Any]:
    """The ``report`` entry for a report's JSON text."""
    try:
        doc = json.loads(report_json)
    except ValueError as exc:
        raise ReportError(f"not a JSON report: {exc}") from exc
    if not isinstance(doc, dict) or "command" not in doc or "subjects" not in doc:
        raise ReportError("not a spywall JSON report (no command or subjects)")
    subjects = doc.get("subjects") or []
    findings = [f for s in subjects for f in (s.get("findings") or [])]
    ts = doc.get("finished") or doc.get("started") or datetime.now(UTC).isoformat()
    entry: dict[str, Any] = {
        "kind": "report", "ts": ts, "command": doc["command"],
        "tool_version": doc.get("tool_version"),
        "inputs": [{"path": s.get("path"), "sha256": s.get("sha256"), "size": s.get("size")}
                   for s in subjects[:MAX_INPUTS]],
        "findings": [{k: f.get(k) for k in _FINDING_FIELDS} for f in findings[:MAX_FINDINGS]],
        "summary": doc.get("summary"),
        "report_sha256": hashlib.sha256(report_json).hexdigest(),
    }
    if len(findings) > MAX_FINDINGS or len(subjects) > MAX_INPUTS:
        entry["truncated"] = {"inputs": len(subjects), "findings": len(findings)}
    return entry


def append_report(target: str, report_json: bytes) -> int:
    """Append the report to the log at ``target``; the entry's index."""
    entry = report_entry(report_json)
    url = store.target_url(target)
    engine = store.open_engine(url)
    try:
        if not store.ready(engine):
            if "://" in target:
                raise ReportError(f"{target}: no evidence log there (spywall platform init)")
            store.create(engine)
        with engine.begin() as conn:
            [index] = log.append(conn, [entry])
        return index
    finally:
        engine.dispose()


EVIDENCE_LOG_COMMANDS = frozenset({"scan", "pcap", "check-ios", "check-android",
                                   "check-sysdiagnose"})


def add_argument(p: argparse.ArgumentParser) -> None:
    """``--evidence-log URL|FILE`` (for scan, pcap and the device checks)."""
    p.add_argument("--evidence-log", default=None, metavar="URL|FILE",
                   help="append the report (input hashes, findings, tool version) to an "
                        "evidence log: a database URL or a SQLite log file")
