"""MVT-compatible result files for a device check (``--output DIR``).

Layout (see ``docs/device-output.md``), so that workflows built on MVT's results folder
keep working:

- ``alerts.json``: list of detected items ``{level, module, message, event_time, event,
  matched_indicator}``; ``alerts_timeline.csv`` the timed ones;
- ``timeline.csv``: every record, ``"UTC Timestamp","Plugin","Event","Description"``,
  sorted by time; ``timeline_detected.csv`` only the records with a finding;
- ``<module>.json``: the module's records; ``<module>_detected.json``: those with a finding;
- ``info.json``: target, tool and version, date, indicator files (with sha256 and counts),
  input file hashes, module statuses;
- ``report.json``: the full spywall report (``spywall render`` re-renders it).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from pathlib import Path

import orjson

from spywall.device.base import Record
from spywall.report import Finding, Report, Scalar, Severity, as_dict, dump_json

_LEVELS: dict[Severity, str] = {
    Severity.CRITICAL: "CRITICAL", Severity.HIGH: "HIGH", Severity.MEDIUM: "MEDIUM",
    Severity.LOW: "LOW", Severity.INFO: "INFORMATIONAL",
}
_SLUG = re.compile(r"[^a-z0-9_]+")
_SORTED = orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS
# One encoder each: json.dumps with options builds a new encoder per call.
def _enc(obj: object) -> str:
    """One JSON value (UTF-8, not ASCII-escaped), encoded by orjson: the result folder of a
    large backup holds tens of thousands of records, and the standard encoder was most of
    the time of writing it."""
    return _orjson(obj, orjson.OPT_NON_STR_KEYS, False)


def _enc_sorted(obj: object) -> str:
    return _orjson(obj, orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS, True)


def _orjson(obj: object, option: int, sort: bool) -> str:
    try:
        return orjson.dumps(obj, default=str, option=option).decode()
    except orjson.JSONEncodeError:  # e.g. an integer past 64 bits from a hostile plist
        return json.dumps(obj, ensure_ascii=False, default=str, sort_keys=sort)


def slug(name: str) -> str:
    """File-name-safe module name: ``sms-links`` -> ``sms_links``."""
    return _SLUG.sub("_", name.lower()).strip("_") or "module"


def _key(module: str | None, ts: str | None, event: str | None) -> tuple[str, str, str]:
    return (module or "", ts or "", event or "")


def _event_dict(rec: Record) -> dict[str, Scalar]:
    return {"timestamp": rec.timestamp, "module": rec.module, "event": rec.event, **rec.data}


def _alert(f: Finding, rec: Record | None) -> dict[str, object]:
    matched: dict[str, str] | None = None
    if f.indicator is not None:
        matched = {"value": f.indicator.value, "type": f.indicator.ioc_type,
                   "name": f.indicator.collection, "stix2_file_name": f.indicator.source,
                   "matched": f.indicator.matched}
    event: dict[str, object] = dict(_event_dict(rec)) if rec else {}
    event.update(f.detail)
    return {
        "level": _LEVELS[f.severity], "module": f.location.module or f.rule,
        "message": f.message, "event_time": f.location.timestamp, "event": event,
        "matched_indicator": matched, "rule": f.rule, "kind": f.kind.value, "path": f.path,
    }


def _dump(path: Path, obj: object) -> None:
    """JSON, one list item per line: readable, and written by the C encoder (an ``indent``
    would switch ``json`` to its pure-Python encoder, several times slower)."""
    if isinstance(obj, list):
        _write_lines(path, obj)
    else:
        text = json.dumps(obj, indent=4, ensure_ascii=False, default=str) + "\n"
        path.write_text(text, encoding="utf-8")


_CHUNK = 256


def _write_lines(path: Path, items: list[object]) -> None:
    """``[``, one item per line, ``]``. Items are encoded by orjson straight to bytes, a
    chunk at a time: holding every encoded item of a 20,000-record module at once made
    the allocator four times slower than encoding them (measured), and a chunk keeps the
    join in C. Only when orjson refuses an item is the file rewritten through ``_enc``."""
    if not items:
        path.write_bytes(b"[]\n")
        return
    dumps, opt = orjson.dumps, orjson.OPT_NON_STR_KEYS
    try:
        with path.open("wb") as fh:
            fh.write(b"[\n")
            for i in range(0, len(items), _CHUNK):
                part = b",\n".join([dumps(item, default=str, option=opt)
                                    for item in items[i:i + _CHUNK]])
                fh.write(b",\n" + part if i else part)
            fh.write(b"\n]\n")
    except orjson.JSONEncodeError:
        body = ",\n".join(map(_enc, items))
        path.write_text(f"[\n{body}\n]\n", encoding="utf-8")


def _timeline(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A CSV file of ``rows`` (strings) sorted by their first field, in MVT's dialect."""
    ordered = sorted(rows, key=itemgetter(0))
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(csv_text([header, *ordered]))


