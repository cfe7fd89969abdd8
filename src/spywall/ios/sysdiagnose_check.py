"""``check-sysdiagnose``: the modules over a sysdiagnose (``ios.sysdiagnose``) and the
check that runs them.

- ``sysdiagnose_info`` (MVT's ``SysdiagnoseInfo``): the device and the archive, from four
  files, each read the way MVT reads it and each later one overriding the fields of the
  earlier ones: ``logs/appinstallation/appstored.sqlitedb`` (older iOS: ``Account Name``,
  from the ``name...\\0`` run of the first ``asset.sinfs_data`` sinf that has one, and
  ``Email Address``, the first ``job_software.store_account_name``);
  ``logs/MobileActivation/collection_oob_request.txt`` (the activation request's JSON
  body after ``BODY:``: ``SerialNumber``, ``ProductType``, ``ProductName``, ``IMEI``,
  ``ProductVersion``, ``UniqueIdentifier``, ``MEID``, ``BuildVersion``);
  ``remotectl_dumpstate.txt`` (every ``key => value`` line of the first device's
  ``Properties: {`` block); ``sysdiagnose.log`` (``OriginalFilename``, the archive name
  it names, and ``CreatedTimestamp``, the time in that name, in UTC). ``ProductName``
  becomes the model's name when the ``ProductType`` is one spywall knows. Nothing is
  matched against indicators (as MVT); an iOS older than the newest release known is
  ``ios-outdated`` (low), as for a backup. One record, without a time (MVT writes no
  timeline row for it).
- ``shutdown_log``: the shutdown logs a sysdiagnose carries
  (``system_logs.logarchive/Extra/shutdown.log`` and rotated ``shutdown.N.log``, oldest
  first), read as a filesystem dump's (``fs_modules``: processes still running at
  shutdown, matched; the unusual-folder heuristic). MVT reads these only in a dump;
  Kaspersky's iShutdown reads them from a sysdiagnose.
"""

from __future__ import annotations

import json
import posixpath
import re
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from spywall.device.base import (
    MODULE_ERRORS,
    CheckContext,
    FnModule,
    Module,
    SchemaUnknown,
    load_plist,
)
from spywall.device.runner import finish, new_report, run_modules
from spywall.device.sqlite import columns, open_evidence
from spywall.errors import FormatError, InputError, LimitExceeded
from spywall.iocs import IocIndex
from spywall.ios.fs_modules import parse_shutdown_log, record_clients
from spywall.ios.inventory import outdated
from spywall.ios.sysdiagnose import Sysdiagnose, open_sysdiagnose
from spywall.limits import Limits
from spywall.report import ErrorEntry, IocSource, ModuleRun, Report, Scalar, Subject

Ctx = CheckContext[Sysdiagnose]
Result = tuple[str, int, str]

