"""Android Intrusion Logging (Advanced Protection, Android 16+), as androidqf collects it
(MVT's intrusion-log modules, run by ``check-androidqf`` when the capture has them), or a
folder or zip of the exports alone (MVT's ``check-intrusion-logs``; ``capture`` knows
one by its first text lines).

androidqf pulls the exports the phone writes to ``/sdcard/Download/Intrusion Logging/``
into the capture's ``intrusion_logs/`` folder: text files (``.txt``) of JSON lines, also
inside ``.zip`` files. Each line is one object whose keys are event types and whose
values are the events, the platform's SecurityLog and network-logging records:

- ``dns_event``: ``hostname``, ``ip_addresses`` (InetAddress text: ``/1.2.3.4`` or
  ``host/1.2.3.4``), ``package_name``, ``event_time`` (milliseconds);
- ``connect_event``: ``ip_address`` (the same text), ``port``, ``package_name``,
  ``event_time`` (milliseconds);
- ``security_event``: ``event_id``, ``event_time`` (nanoseconds) and one key naming the
  SecurityLog tag (``app_process_start``, ``package_installed``, ``adb_shell_cmd``,
  ``adb_sync_send_file``, ``cert_authority_installed``...) holding its payload.

An event that appears in several files (daily exports overlap) is kept once, as MVT keeps
it. What is matched, as MVT matches it: a DNS query's host name and answers, a
connection's address, and the package behind either; an app process started (the whole
name and each ``:`` part as an app id; spywall also matches the package as an app id
and the name as a process); packages installed, updated and removed; an adb shell
command (each word as an app id); files pulled or pushed over adb (as file paths). MVT's
heuristics (medium): a certificate validation failure, a key integrity violation, a
certificate authority installed, a failed wipe, a failed cryptographic self test.

A line that is not JSON is counted and said in the module's note (MVT logs it); a file
or archive over its cap, or more events than ``MAX_EVENTS``, is a limit (the check is
then incomplete).
"""

from __future__ import annotations

import json
import re
from typing import Any

from spywall.android.capture import Capture, ZipSource
from spywall.android.common import Ctx, Result, ok, skipped
from spywall.device.base import FnModule, Record, iso_unix
from spywall.errors import FormatError, LimitExceeded
from spywall.report import ErrorEntry, Scalar, Severity

FOLDERS = ("intrusion_logs/", "intrusion-logs/")
MAX_EVENTS = 2_000_000
MAX_FILE = 256 * 1024 * 1024
MAX_ARCHIVES = 1000
TYPES = ("dns_event", "connect_event", "security_event")
_META = frozenset({"event_id", "event_time", "event_type", "timestamp"})
_HASH = re.compile(r"[0-9a-fA-F]{64}")
# MVT's medium heuristics: tag -> title
_SUSPICIOUS = {
    "cert_validation_failure": "Certificate validation failure",
    "key_integrity_violation": "Key integrity violation",
    "cert_authority_installed": "Certificate authority installed",
    "wipe_failure": "Device wipe failure",
    "crypto_self_test_completed": "Cryptographic self test failed",
}


class Events:
    """Every event of the capture's intrusion logs, by type, read once."""

    def __init__(self) -> None:
        self.by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self.files = 0
        self.bad_lines = 0
        self.duplicates = 0
        self._seen: set[str] = set()
        self._count = 0

    def add_text(self, where: str, data: bytes) -> None:
        self.files += 1
        for line in data.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                self.bad_lines += 1
                continue
            if not isinstance(entry, dict):
                self.bad_lines += 1
                continue
            for kind, event in entry.items():
                if not isinstance(event, dict):
                    continue
                key = kind + json.dumps(event, sort_keys=True)
                if key in self._seen:
                    self.duplicates += 1
                    continue
                self._count += 1
                if self._count > MAX_EVENTS:
                    raise LimitExceeded(f"intrusion logs: more than {MAX_EVENTS} events")
                self._seen.add(key)
                self.by_type.setdefault(kind, []).append((where, event))


def _files(ctx: Ctx) -> list[str]:
    """The export files: under androidqf's ``intrusion_logs/``, or anywhere in a folder
    or zip of exports given alone (MVT's ``check-intrusion-logs``)."""
    alone = ctx.evidence.kind == "intrusion"
    return sorted(n for n in ctx.evidence.members()
                  if (alone or n.startswith(FOLDERS)) and n.lower().endswith((".txt", ".zip")))


