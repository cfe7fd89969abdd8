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

Each module's JSON text and timeline rows are rendered where the module ran
(``device.timeline``); this writes the folder from them: the alerts, the timeline merged
and sorted by time, and the files about the run.
"""

from __future__ import annotations

import io
import json
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from pathlib import Path

from spywall.device import folder
from spywall.device.timeline import (
    Lines,
    ModulePart,
    csv_text,
    json_array,
    key,
    merge_parts,
    mvt_time,
    parts_of,
    plugin,
    slug,
    writable,
)
from spywall.render import jsonout
from spywall.report import Finding, Report, Scalar, Severity, as_dict

__all__ = ["ModulePart", "mvt_time", "parts_of", "plugin", "slug", "write_mvt_outputs"]

_LEVELS: dict[Severity, str] = {
    Severity.CRITICAL: "CRITICAL", Severity.HIGH: "HIGH", Severity.MEDIUM: "MEDIUM",
    Severity.LOW: "LOW", Severity.INFO: "INFORMATIONAL",
}
def _alert(f: Finding, event_of_record: dict[str, Scalar] | None) -> dict[str, object]:
    matched: dict[str, str] | None = None
    if f.indicator is not None:
        matched = {"value": f.indicator.value, "type": f.indicator.ioc_type,
                   "name": f.indicator.collection, "stix2_file_name": f.indicator.source,
                   "matched": f.indicator.matched}
    event: dict[str, object] = dict(event_of_record) if event_of_record else {}
    event.update(f.detail)
    ts = f.location.timestamp
    return {
        "level": _LEVELS[f.severity], "module": slug(f.location.module or f.rule),
        "message": f.message, "event_time": mvt_time(ts) if ts else "", "event": event,
        "matched_indicator": matched, "rule": f.rule, "kind": f.kind.value, "path": f.path,
    }


def _dumped(obj: object) -> bytes:
    """JSON, one list item per line: readable, and written by the C encoder (an ``indent``
    would switch ``json`` to its pure-Python encoder, several times slower)."""
    if isinstance(obj, list):
        return json_array(obj)
    return writable(json.dumps(obj, indent=4, ensure_ascii=False, default=str) + "\n").encode()


def _timeline(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """A CSV file of ``rows`` (strings) sorted by their first field, in MVT's dialect."""
    ordered = sorted(([writable(f) for f in r] for r in rows), key=itemgetter(0))
    return csv_text([header, *ordered]).encode()


# Written last, in this order, once the other files are: ``info.json`` lists the files of
# the run (by which the next run removes the stale ones).
_ABOUT = ("info.json", "report.json", "command.log")


def _write_files(files: Sequence[tuple[Path, bytes]]) -> None:
    """Write ``files`` with this thread and a second one, each taking the largest file
    left (about 14 MB in 60 files for a large backup; the kernel's copy is most of the
    time, and a write releases the interpreter). The folder is rendered first: a thread
    writing while the other rendered got the interpreter back only at the switch
    interval (5 ms) after each of the six system calls of a file's write, so it wrote
    little before the rendering ended. The first error is raised; the files not taken
    by then are not written."""
    latest = dict(files)  # (a name given twice: its last text, as written in turn)
    left = deque(sorted(latest.items(), key=lambda f: -len(f[1])))
    errors: list[BaseException] = []

    def write() -> None:
        while left and not errors:
            try:
                path, data = left.popleft()
            except IndexError:  # (the other thread took the last one)
                return
            try:
                path.write_bytes(data)
            except BaseException as exc:  # (raised in the caller's thread)
                errors.append(exc)

    helper = threading.Thread(target=write, name="spywall-output", daemon=True)
    helper.start()
    try:
        write()
    finally:
        helper.join()
    if errors:
        raise errors[0]


def write_mvt_outputs(report: Report, parts: Sequence[ModulePart], out_dir: str | Path,
                      inputs: Mapping[str, str] | None = None) -> list[Path]:
    """Write the results folder from the modules' ``parts`` (in module order); return the
    files written. ``inputs``: path -> sha256."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    before = folder.previous_files(out)
    merged: dict[str, ModulePart] = {}
    for part in parts:
        prev = merged.get(part.module)
        merged[part.module] = part if prev is None else merge_parts(prev, part)
    files: list[tuple[Path, bytes]] = []
    written = _render(report, merged, out, before, inputs, files)
    _write_files([f for f in files if f[0].name not in _ABOUT])
    for path, data in files:  # the files about the run, once the others are written
        if path.name in _ABOUT:
            path.write_bytes(data)
    return written


def _render(report: Report, merged: Mapping[str, ModulePart], out: Path,
            before: Sequence[str], inputs: Mapping[str, str] | None,
            files: list[tuple[Path, bytes]]) -> list[Path]:
    """The folder's files (added to ``files``, written by the caller); the stale files
    of a previous run are removed."""
    events = {k: v for part in merged.values() for k, v in part.events.items()}
    written: list[Path] = []

    def emit_bytes(name: str, data: bytes) -> None:
        files.append((out / name, data))
        written.append(out / name)

    for module, part in merged.items():
        emit_bytes(f"{slug(module)}.json", part.records)
    alerts = [_alert(f, events.get(key(f.location.module, f.location.timestamp,
                                        f.location.record)))
              for f in report.all_findings()]
    emit_bytes("alerts.json", _dumped(alerts))
    emit_bytes("alerts_timeline.csv", _timeline(
        ["Event Time", "Module", "Message", "Event"],
        ([str(a["event_time"]), str(a["module"]), str(a["message"]),
          json.dumps(a["event"], default=str)] for a in alerts if a["event_time"])))

    header = csv_text([["UTC Timestamp", "Plugin", "Event", "Description"]]).encode()
    for name, picked in (("timeline.csv", [p.lines for p in merged.values()]),
                         ("timeline_detected.csv", [p.detected_lines for p in merged.values()])):
        rows = Lines.merged(picked)  # equal times: in module order
        emit_bytes(name, b"".join(chain((header,), rows)))  # (one copy of the text)

    by_module: dict[str, list[dict[str, object]]] = {}
    for a in alerts:  # MVT's <module>_detected.json: that module's alerts
        by_module.setdefault(str(a["module"]), []).append(a)
    for name, found in by_module.items():  # (``name`` is a slug already: slugging it
        emit_bytes(f"{name}_detected.json", _dumped(found))  # again would turn MVT's
        # ``settings`` into ``aqf_settings``, the androidqf twin's)
    names = [p.name for p in written] + list(_ABOUT)
    removed = folder.remove_stale(out, before, names)

    target = report.subjects[0].path if report.subjects else None
    emit_bytes("info.json", _dumped({
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
        "files": sorted(names),
    }))
    text = io.StringIO()
    jsonout.render(report, text)  # (a lone surrogate: ASCII, \\u escapes)
    emit_bytes("report.json", text.getvalue().encode())
    emit_bytes("command.log", writable(folder.command_log(report, alerts, removed)).encode())
    return written
