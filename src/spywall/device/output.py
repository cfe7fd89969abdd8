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
from typing import NamedTuple

import msgspec

from spywall.device import folder
from spywall.device.base import Record
from spywall.report import Finding, Report, Scalar, Severity, as_dict, dump_json

_LEVELS: dict[Severity, str] = {
    Severity.CRITICAL: "CRITICAL", Severity.HIGH: "HIGH", Severity.MEDIUM: "MEDIUM",
    Severity.LOW: "LOW", Severity.INFO: "INFORMATIONAL",
}
_SLUG = re.compile(r"[^a-z0-9_]+")
# msgspec's C encoder (already loaded for the report; orjson, used before, cost another
# import): the result folder of a large backup holds tens of thousands of records, and
# the standard encoder was most of the time of writing it. What msgspec refuses (a key
# that is not a string, a lone surrogate) goes to ``json``.
_ENC = msgspec.json.Encoder(enc_hook=str)
_ENC_SORTED = msgspec.json.Encoder(enc_hook=str, order="sorted")
_REFUSED = (TypeError, ValueError, OverflowError, msgspec.EncodeError)


def _enc(obj: object) -> str:
    """One JSON value (UTF-8, not ASCII-escaped)."""
    try:
        return _ENC.encode(obj).decode()
    except _REFUSED:
        return _json(obj, False)


def _enc_sorted(obj: object) -> str:
    try:
        return _ENC_SORTED.encode(obj).decode()
    except _REFUSED:
        return _json(obj, True)