def load(ctx: Ctx) -> Events | None:
    """The capture's events (read once for the three modules), None when it has no
    intrusion logs."""
    cap = ctx.evidence
    if cap.kind not in ("androidqf", "intrusion"):
        return None
    if "intrusion_logs" not in cap.cache:
        names = _files(ctx)
        events = Events() if names else None
        for name in names:
            if events is None:
                break
            try:
                data = cap.read(name, MAX_FILE) or b""
                if name.lower().endswith(".txt"):
                    events.add_text(cap.where(name), data)
                else:
                    _archive(ctx, events, cap.where(name), data)
            except (FormatError, LimitExceeded, OSError) as exc:
                ctx.subject.errors.append(ErrorEntry(
                    path=cap.where(name), code=getattr(exc, "code", "io"),
                    message=f"intrusion logs: {str(exc)[:500]}"))
        cap.cache["intrusion_logs"] = events
    got = cap.cache["intrusion_logs"]
    return got if isinstance(got, Events) else None


def _archive(ctx: Ctx, events: Events, where: str, data: bytes) -> None:
    """The text files of an export archive (one level: an archive inside is an error)."""
    src = ZipSource(data, where, ctx.evidence.limits)
    try:
        names = src.names()
        for member in names[:MAX_ARCHIVES]:
            if member.lower().endswith(".txt"):
                events.add_text(f"{where}!/{member}",
                                src.read(member, MAX_FILE, ctx.evidence.budget))
            elif member.lower().endswith(".zip"):
                raise FormatError(f"{member}: an archive inside an intrusion-log archive")
        if len(names) > MAX_ARCHIVES:   # (the events of those read are kept)
            raise LimitExceeded(f"{len(names) - MAX_ARCHIVES} member(s) past the first "
                                f"{MAX_ARCHIVES} not read")
    finally:
        src.close()


def _when(value: object, per_second: int) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return iso_unix(value / per_second)
    return None


def _scalars(event: dict[str, Any], out: dict[str, Scalar], prefix: str = "") -> None:
    for k, v in list(event.items())[:64]:
        name = f"{prefix}{k}" if f"{prefix}{k}" not in out else f"{prefix}{k}_"
        if isinstance(v, str):
            out[name] = v[:2048]
        elif v is None or isinstance(v, int | float | bool):
            out[name] = v
        elif isinstance(v, list):
            out[name] = ", ".join(str(x)[:256] for x in v[:64])


def address(text: str) -> str:
    """The address of an InetAddress text: ``/1.2.3.4`` and ``host/1.2.3.4`` ->
    ``1.2.3.4``."""
    return text.rpartition("/")[2].strip()


_LOCAL = frozenset({"", "0.0.0.0", "::", "::1", "127.0.0.1"})  # noqa: S104 (not a bind)


def _network(ctx: Ctx, kind: str) -> Result:
    events = load(ctx)
    if events is None:
        return skipped("no intrusion_logs/ folder in the capture")
    rows = events.by_type.get(kind, [])
    for where, ev in rows:
        ctx.evidence.budget.charge_elements()
        data: dict[str, Scalar] = {}
        _scalars(ev, data)
        host = ev.get("hostname") if isinstance(ev.get("hostname"), str) else None
        pkg = ev.get("package_name") if isinstance(ev.get("package_name"), str) else None
        raw = ev.get("ip_addresses") if kind == "dns_event" else [ev.get("ip_address")]
        ips = [address(a) for a in (raw if isinstance(raw, list) else [])[:64]
               if isinstance(a, str)]
        ips = [a for a in ips if a not in _LOCAL]
        what = (f"DNS query for {host} by {pkg}" if kind == "dns_event"
                else f"connection to {', '.join(ips) or '?'}:{ev.get('port', '?')} by {pkg}")
        rec = ctx.record(kind, _when(ev.get("event_time"), 1000), what, data)
        if host:
            ctx.check("host", host, rec=rec, path=where, what="host name looked up")
        for ip in ips:
            ctx.check("host", ip, rec=rec, path=where,
                      what="address resolved" if kind == "dns_event" else "address connected to")
        if pkg:
            ctx.check("app_id", pkg, rec=rec, path=where, what=f"app behind a {kind}")
    return ok(len(rows), _note(events))


