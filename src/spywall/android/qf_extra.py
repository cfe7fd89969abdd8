"""androidqf artifacts of newer versions (MVT's androidqf ``magisk_modules`` and
``samsung_sfs_logs``).

- ``magisk_modules/manifest.json`` (``schema_version`` 1): the Magisk modules found on a
  rooted phone, each with its folder, its state files (``disable``, ``remove``,
  ``update``) and, when collected, its ``module.prop`` (``key=value`` lines: ``id``,
  ``name``, ``version``, ``versionCode``, ``author``, ``description``, ``updateJson``).
  A ``module_prop_path`` must stay inside ``magisk_modules/`` and end in ``module.prop``.
  Any module is ``android-magisk-module`` (medium): Magisk modules rewrite the system at
  every boot, with root (MVT records them without an alert); ``updateJson`` is matched
  as a URL.
- Samsung's system framework logs (``sfslog.N.gz``, gzip text): lines
  ``yy-mm-dd (GMT+hh:mm) hh:mm:ss.mmm <pid> <level> <tag>: <message>``; the adb key
  decisions of ``AdbDebuggingManager`` (``Logging key <key>, state = N, ...``), the USB
  devices attached (``UsbHostManager``) and the USB state changes (``UsbDeviceManager``
  ``USB UEVENT: {...}``), for the timeline: who plugged what into the phone, and which
  computers were allowed to debug it. Decompression is capped by the capture's budget.
"""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from spywall.android.capture import Capture
from spywall.android.common import Ctx, Result, ok, read_manifest, skipped
from spywall.android.dumpstate import decode
from spywall.android.dumpsys import adb_fingerprint
from spywall.device.base import FnModule
from spywall.errors import FormatError, LimitExceeded
from spywall.report import Scalar, Severity

MAGISK_MANIFEST = "magisk_modules/manifest.json"
MAX_MODULES = 1000
MAX_PROP = 1024 * 1024
PROP_KEYS = {
    "id": "id",
    "name": "name",
    "version": "version",
    "versionCode": "version_code",
    "author": "author",
    "description": "description",
    "updateJson": "update_json",
}


def module_prop(text: str) -> dict[str, str]:
    """``key=value`` lines of a module.prop (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines()[:1000]:
        key, eq, value = line.strip().partition("=")
        if eq and key.strip() and not key.startswith("#"):
            out[key.strip()] = value.strip()[:2048]
    return out


def _prop_path(raw: object) -> str | None:
    if not isinstance(raw, str) or "\\" in raw or raw.startswith("/"):
        return None
    parts = PurePosixPath(raw).parts
    if (
        ".." in parts
        or len(parts) < 3
        or parts[0] != "magisk_modules"
        or (parts[-1] != "module.prop")
    ):
        return None
    return raw


def _text(v: object) -> str | None:
    return v[:1024] if isinstance(v, str) else None


def _magisk_record(cap: Capture, m: dict[str, Any]) -> dict[str, Scalar]:
    states = m.get("state_files")
    complete = (
        isinstance(states, list)
        and all(isinstance(s, str) for s in states)
        and (m.get("state_files_complete") is True)
    )
    names = set(states) if complete and isinstance(states, list) else set()
    data: dict[str, Scalar] = {
        "device_path": _text(m.get("device_path")),
        "directory_name": _text(m.get("directory_name")),
        "module_prop_status": _text(m.get("module_prop_status")),
        "state_files": " ".join(sorted(names)),
        "state_files_complete": complete,
        "disabled": "disable" in names if complete else None,
        "removal_pending": "remove" in names if complete else None,
        "update_pending": "update" in names if complete else None,
    }
    props: dict[str, str] = {}
    path = _prop_path(m.get("module_prop_path"))
    if m.get("module_prop_status") == "collected" and path is not None:
        raw = cap.read(path, MAX_PROP)
        props = module_prop(decode(raw)) if raw is not None else {}
    data.update({field: props.get(key) for key, field in PROP_KEYS.items()})
    return data


def magisk_modules(ctx: Ctx) -> Result:
    cap = ctx.evidence
    doc = read_manifest(cap, MAGISK_MANIFEST, "modules")
    if doc is None:
        return skipped(f"no {MAGISK_MANIFEST}")
    where = cap.where(MAGISK_MANIFEST)
    mods = [m for m in doc["modules"][:MAX_MODULES] if isinstance(m, dict)]
    for m in mods:
        data = _magisk_record(cap, m)
        label = str(data["id"] or data["directory_name"] or "?")
        rec = ctx.record("magisk_modules", None, f"Magisk module {label}", data)
        ctx.heuristic(
            "android-magisk-module",
            "Magisk module installed",
            f"the Magisk module {label} ({data['name'] or 'no name'}) is on the "
            "phone: it changes the system at every boot, with root; check that "
            "you installed it",
            rec=rec,
            path=where,
            severity=Severity.MEDIUM,
            detail={"module": label},
        )
        if isinstance(data["update_json"], str):
            ctx.check(
                "url", data["update_json"], rec=rec, path=where, what="Magisk module update URL"
            )
    return ok(len(mods))


# -- Samsung system framework logs --------------------------------------------------------

_SFS_NAME = re.compile(r"(?:.*/)?sfslog\.\d{1,6}\.gz", re.I)
_LINE = re.compile(
    r"(\d\d)-(\d\d)-(\d\d) \(GMT([+-])(\d\d):(\d\d)\) "
    r"(\d\d):(\d\d):(\d\d)\.(\d{3}) +\d+ [VDIWEAF] ([^:]{1,64}): (.*)"
)
_ADB = re.compile(
    r"Logging key (.*), state = (\d{1,3}), alwaysAllow = (true|false), "
    r"lastConnectionTime = (\d{1,20}), authWindow = (\d{1,20})"
)
_USB_DEVICE = re.compile(
    r"USB device attached: vidpid ([^:\s]+):(\S+) "
    r"mfg/product/ver(?:/serial)? (.*?)/(.*?)/(.*?)/(.*?) "
    r"hasAudio/HID/Storage: (true|false)/(true|false)/(true|false)"
)
_UEVENT = re.compile(r"USB UEVENT: \{(.*)\}")
ADB_STATES = {
    0: "unknown",
    1: "awaiting_user_approval",
    2: "user_allowed",
    3: "user_denied",
    4: "automatically_allowed",
    5: "denied_invalid_key",
    6: "denied_vold_decrypt",
    7: "disconnected",
}
MAX_SFS_FILES = 64


def sfs_time(m: re.Match[str]) -> str | None:
    """A log line's time in UTC (ISO-8601 with microseconds), from its GMT offset."""
    yy, mo, d, sign, oh, om, h, mi, s, ms = m.groups()[:10]
    try:
        local = datetime(2000 + int(yy), int(mo), int(d), int(h), int(mi), int(s), int(ms) * 1000)
    except ValueError:
        return None
    offset = (int(oh) * 60 + int(om)) * (1 if sign == "+" else -1)
    utc = datetime.fromtimestamp(local.replace(tzinfo=UTC).timestamp() - offset * 60, UTC)
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")