_SEP, _EOL = "\x01", "\x00"


def csv_text(rows: Sequence[Sequence[str]]) -> str:
    """``rows`` as CSV exactly as ``csv.writer(quoting=QUOTE_ALL, escapechar="\\")`` (MVT's
    timeline dialect) writes them: every field quoted, quotes doubled, backslashes
    escaped, CRLF line ends.

    The csv module spends about 3 us a row on a timeline row (90 ms on a 27,000-record
    backup, measured); this joins every field with two sentinel characters and escapes
    the whole text in three C passes. Should a field itself hold a sentinel (counted, not
    assumed), the csv module writes the rows instead.
    """
    if not rows:
        return ""
    width = len(rows[0])
    body = _EOL.join([_SEP.join(r) for r in rows])
    if (any(len(r) != width for r in rows)
            or body.count(_SEP) != (width - 1) * len(rows)
            or body.count(_EOL) != len(rows) - 1):
        return _csv_module(rows)
    body = body.replace("\\", "\\\\").replace('"', '""')
    return '"' + body.replace(_SEP, '","').replace(_EOL, '"\r\n"') + '"\r\n'


def _csv_module(rows: Sequence[Sequence[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, escapechar="\\").writerows(rows)
    return buf.getvalue()


def _description(rec: Record) -> str:
    try:
        return orjson.dumps(rec.data, default=str, option=_SORTED).decode()
    except orjson.JSONEncodeError:
        return _enc_sorted(rec.data)


def write_mvt_outputs(report: Report, records: Mapping[str, Sequence[Record]],
                      out_dir: str | Path,
                      inputs: Mapping[str, str] | None = None) -> list[Path]:
    """Write the results folder; return the files written. ``inputs``: path -> sha256."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_key = {_key(r.module, r.timestamp, r.event): r for recs in records.values() for r in recs}
    findings = report.all_findings()
    pairs = [(f, by_key.get(_key(f.location.module, f.location.timestamp, f.location.record)))
             for f in findings]
    written: list[Path] = []

    def emit(name: str, obj: object) -> None:
        _dump(out / name, obj)
        written.append(out / name)

    alerts = [_alert(f, rec) for f, rec in pairs]
    emit("alerts.json", alerts)
    _timeline(out / "alerts_timeline.csv", ["Event Time", "Module", "Message", "Event"],
              ([str(a["event_time"]), str(a["module"]), str(a["message"]),
                json.dumps(a["event"], default=str)] for a in alerts if a["event_time"]))
    written.append(out / "alerts_timeline.csv")

    detected: dict[str, list[Record]] = {}
    for _, rec in pairs:
        if rec is not None and rec not in detected.setdefault(rec.module, []):
            detected[rec.module].append(rec)
    header = ["UTC Timestamp", "Plugin", "Event", "Description"]
    every = [r for recs in records.values() for r in recs]
    _timeline(out / "timeline.csv", header,
              ([r.timestamp, r.module, r.event, _description(r)] for r in every if r.timestamp))
    _timeline(out / "timeline_detected.csv", header,
              ([r.timestamp, r.module, r.event, _description(r)]
               for recs in detected.values() for r in recs if r.timestamp))
    written += [out / "timeline.csv", out / "timeline_detected.csv"]

    for module, recs in records.items():
        emit(f"{slug(module)}.json", [_event_dict(r) for r in recs])
        if detected.get(module):
            emit(f"{slug(module)}_detected.json", [_event_dict(r) for r in detected[module]])

    target = report.subjects[0].path if report.subjects else None
    emit("info.json", {
        "target_path": target,
        "tool": report.tool,
        "tool_version": report.tool_version,
        "command": report.command,
        "date": report.started.isoformat(),
        "ioc_files": [s.path for s in report.ioc_sources],
        "ioc_sources": [as_dict(s) for s in report.ioc_sources],
        "hashes": [{"file_path": p, "sha256": h} for p, h in sorted((inputs or {}).items())],
        "device": report.device,
        "modules": [as_dict(m) for m in report.modules],
    })
    (out / "report.json").write_text(dump_json(report) + "\n", encoding="utf-8")
    written.append(out / "report.json")
    return written