def _note(events: Events) -> str:
    parts = [f"{events.files} log file(s)"]
    if events.duplicates:
        parts.append(f"{events.duplicates} duplicate event(s) dropped")
    if events.bad_lines:
        parts.append(f"{events.bad_lines} line(s) not JSON")
    return "; ".join(parts)


def dns_events(ctx: Ctx) -> Result:
    return _network(ctx, "dns_event")


def connect_events(ctx: Ctx) -> Result:
    return _network(ctx, "connect_event")


def _tag(ev: dict[str, Any]) -> str | None:
    return next((k for k in ev if k not in _META), None)


def _security_checks(ctx: Ctx, rec: Record, tag: str, body: object, where: str) -> None:
    info = body if isinstance(body, dict) else {}
    if tag == "app_process_start" and isinstance(info.get("process"), str):
        name = info["process"]
        parts = [name, *(p for p in name.split(":")[1:] if p)]
        for value in dict.fromkeys([*parts, name.partition(":")[0]]):
            ctx.check("app_id", value, rec=rec, path=where, what="app process started")
        ctx.check("process", name.partition(":")[0].rpartition("/")[2], rec=rec, path=where,
                  what="app process started")
        for v in info.values():
            if isinstance(v, str) and _HASH.fullmatch(v):
                ctx.check("hash", v.lower(), rec=rec, path=where, what="app started (APK)")
    elif tag in ("package_installed", "package_updated", "package_uninstalled"):
        pkg = info.get("package_name")
        if isinstance(pkg, str):
            ctx.check("app_id", pkg, rec=rec, path=where, what=tag.replace("_", " "))
    elif tag == "adb_shell_cmd" and isinstance(info.get("command"), str):
        for word in dict.fromkeys(info["command"].split()[:256]):
            ctx.check("app_id", word, rec=rec, path=where, what="adb shell command")
    elif tag in ("adb_sync_recv_file", "adb_sync_send_file") and isinstance(
            info.get("path"), str):
        what = "file pulled over adb" if tag.endswith("recv_file") else "file pushed over adb"
        ctx.check("file_path", info["path"], rec=rec, path=where, what=what)
        ctx.check("file_name", info["path"].rpartition("/")[2], rec=rec, path=where,
                  what=what)
    title = _SUSPICIOUS.get(tag)
    if title is None:
        return
    if tag == "cert_authority_installed" and info.get("success", True) is False:
        return
    if tag == "crypto_self_test_completed" and (
            info.get("success", True) if isinstance(body, dict) else body == 1):
        return
    shown = info.get("subject") if tag == "cert_authority_installed" else body
    ctx.heuristic(f"android-il-{tag.replace('_', '-')}", title,
                  f"{title} in the intrusion log: {str(shown)[:300]}", rec=rec, path=where,
                  severity=Severity.MEDIUM, detail={"event": tag})


def security_events(ctx: Ctx) -> Result:
    events = load(ctx)
    if events is None:
        return skipped("no intrusion_logs/ folder in the capture")
    rows = events.by_type.get("security_event", [])
    for where, ev in rows:
        ctx.evidence.budget.charge_elements()
        tag = _tag(ev) or "unknown"
        body = ev.get(tag)
        data: dict[str, Scalar] = {"tag": tag}
        _scalars({k: v for k, v in ev.items() if k != tag}, data)
        if isinstance(body, dict):
            _scalars(body, data, f"{tag}.")
        else:
            _scalars({tag: body}, data)
        rec = ctx.record("security_event", _when(ev.get("event_time"), 1_000_000_000),
                         tag, data)
        _security_checks(ctx, rec, tag, body, where)
    return ok(len(rows), _note(events))


INTRUSION_MODULES: tuple[FnModule[Capture], ...] = (
    FnModule("dns_event", "androidqf intrusion_logs/ (Android 16+): DNS queries, their "
             "answers and the apps that made them", dns_events),
    FnModule("connect_event", "androidqf intrusion_logs/: connections: addresses and apps",
             connect_events),
    FnModule("security_event", "androidqf intrusion_logs/: security log: apps started and "
             "installed, adb commands and files, certificate and key alarms",
             security_events),
)