APPSTORED = re.compile(r".+/logs/appinstallation/appstored\.sqlitedb")
ACTIVATION = re.compile(r".+/logs/MobileActivation/collection_oob_request\.txt")
DUMPSTATE = re.compile(r".+/remotectl_dumpstate\.txt")
LOG = re.compile(r".+/sysdiagnose\.log")
SHUTDOWN = re.compile(r".+/system_logs\.logarchive/Extra/[Ss]hutdown(?:\.(\d{1,4}))?\.log")
MAX_PROPERTIES = 1_000
MAX_VALUE = 4_096
MAX_ASSETS = 100_000
_ERRORS: tuple[type[BaseException], ...] = (*MODULE_ERRORS, SchemaUnknown)
_BODY = re.compile(rb"BODY:\s+(?={)")
_ARCHIVE_NAME = re.compile(r"sysdiagnose_\S+?\.tar\.gz")
_SINF_NAME = re.compile(rb"name(.*?)\x00", re.S)
# The activation request's JSON keys -> MVT's field names.
ACTIVATION_FIELDS = {
    "serial-number": "SerialNumber", "productType": "ProductType",
    "productName": "ProductName", "imei": "IMEI", "os-version": "ProductVersion",
    "udid": "UniqueIdentifier", "meid": "MEID", "os-build": "BuildVersion",
}
# Apple's model identifiers of recent iPhones (public: Apple's own support pages name
# them) -> the model, so that ``ProductName`` reads as a person knows the phone.
MODELS = {
    "iPhone10,1": "iPhone 8", "iPhone10,4": "iPhone 8", "iPhone10,2": "iPhone 8 Plus",
    "iPhone10,5": "iPhone 8 Plus", "iPhone10,3": "iPhone X", "iPhone10,6": "iPhone X",
    "iPhone11,2": "iPhone XS", "iPhone11,4": "iPhone XS Max", "iPhone11,6": "iPhone XS Max",
    "iPhone11,8": "iPhone XR", "iPhone12,1": "iPhone 11", "iPhone12,3": "iPhone 11 Pro",
    "iPhone12,5": "iPhone 11 Pro Max", "iPhone12,8": "iPhone SE (2nd generation)",
    "iPhone13,1": "iPhone 12 mini", "iPhone13,2": "iPhone 12", "iPhone13,3": "iPhone 12 Pro",
    "iPhone13,4": "iPhone 12 Pro Max", "iPhone14,4": "iPhone 13 mini",
    "iPhone14,5": "iPhone 13", "iPhone14,2": "iPhone 13 Pro",
    "iPhone14,3": "iPhone 13 Pro Max", "iPhone14,6": "iPhone SE (3rd generation)",
    "iPhone14,7": "iPhone 14", "iPhone14,8": "iPhone 14 Plus", "iPhone15,2": "iPhone 14 Pro",
    "iPhone15,3": "iPhone 14 Pro Max", "iPhone15,4": "iPhone 15", "iPhone15,5": "iPhone 15 Plus",
    "iPhone16,1": "iPhone 15 Pro", "iPhone16,2": "iPhone 15 Pro Max",
    "iPhone17,3": "iPhone 16", "iPhone17,4": "iPhone 16 Plus", "iPhone17,1": "iPhone 16 Pro",
    "iPhone17,2": "iPhone 16 Pro Max", "iPhone17,5": "iPhone 16e",
}


def _note_stop(ctx: Ctx, module: str) -> None:
    """When the archive was not read to its end: an error entry of this module (the
    files it reads may lie past that point), so the check is incomplete."""
    sd = ctx.evidence
    if sd.stopped is not None:
        code, why = sd.stopped
        ctx.subject.errors.append(ErrorEntry(
            path=str(sd.root), code=code,
            message=f"{module}: the sysdiagnose was read only up to this point ({why}); "
                    "what lies past it was not examined"[:600]))


def _each(ctx: Ctx, module: str, names: Sequence[str],
          read: Callable[[str, bytes], None]) -> int:
    """``read`` each file; one that cannot be read is an error entry of its own (the
    others are read): evidence not examined."""
    done = 0
    for name in names:
        try:
            read(name, ctx.evidence.read(name))
            done += 1
        except _ERRORS as exc:
            ctx.subject.errors.append(ErrorEntry(
                path=ctx.evidence.display(name), code=getattr(exc, "code", "malformed"),
                message=f"{module}: {type(exc).__name__}: {exc}"[:600]))
    return done


def _appstored(sd: Sysdiagnose, name: str, data: bytes, out: dict[str, Scalar]) -> None:
    with tempfile.TemporaryDirectory(prefix="spywall-appstored-") as tmp:
        db = Path(tmp, "appstored.sqlitedb")
        db.write_bytes(data)
        if f"{name}-wal" in sd.names:
            Path(f"{db}-wal").write_bytes(sd.read(f"{name}-wal"))
        with open_evidence(db) as conn:
            if "sinfs_data" in columns(conn, "asset"):
                for (blob,) in conn.execute("SELECT sinfs_data FROM asset LIMIT ?",
                                            (MAX_ASSETS,)):
                    account = _account_name(blob)
                    if account is not None:
                        out["Account Name"] = account
                        break
            if "store_account_name" in columns(conn, "job_software"):
                row = conn.execute("SELECT store_account_name FROM job_software WHERE "
                                   "store_account_name IS NOT NULL LIMIT 1").fetchone()
                if row is not None:
                    out["Email Address"] = _scalar(row[0])
            elif "sinfs_data" not in columns(conn, "asset"):
                raise SchemaUnknown("appstored.sqlitedb has neither asset.sinfs_data nor "
                                    "job_software.store_account_name")