def _str_keys(obj: object, depth: int = 0) -> object:
    """Dict keys as JSON writes them (text), so that mixed keys can be sorted."""
    if depth > 100:  # (json itself stops at its recursion limit)
        return obj
    if isinstance(obj, dict):
        return {k if isinstance(k, str) else json.dumps(k) if k is None or isinstance(
            k, bool) else str(k): _str_keys(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_str_keys(v, depth + 1) for v in obj]
    return obj


def _json(obj: object, sort: bool) -> str:
    if sort:
        obj = _str_keys(obj)
    text = json.dumps(obj, ensure_ascii=False, default=str, sort_keys=sort)
    # a lone surrogate cannot be written as UTF-8: as its JSON escape instead
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def mvt_time(ts: str) -> str:
    """A record's time as MVT writes times: ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC, no zone
    letter; microseconds always). ``2023-06-01T06:13:20.5Z`` -> ``2023-06-01 06:13:20.500000``.
    A time in another form (local device time from a text dump) is kept as it is."""
    n = len(ts)
    if n == 27 and ts[26] == "Z" and ts[19] == "." and ts[10] == "T":  # (the device
        return ts[:10] + " " + ts[11:26]  # modules' own two forms first: a record each)
    if n == 20 and ts[19] == "Z" and ts[10] == "T":
        return ts[:10] + " " + ts[11:19] + ".000000"
    if n < 19 or ts[10] != "T":
        return ts
    rest = ts[19:].removesuffix("Z").removesuffix("+00:00")
    if rest[:1] == ".":
        frac = rest[1:7]
        if frac.isdigit():
            return f"{ts[:10]} {ts[11:19]}.{frac.ljust(6, '0')}"
    elif not rest:
        return f"{ts[:10]} {ts[11:19]}.000000"
    return ts


# MVT names its timeline rows by its module classes; the slug (file names, alerts) is
# the same name in snake case. Where a spywall module has an MVT twin, its class name.
PLUGINS: dict[str, str] = {
    "sms": "SMS", "sms_attachments": "SMSAttachments", "tcc": "TCC",
    "id_status_cache": "IDStatusCache", "os_analytics_ad_daily": "OSAnalyticsADDaily",
    "datausage": "Datausage", "netusage": "Netusage", "webkit_resource_load_statistics":
    "WebkitResourceLoadStatistics", "webkit_session_resource_log": "WebkitSessionResourceLog",
    "dumpsys_appops": "DumpsysAppops", "dumpsys_dbinfo": "DumpsysDBInfo",
    "dumpsys_adb": "DumpsysADBState", "getprop": "AQFGetProp", "settings": "AQFSettings",
    "packages": "AQFPackages", "processes": "AQFProcesses", "files": "AQFFiles",
    "bugreport_timestamps": "BugReportTimestamps", "log_timestamps": "AQFLogTimestamps",
    "dumpstate_getprop": "DumpsysGetProp", "dumpstate_packages": "DumpsysPackages",
    "bugreport_processes": "Processes", "dumpsys_settings": "Settings",
    "interactionc": "InteractionC", "webkit_indexeddb": "WebkitIndexedDB",
    "webkit_localstorage": "WebkitLocalStorage",
    "webkit_safariviewservice": "WebkitSafariViewService",
    "version_history": "IOSVersionHistory", "analytics_ios_versions": "AnalyticsIOSVersions",
    "whatsapp_contacts": "WhatsappContacts",
}


def plugin(module: str) -> str:
    """The timeline's Plugin column for a module: MVT's class name (``PLUGINS``), or the
    module name in CamelCase (``safari_history`` -> ``SafariHistory``)."""
    got = PLUGINS.get(module)
    if got is None:
        got = PLUGINS[module] = "".join(w[:1].upper() + w[1:] for w in module.split("_"))
    return got


# The file names (slugs) MVT's own modules write, where a spywall module's name differs
# (MVT names its androidqf modules aqf_*; the slug is its class name in snake case).
MVT_SLUGS: dict[str, str] = {
    "packages": "aqf_packages", "processes": "aqf_processes", "getprop": "aqf_get_prop",
    "settings": "aqf_settings", "files": "aqf_files", "dumpstate_packages": "dumpsys_packages",
    "dumpsys_adb": "dumpsys_adb_state", "dumpsys_dbinfo": "dumpsys_db_info",
    "log_timestamps": "aqf_log_timestamps", "dumpsys_settings": "settings",
    "dumpstate_getprop": "dumpsys_get_prop", "bugreport_processes": "processes",
    "interactionc": "interaction_c", "webkit_localstorage": "webkit_local_storage",
    "webkit_safariviewservice": "webkit_safari_view_service",
    "version_history": "ios_version_history",
}


def slug(name: str) -> str:
    """File-name-safe module name as MVT's results folder names it: MVT's slug where a
    module has an MVT twin of another name (``MVT_SLUGS``), else the module name made
    safe (``sms-links`` -> ``sms_links``)."""
    name = MVT_SLUGS.get(name, name)
    return _SLUG.sub("_", name.lower()).strip("_") or "module"


def _key(module: str | None, ts: str | None, event: str | None) -> tuple[str, str, str]:
    return (module or "", ts or "", event or "")


def _event_dict(rec: Record) -> dict[str, Scalar]:
    ts = mvt_time(rec.timestamp) if rec.timestamp else rec.timestamp
    return {"timestamp": ts, "module": rec.module, "event": rec.event, **rec.data}


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


def _dump(path: Path, obj: object) -> None:
    """JSON, one list item per line: readable, and written by the C encoder (an ``indent``
    would switch ``json`` to its pure-Python encoder, several times slower)."""
    if isinstance(obj, list):
        path.write_bytes(json_array(obj))
    else:
        text = json.dumps(obj, indent=4, ensure_ascii=False, default=str) + "\n"
        path.write_text(text, encoding="utf-8")


_EMPTY = b"[]\n"


def json_array(items: Sequence[object]) -> bytes:
    """``[``, one item per line, ``]``, encoded in one call (msgspec's ``encode_lines``:
    one item per line, no line break inside an item) and given its commas; an item the
    encoder refuses sends the whole array through ``_enc``."""
    if not items:
        return _EMPTY
    try:
        lines = _ENC.encode_lines(items)
    except _REFUSED:
        body = ",\n".join(map(_enc, items))
        return f"[\n{body}\n]\n".encode()
    return b"[\n" + lines[:-1].replace(b"\n", b",\n") + b"\n]\n"


def join_arrays(a: bytes, b: bytes) -> bytes:
    """Two ``json_array`` texts as one (the items of ``a``, then those of ``b``)."""
    if a == _EMPTY:
        return b
    if b == _EMPTY:
        return a
    return a[:-3] + b",\n" + b[2:]


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
    body = _csv_field(body)
    return '"' + body.replace(_SEP, '","').replace(_EOL, '"\r\n"') + '"\r\n'


def _csv_module(rows: Sequence[Sequence[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, escapechar="\\").writerows(rows)
    return buf.getvalue()


Line = tuple[str, str]  # (timestamp, the CSV line of a timeline row)
Key = tuple[str, str, str]
_HEADER_KEYS = frozenset({"timestamp", "module", "event"})


class ModulePart(NamedTuple):
    """One timeline module's share of the result folder, rendered where the module ran: a
    worker process of a parallel check sends this back, not its records.

    ``records`` / ``detected`` are the texts of ``<module>.json`` / ``_detected.json``
    (``json_array``); ``lines`` / ``detected_lines`` the timeline rows of its timed
    records, as (timestamp, CSV line); ``events`` the event of each detected record by
    (module, time, event), which an alert about it quotes."""

    module: str
    records: bytes
    detected: bytes
    lines: list[Line]
    detected_lines: list[Line]
    events: dict[Key, dict[str, Scalar]]


def _stamps(recs: Sequence[Record]) -> list[str | None]:
    """Each record's time as the result folder writes it (``mvt_time``), once."""
    return [mvt_time(r.timestamp) if r.timestamp else r.timestamp for r in recs]


def _encoded(recs: Sequence[Record],
             times: Sequence[str | None] | None = None) -> tuple[list[bytes], str]:
    """Each record's event (``_event_dict``) as JSON, and its timeline description (its
    fields as JSON, keys sorted; all of them as one text, each followed by a line break),
    from one encoding of its fields: the event is the record's time, module and event
    followed by the description's members.

    The fields and times of all records are encoded in two calls (``encode_lines``: one
    line each; JSON holds no raw line break) and spliced. A record whose fields use one
    of the three header names (an unescaped ``"event":`` can only be a member name), or
    a value the encoder refuses, sends the module through ``_encoded_each``."""
    if not recs:
        return [], ""
    try:
        blob = _ENC_SORTED.encode_lines([r.data for r in recs])
        stamps = _ENC.encode_lines(list(times) if times is not None
                                   else _stamps(recs)).split(b"\n")
    except _REFUSED:
        return _encoded_each(recs)
    if any(mark in blob for mark in _HEADER_MARKS):
        return _encoded_each(recs)
    heads = {pair: _head(*pair) for pair in {(r.module, r.event) for r in recs}}
    fields = blob.split(b"\n")
    items = [b'{"timestamp":' + t + heads[r.module, r.event]
             + (b"," + f[1:] if len(f) > 2 else b"}")  # (b"{}": no fields)
             for r, t, f in zip(recs, stamps, fields, strict=False)]
    return items, blob.decode()


_HEADER_MARKS = tuple(f'"{k}":'.encode() for k in sorted(_HEADER_KEYS))


def _head(module: str, event: str) -> bytes:
    return b',"module":' + _enc(module).encode() + b',"event":' + _enc(event).encode()


def _encoded_each(recs: Sequence[Record]) -> tuple[list[bytes], str]:
    """``_encoded`` one record at a time, for the records the batch cannot take."""
    items: list[bytes] = []
    descs: list[str] = []
    for r in recs:
        fields = _enc_sorted(r.data)
        descs.append(fields)
        if not _HEADER_KEYS.isdisjoint(r.data):
            items.append(_enc(_event_dict(r)).encode())
            continue
        tail = "," + fields[1:] if len(fields) > 2 else "}"
        ts = mvt_time(r.timestamp) if r.timestamp else r.timestamp
        items.append(f'{{"timestamp":{_enc(ts)}'.encode()
                     + _head(r.module, r.event) + tail.encode())
    return items, "".join(d + "\n" for d in descs)


def _array_of(items: Sequence[bytes]) -> bytes:
    return b"[\n" + b",\n".join(items) + b"\n]\n" if items else _EMPTY


def _csv_field(text: str) -> str:
    """A field's text inside its quotes, as ``csv_text`` escapes it."""
    return text.replace("\\", "\\\\").replace('"', '""')


def _lines(recs: Sequence[Record], descs: str,
           times: Sequence[str | None] | None = None) -> list[Line]:
    """The timeline rows of the timed records, sorted by time, each as its CSV line (what
    ``csv_text`` writes for the row). ``descs``: the records' descriptions, each followed
    by a line break (``_encoded``); they are escaped in one pass over that text."""
    esc = _csv_field(descs).split("\n")
    heads = {pair: f'","{_csv_field(plugin(pair[0]))}","{_csv_field(pair[1])}","'
             for pair in {(r.module, r.event) for r in recs}}
    stamps = times if times is not None else _stamps(recs)
    texts = [ts or "" for ts in stamps]
    joined = "\n".join(texts)  # the times too are escaped in one pass, when they can be
    esc_ts = (_csv_field(joined).split("\n") if joined.count("\n") == len(texts) - 1
              else [_csv_field(t) for t in texts])
    lines = [(ts, f'"{e}{heads[r.module, r.event]}{d}"\r\n')
             for r, d, ts, e in zip(recs, esc, stamps, esc_ts, strict=False) if ts]
    lines.sort(key=itemgetter(0))
    return lines


def module_part(module: str, recs: Sequence[Record],
                detected: Sequence[Record] = ()) -> ModulePart:
    """Render one timeline module (``detected``: its records that carry a finding)."""
    times = _stamps(recs)
    items, descs = _encoded(recs, times)
    unique = list({id(r): r for r in detected}.values())  # a record with two findings
    # is listed once; by identity: equal records of two rows are two records
    det_items, det_descs = _encoded(unique)
    events = {_key(r.module, r.timestamp, r.event): _event_dict(r) for r in unique}
    return ModulePart(module, _array_of(items), _array_of(det_items) if unique else b"",
                      _lines(recs, descs, times), _lines(unique, det_descs), events)


def merge_parts(a: ModulePart, b: ModulePart) -> ModulePart:
    """Two parts of one module name (made by different modules, perhaps elsewhere)."""
    det = (join_arrays(a.detected, b.detected) if a.detected and b.detected
           else a.detected or b.detected)
    return ModulePart(a.module, join_arrays(a.records, b.records), det,
                      a.lines + b.lines, a.detected_lines + b.detected_lines,
                      {**a.events, **b.events})


def parts_of(records: Mapping[str, Sequence[Record]],
             detected: Mapping[str, Sequence[Record]]) -> list[ModulePart]:
    """Render every module of a check, in the order the modules first recorded."""
    names = list(dict.fromkeys([*records, *detected]))
    return [module_part(m, records.get(m, ()), detected.get(m, ())) for m in names]


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
    events = {k: v for part in merged.values() for k, v in part.events.items()}
    written: list[Path] = []

    def emit(name: str, obj: object) -> None:
        _dump(out / name, obj)
        written.append(out / name)

    def emit_bytes(name: str, data: bytes) -> None:
        (out / name).write_bytes(data)
        written.append(out / name)

    alerts = [_alert(f, events.get(_key(f.location.module, f.location.timestamp,
                                        f.location.record)))
              for f in report.all_findings()]
    emit("alerts.json", alerts)
    _timeline(out / "alerts_timeline.csv", ["Event Time", "Module", "Message", "Event"],
              ([str(a["event_time"]), str(a["module"]), str(a["message"]),
                json.dumps(a["event"], default=str)] for a in alerts if a["event_time"]))
    written.append(out / "alerts_timeline.csv")

    header = csv_text([["UTC Timestamp", "Plugin", "Event", "Description"]])
    for name, picked in (("timeline.csv", [p.lines for p in merged.values()]),
                         ("timeline_detected.csv", [p.detected_lines for p in merged.values()])):
        lines = sorted([line for ls in picked for line in ls],
                       key=itemgetter(0))  # stable: equal times stay in module order
        with (out / name).open("w", encoding="utf-8", newline="") as fh:
            fh.write(header + "".join([text for _, text in lines]))
        written.append(out / name)

    for module, part in merged.items():
        emit_bytes(f"{slug(module)}.json", part.records)
    by_module: dict[str, list[dict[str, object]]] = {}
    for a in alerts:  # MVT's <module>_detected.json: that module's alerts
        by_module.setdefault(str(a["module"]), []).append(a)
    for name, found in by_module.items():  # (``name`` is a slug already: slugging it
        emit(f"{name}_detected.json", found)  # again would turn MVT's ``settings`` into
        # ``aqf_settings``, the androidqf twin's)
    names = [p.name for p in written] + ["info.json", "report.json", "command.log"]
    removed = folder.remove_stale(out, before, names)

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
        "files": sorted(names),
    })
    (out / "report.json").write_text(dump_json(report) + "\n", encoding="utf-8")
    written.append(out / "report.json")
    (out / "command.log").write_text(folder.command_log(report, alerts, removed),
                                     encoding="utf-8")
    written.append(out / "command.log")
    return written
