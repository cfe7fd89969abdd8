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
import queue
import threading
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from pathlib import Path
from types import TracebackType

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


class _Writer:
    """Files written by a second thread, in the order given, while this one renders the
    rest of the folder: a write releases the interpreter, so the large module files and
    the timeline go to the disk while the alerts and the timeline's order are worked
    out (about 14 MB in 60 files for a large backup). The first error is raised by
    ``__exit__``; the files after it are not written."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Path, bytes] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="spywall-output", daemon=True)

    def __enter__(self) -> _Writer:
        self._thread.start()
        return self

    def put(self, path: Path, data: bytes) -> None:
        self._jobs.put((path, data))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is None:
                try:
                    job[0].write_bytes(job[1])
                except BaseException as exc:  # (raised in the caller's thread)
                    self._error = exc

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._jobs.put(None)
        self._thread.join()
        if self._error is not None and exc is None:
            raise self._error


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
    with _Writer() as writer:
        return _write(report, merged, out, before, inputs, writer)


def _write(report: Report, merged: Mapping[str, ModulePart], out: Path,
           before: Sequence[str], inputs: Mapping[str, str] | None,
           writer: _Writer) -> list[Path]:
    events = {k: v for part in merged.values() for k, v in part.events.items()}
    written: list[Path] = []

    def emit_bytes(name: str, data: bytes) -> None:
        writer.put(out / name, data)
        written.append(out / name)

    for module, part in merged.items():  # (the largest files: to the disk first)
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
    names = [p.name for p in written] + ["info.json", "report.json", "command.log"]
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