def _account_name(blob: object) -> str | None:
    """The account name in a sinf (the bytes after ``name`` up to a NUL), from the first
    item of a ``sinfs_data`` plist; None when the blob holds none."""
    if not isinstance(blob, bytes):
        return None
    try:
        items = load_plist(blob, limit=1 << 20)
    except (FormatError, LimitExceeded):
        return None
    first = items[0] if isinstance(items, list) and items else None
    sinf = first.get("sinf") if isinstance(first, dict) else None
    m = _SINF_NAME.search(sinf) if isinstance(sinf, bytes) else None
    return m.group(1)[:MAX_VALUE].decode("utf-8", "replace") if m else None


def _scalar(v: object) -> Scalar:
    if isinstance(v, str):
        return v[:MAX_VALUE]
    return v if isinstance(v, int | float | bool) or v is None else str(v)[:MAX_VALUE]


def _activation(data: bytes, out: dict[str, Scalar]) -> None:
    m = _BODY.search(data)
    if m is None:
        return  # (a request without a body: nothing to read)
    try:
        body, _ = json.JSONDecoder().raw_decode(data[m.end():m.end() + MAX_VALUE * 16]
                                                .decode("utf-8", "replace"))
    except ValueError as exc:
        raise FormatError(f"the activation request's body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise FormatError("the activation request's body is not a JSON object")
    for key, field in ACTIVATION_FIELDS.items():
        out[field] = _scalar(body.get(key))


def _dumpstate(data: bytes, out: dict[str, Scalar]) -> None:
    """The ``key => value`` lines of the first ``Properties: {`` block."""
    inside = False
    n = 0
    for line in data.decode("utf-8", "replace").splitlines():
        if not inside:
            inside = line == "\tProperties: {"
            continue
        if line == "\t}":
            break
        key, sep, value = line.partition("=>")
        if sep and n < MAX_PROPERTIES:
            out[key.strip()[:256]] = value.strip()[:MAX_VALUE]
            n += 1


def _log(data: bytes, out: dict[str, Scalar]) -> None:
    """The archive's name and creation time, from the first archive name the log gives
    (``sysdiagnose_2023.06.13_15-12-19+0200_...tar.gz``); a name in another form gives
    neither."""
    m = _ARCHIVE_NAME.search(data[:MAX_LOG].decode("utf-8", "replace"))
    if m is None:
        return
    name = posixpath.basename(m.group(0))
    try:
        created = datetime.strptime("_".join(name.split("_")[1:3]), "%Y.%m.%d_%H-%M-%S%z")
    except ValueError:
        return
    out["OriginalFilename"] = name
    out["CreatedTimestamp"] = created.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


MAX_LOG = 16 * 1024 * 1024


def _info(ctx: Ctx) -> Result:
    sd = ctx.evidence
    _note_stop(ctx, "sysdiagnose_info")
    out: dict[str, Scalar] = {}
    found = read = 0
    for pattern, reader in (
            (APPSTORED, lambda n, d: _appstored(sd, n, d, out)),
            (ACTIVATION, lambda _n, d: _activation(d, out)),
            (DUMPSTATE, lambda _n, d: _dumpstate(d, out)),
            (LOG, lambda _n, d: _log(d, out))):
        names = sd.matching(pattern)
        found += len(names)
        read += _each(ctx, "sysdiagnose_info", names, reader)
    if not found:
        return ("skipped", 0, "none of remotectl_dumpstate.txt, sysdiagnose.log, the "
                "activation request or appstored.sqlitedb is in this sysdiagnose")
    model = MODELS.get(str(out.get("ProductType") or ""))
    if model:
        out["ProductName"] = model
    rec = ctx.record("sysdiagnose_info", None, "sysdiagnose_info", out)
    version = str(out.get("ProductVersion") or out.get("OSVersion") or "")
    build = str(out.get("BuildVersion") or "")
    dumpstate = sd.matching(DUMPSTATE)
    where = sd.display(dumpstate[0]) if dumpstate else str(sd.root)
    version, known = outdated(ctx, version, build, rec, where)
    shown = f"iOS {version}" if version else f"build {build or 'unknown'}"
    return ("ok", 1, f"{read} of {found} file(s) read; {shown}; newest release known: "
            f"{known.summary()}")


def _shutdown(ctx: Ctx) -> Result:
    sd = ctx.evidence
    _note_stop(ctx, "shutdown_log")
    logs = sd.matching(SHUTDOWN)
    if not logs:
        return ("skipped", 0, "no system_logs.logarchive/Extra/shutdown.log in this "
                "sysdiagnose")
    # (rotated logs first, the highest number, the oldest, first; the current one last)
    logs.sort(key=lambda n: -int(m.group(1)) if (m := SHUTDOWN.fullmatch(n)) and m.group(1)
              else 1)
    flagged: set[str] = set()
    counts = [0, 0, 0]  # clients, shutdowns, malformed lines

    def read(name: str, data: bytes) -> None:
        shutdowns, bad = parse_shutdown_log(data.decode("utf-8", "replace"))
        counts[0] += record_clients(ctx, shutdowns, sd.display(name),
                                    posixpath.basename(name), flagged)
        counts[1] += len(shutdowns)
        counts[2] += bad

    done = _each(ctx, "shutdown_log", logs, read)
    message = f"{counts[1]} shutdown(s) in {done} log(s)"
    if counts[2]:
        message += f"; {counts[2]} malformed line(s) skipped"
    return ("ok", counts[0], message)


MODULES: tuple[Module[Sysdiagnose], ...] = (
    FnModule("sysdiagnose_info", "device and archive details (remotectl_dumpstate.txt, "
             "activation request, appstored.sqlitedb, sysdiagnose.log)", _info),
    FnModule("shutdown_log", "processes still running at shutdown (system_logs.logarchive/"
             "Extra/shutdown.log)", _shutdown),
)
DEVICE_KEYS = {"ProductVersion": "ios_version", "OSVersion": "ios_version",
               "BuildVersion": "build", "ProductType": "product_type",
               "ProductName": "product_name", "SerialNumber": "serial_number",
               "UniqueIdentifier": "udid", "IMEI": "imei",
               "CreatedTimestamp": "sysdiagnose_created"}


class Outcome(msgspec.Struct):
    report: Report
    ctx: CheckContext[Sysdiagnose]


def check_sysdiagnose(path: str | Path, index: IocIndex, sources: Sequence[IocSource] = (),
                      limits: Limits | None = None,
                      modules: Sequence[Module[Sysdiagnose]] = MODULES,
                      on_done: Callable[[ModuleRun], None] | None = None) -> Outcome:
    """Check one sysdiagnose (archive or folder); ``InputError`` when it is neither."""
    limits = limits or Limits(seconds=900.0)
    report = new_report("check-sysdiagnose")
    report.ioc_sources = list(sources)
    sd = open_sysdiagnose(path, limits)
    subject = Subject(path=str(sd.root), format="ios-sysdiagnose", objects=len(sd.names),
                      sha256=sd.inputs.get(str(sd.root)),
                      size=sd.root.stat().st_size if sd.archive else None)
    ctx: Ctx = CheckContext(evidence=sd, index=index, subject=subject, limits=limits)
    report.modules = run_modules(modules, ctx, on_done)
    report.subjects = [subject]
    report.device = _device(ctx)
    return Outcome(finish(report), ctx)


def _device(ctx: Ctx) -> dict[str, Scalar]:
    """The report's ``device`` fields from the ``sysdiagnose_info`` record."""
    out: dict[str, Scalar] = {"platform": "ios", "sysdiagnose": True}
    for rec in ctx.records.get("sysdiagnose_info", ()):
        for key, name in DEVICE_KEYS.items():
            v = rec.data.get(key)
            if v is not None and name not in out:
                out[name] = v
    return out


def pick(only: Sequence[str]) -> list[Module[Sysdiagnose]]:
    """The modules named in ``only`` (all when empty); ``InputError`` for another name."""
    names = [m.name for m in MODULES]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise InputError(f"unknown module(s) {', '.join(unknown)}; modules: {', '.join(names)}")
    return [m for m in MODULES if not only or m.name in only]