def sfs_event(line: str) -> tuple[str, str, dict[str, Scalar]] | None:
    """(time, event, fields) of a log line MVT reads, None for the others."""
    m = _LINE.fullmatch(line.rstrip("\r\n"))
    if m is None:
        return None
    when = sfs_time(m)
    tag, message = m.group(11), m.group(12)
    if when is None:
        return None
    if tag == "AdbDebuggingManager" and (a := _ADB.fullmatch(message)):
        key = a.group(1)
        user = key.rpartition(" ")[2] if " " in key else None
        state = int(a.group(2))
        return (
            when,
            "adb_connection",
            {
                "key": key[:4096],
                "user": user,
                "fingerprint": adb_fingerprint(key.split()[0]) if key.split() else None,
                "state": state,
                "state_name": ADB_STATES.get(state, "unknown"),
                "always_allow": a.group(3) == "true",
                "last_connection_time": int(a.group(4)),
                "auth_window": int(a.group(5)),
            },
        )
    if tag == "UsbHostManager" and (u := _USB_DEVICE.fullmatch(message)):
        g = u.groups()
        return (
            when,
            "usb_device_attached",
            {
                "vendor_id": g[0],
                "product_id": g[1],
                "manufacturer": g[2],
                "product": g[3],
                "version": g[4],
                "serial": g[5],
                "has_audio": g[6] == "true",
                "has_hid": g[7] == "true",
                "has_storage": g[8] == "true",
            },
        )
    if tag == "UsbDeviceManager" and (e := _UEVENT.fullmatch(message)):
        props = dict(item.strip().partition("=")[::2] for item in e.group(1).split(",")[:64])
        if "USB_STATE" not in props:
            return None
        return (
            when,
            "usb_state",
            {
                "usb_state": props["USB_STATE"],
                "subsystem": props.get("SUBSYSTEM"),
                "sequence_number": props.get("SEQNUM"),
                "action": props.get("ACTION"),
                "device_path": props.get("DEVPATH"),
            },
        )
    return None


def _gunzip(data: bytes, cap: Capture, name: str) -> bytes:
    limit = cap.budget.stream_cap()
    out = bytearray()
    rest = data
    while rest and len(out) <= limit:  # every member of a concatenated gzip
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += d.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise FormatError(f"{name}: bad gzip: {exc}") from exc
        if d.unconsumed_tail:
            raise LimitExceeded(f"{name}: decompresses past {limit} bytes")
        if not d.eof:
            raise FormatError(f"{name}: gzip stream cut short")
        rest = d.unused_data
    if len(out) > limit:
        raise LimitExceeded(f"{name}: decompresses past {limit} bytes")
    cap.budget.charge_decompressed(len(out), len(data))
    return bytes(out)


def samsung_sfs_logs(ctx: Ctx) -> Result:
    cap = ctx.evidence
    names = (
        [n for n in cap.members() if _SFS_NAME.fullmatch(n)] if cap.kind == ("androidqf") else []
    )
    if not names:
        return skipped("no Samsung sfslog.N.gz")
    n = 0
    for name in names[:MAX_SFS_FILES]:
        text = decode(_gunzip(cap.read(name) or b"", cap, name))
        for line in text.splitlines():
            got = sfs_event(line)
            if got is None:
                continue
            cap.budget.charge_elements()
            when, event, fields = got
            ctx.record("samsung_sfs_logs", when, event, {**fields, "source_file": name})
            n += 1
    return ok(n, f"{min(len(names), MAX_SFS_FILES)} log file(s)")


QF_EXTRA_MODULES: tuple[FnModule[Capture], ...] = (
    FnModule(
        "magisk_modules",
        "androidqf magisk_modules/: Magisk root modules, update URLs",
        magisk_modules,
    ),
    FnModule(
        "samsung_sfs_logs",
        "Samsung sfslog.N.gz: adb key decisions, USB devices and USB state for the timeline",
        samsung_sfs_logs,
    ),
)
