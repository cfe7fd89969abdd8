"""System artifacts: network use per process (DataUsage, OS analytics), permissions (TCC),
location clients, iMessage lookups (IDStatusCache), calendar participants and events, and whether
Lockdown Mode is on (global preferences)."""

from __future__ import annotations

import itertools
import posixpath
from typing import Any

from spywall.device.base import (
    FnModule,
    Record,
    SchemaUnknown,
    iso_apple,
    iso_datetime,
    iso_unix,
)
from spywall.device.sqlite import columns, require
from spywall.ios import triangulation
from spywall.ios.backup import Entry
from spywall.ios.common import MAX_ROWS, Ctx, Result, database, ok, plist, single
from spywall.ios.fsdump import FsDump
from spywall.report import Scalar, Severity

DATAUSAGE = [("WirelessDomain", "Library/Databases/DataUsage.sqlite")]
ADDAILY = [("HomeDomain", "Library/Preferences/com.apple.osanalytics.addaily.plist")]
IDSTATUS = [("HomeDomain", "Library/Preferences/com.apple.identityservices.idstatuscache.plist"),
            ("HomeDomain", "Library/IdentityServices/idstatuscache.plist")]
TCC = [("HomeDomain", "Library/TCC/TCC.db")]
LOCATIOND = [("RootDomain", "Library/Caches/locationd/clients.plist")]
CALENDAR = [("HomeDomain", "Library/Calendar/Calendar.sqlitedb")]
GLOBAL_PREFS = [("HomeDomain", "Library/Preferences/.GlobalPreferences.plist")]
LOCKDOWN_KEY = "LDMGlobalEnabled"
LOCKDOWN_DOC = "https://support.apple.com/en-us/105120"
MAX_GAPS = 1000
QUADREAM_REFS = ("https://citizenlab.ca/2023/04/spyware-vendor-quadream-exploits-victims-customers/",)


def _num(v: object) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


def process_usage(ctx: Ctx, entry: Entry, path: str, module: str, source: str) -> Result:
    """Network use per process from a DataUsage-family database (ZPROCESS, ZLIVEUSAGE):
    DataUsage.sqlite in backups, netusage.sqlite in filesystem dumps. Records go to
    ``module``; ``source`` names the file in messages."""
    label = source.partition(".")[0]
    with database(ctx, entry) as conn:
        require(conn, "ZPROCESS", ("Z_PK", "ZPROCNAME", "ZBUNDLENAME", "ZFIRSTTIMESTAMP"))
        have = require(conn, "ZLIVEUSAGE", ("Z_PK", "ZTIMESTAMP", "ZWIFIIN", "ZWIFIOUT",
                                            "ZWWANIN", "ZWWANOUT"))
        link = next((c for c in ("ZHASPROCESS", "ZPROCESS") if c in have), None)
        if link is None:
            raise SchemaUnknown("ZLIVEUSAGE has neither ZHASPROCESS nor ZPROCESS")
        procs = conn.execute("SELECT Z_PK, ZPROCNAME, ZBUNDLENAME, ZFIRSTTIMESTAMP "
                             "FROM ZPROCESS LIMIT ?", (MAX_ROWS,)).fetchall()
        usage = conn.execute(f"SELECT Z_PK, {link}, ZTIMESTAMP, ZWIFIIN, ZWIFIOUT, "  # noqa: S608
                             "ZWWANIN, ZWWANOUT FROM ZLIVEUSAGE LIMIT ?", (MAX_ROWS,)).fetchall()
    names = {pk: (str(name or ""), str(bundle or ""), first) for pk, name, bundle, first in procs}
    first_seen: dict[Any, Record] = {}
    for pk, (name, bundle, first) in names.items():
        rec = first_seen[pk] = ctx.record(module, iso_apple(first), "process_first_seen",
                                          {"proc_id": pk, "proc_name": name,
                                           "bundle_id": bundle})
        ctx.check("process", triangulation.process_name(name), rec=rec, path=path,
                  what=f"{label} process")
        if bundle:
            ctx.check("app_id", bundle, rec=rec, path=path, what=f"{label} bundle id")
    for pk, proc, ts, *counts in usage:
        traffic = sum(_num(c) for c in counts)
        known = names.get(proc)
        name = known[0] if known else ""
        rec = ctx.record(module, iso_apple(ts), "network_usage",
                         {"live_id": pk, "live_proc_id": proc, "proc_name": name,
                          "bytes": traffic})
        if known is None:
            which = f"process #{proc}" if proc is not None else "no process at all"
            ctx.heuristic(
                "ios-datausage-orphan-usage", "Network use by a process with no record",
                f"{label} row {pk} counts {traffic:g} bytes for {which}, which has no "
                "ZPROCESS record (a deleted process entry; spyware has removed its own)",
                rec=rec, path=path, severity=Severity.HIGH, detail={"process_pk": proc})
        triangulation.check_backupagent(ctx, name, traffic, rec, path, source)
    _gaps(ctx, names, path, module, label)
    if isinstance(ctx.evidence, FsDump):
        _binaries_missing(ctx, ctx.evidence, names, first_seen, path, label)
    return ok(len(procs) + len(usage))


MAX_MISSING = 1000


def _binaries_missing(ctx: Ctx, dump: FsDump, names: dict[Any, tuple[str, str, Any]],
                      first_seen: dict[Any, Record], path: str, label: str) -> None:
    """A filesystem dump holds the programs that ran: a process with no bundle id (not
    an app) whose name no file of the dump bears ran from somewhere that is gone, or
    outside what was extracted (MVT's extended search, medium)."""
    files = dump.file_names()
    found = 0
    for pk, (name, bundle, first) in names.items():
        if bundle or name in files:
            continue
        found += 1
        if found > MAX_MISSING:
            break
        if not name:
            msg = f"{label}: process record #{pk} has no name"
        else:
            msg = (f"{label}: no file in the dump is named {name!r}, a process that used "
                   "the network: its program was deleted, or lies outside the dump")
            if len(name) == 16:
                msg += " (the name may be cut to 16 characters in the database)"
        ctx.heuristic("ios-process-binary-missing", "Program of a process not found", msg,
                      rec=first_seen.get(pk), path=path, severity=Severity.MEDIUM,
                      detail={"proc_id": pk, "proc_name": name, "first_seen": iso_apple(first)})


def _gaps(ctx: Ctx, names: dict[Any, tuple[str, str, Any]], path: str, module: str,
          label: str) -> None:
    """ZPROCESS keys are given out in order and never reused: a run of missing keys
    between two present ones is process records deleted from the database (spyware has
    removed its own). One finding per run, at most ``MAX_GAPS``."""
    pks = sorted(k for k in names if isinstance(k, int) and not isinstance(k, bool))
    found = 0
    for before, after in itertools.pairwise(pks):
        if after - before < 2:
            continue
        found += 1
        if found > MAX_GAPS:
            break
        first, last = before + 1, after - 1
        prev = names[before]
        which = f"#{first}" if first == last else f"#{first} to #{last}"
        rec = ctx.record(module, iso_apple(prev[2]), "missing_process",
                         {"proc_id": first, "last_proc_id": last, "follows": prev[0]})
        ctx.heuristic(
            "ios-datausage-missing-process", "Process records missing from network use",
            f"{label}: process record(s) {which} are missing (after {prev[0] or '?'} "
            f"#{before}); process records are numbered in order, so these were deleted",
            rec=rec, path=path, severity=Severity.LOW,
            detail={"first_missing": first, "last_missing": last, "follows": prev[0]})


def _datausage(ctx: Ctx, entry: Entry, path: str) -> Result:
    return process_usage(ctx, entry, path, "datausage", "DataUsage.sqlite")


def _addaily(ctx: Ctx, entry: Entry, path: str) -> Result:
    root = plist(ctx, entry)
    base = root.get("netUsageBaseline") if isinstance(root, dict) else None
    if not isinstance(base, dict):
        return ok(0, "no netUsageBaseline")
    for name, values in base.items():
        vals = values if isinstance(values, list) else []
        when = next((iso_datetime(v) for v in vals if iso_datetime(v)), None)
        traffic = sum(_num(v) for v in vals)
        rec = ctx.record("os_analytics_ad_daily", when, "net_usage_baseline",
                         {"process": str(name), "bytes": traffic})
        ctx.check("process", str(name), rec=rec, path=path, what="OS analytics process")
        triangulation.check_backupagent(ctx, str(name), traffic, rec, path,
                                        "com.apple.osanalytics.addaily.plist")
    return ok(len(base))


def _idstatuscache(ctx: Ctx, entry: Entry, path: str) -> Result:
    root = plist(ctx, entry)
    n = 0
    services = root.items() if isinstance(root, dict) else []
    for service, lookups in services:
        for key, val in lookups.items() if isinstance(lookups, dict) else []:
            n += 1
            info = val if isinstance(val, dict) else {}
            rec = ctx.record("id_status_cache", iso_apple(info.get("LookupDate")),
                             "lookup", {"service": str(service), "user": str(key)})
            if isinstance(key, str) and key.startswith("mailto:"):
                ctx.check("email", key[7:], rec=rec, path=path, what="iMessage lookup")
            if isinstance(key, str) and ("\x00\x00" in key or "\\x00\\x00" in key):
                ctx.heuristic("ios-idstatuscache-nul", "iMessage lookup with NUL characters",
                              f"the {service} lookup of {key!r} holds two NUL characters in "
                              "a row, a pattern seen in lookups made by exploits (high, as "
                              "MVT)", rec=rec, path=path, severity=Severity.HIGH,
                              detail={"service": str(service)})
    return ok(n)


# TCC access values (auth_value; older databases: allowed 0/1) and reasons, as Apple's
# tccd defines them and MVT names them.
AUTH_VALUES = {0: "denied", 1: "unknown", 2: "allowed", 3: "limited"}
ALLOWED_OLD = {0: "denied", 1: "allowed"}
AUTH_REASONS = {1: "error", 2: "user_consent", 3: "user_set", 4: "system_set",
                5: "service_policy", 6: "mdm_policy", 7: "override_policy",
                8: "missing_usage_string", 9: "prompt_timeout", 10: "preflight_unknown",
                11: "entitled", 12: "app_type_policy"}


def _tcc(ctx: Ctx, entry: Entry, path: str) -> Result:
    with database(ctx, entry) as conn:
        have = require(conn, "access", ("service", "client"))
        new = "auth_value" in have
        auth = "auth_value" if new else "allowed" if "allowed" in have else "NULL"
        reason = "auth_reason" if "auth_reason" in have else "NULL"
        kind = "client_type" if "client_type" in have else "NULL"
        when = "last_modified" if "last_modified" in have else "NULL"
        rows = conn.execute(f"SELECT service, client, {kind}, {auth}, {reason}, {when} "  # noqa: S608
                            "FROM access LIMIT ?", (MAX_ROWS,)).fetchall()
    names = AUTH_VALUES if new else ALLOWED_OLD
    for service, client, client_type, allowed, why, modified in rows:
        c = str(client or "")
        data: dict[str, Scalar] = {
            "service": str(service), "client": c,
            "client_type": "bundle_id" if client_type == 0 else "absolute_path"}
        if new:
            data["auth_value"] = names.get(allowed, "") if isinstance(allowed, int) else ""
            data["auth_reason_desc"] = (AUTH_REASONS.get(why, "unknown")
                                        if isinstance(why, int) else "unknown")
        else:
            data["allowed_value"] = names.get(allowed, "") if isinstance(allowed, int) else ""
        rec = ctx.record("tcc", iso_unix(modified), "AccessRequest", data)
        if c.startswith("/"):
            ctx.check("file_path", c, rec=rec, path=path, what="TCC client path")
            ctx.check("process", posixpath.basename(c), rec=rec, path=path, what="TCC client")
        else:
            ctx.check("app_id", c, rec=rec, path=path, what="TCC client")
            ctx.check("process", c, rec=rec, path=path, what="TCC client")
    return ok(len(rows))


def _locationd(ctx: Ctx, entry: Entry, path: str) -> Result:
    """Every location client (a dict; the integers beside them are migration counters,
    skipped as MVT skips them). Its key, without the trailing ``:`` newer iOS writes,
    names it: its last path part is matched as a process, its bundle id (``BundleId``,
    else the key) as an app id and a process; ``BundlePath``, ``Executable`` and
    ``Registered`` (when a path, not a flag) as file paths and their last part as a
    process, as MVT matches them."""
    root = plist(ctx, entry)
    clients = root.items() if isinstance(root, dict) else []
    n = 0
    for key, info in clients:
        if not isinstance(info, dict):
            continue
        n += 1
        package = str(key).rstrip(":")
        when = next((iso_apple(v) for k, v in info.items()
                     if isinstance(k, str) and "Time" in k and iso_apple(v)), None)
        rec = ctx.record("locationd_clients", when, "location_client", {"client": package})
        name = package.removeprefix("com.apple.locationd.bundle-")
        bundle = info.get("BundleId")
        # (high, as MVT's locationd module marks its matches)
        ctx.check("app_id", str(bundle or name), rec=rec, path=path, what="location client",
                  severity=Severity.HIGH)
        procs = [package.rpartition("/")[2], bundle if isinstance(bundle, str) else ""]
        for field in ("BundlePath", "Executable", "Registered"):
            v = info.get(field)
            if isinstance(v, str) and v:
                ctx.check("file_path", v, rec=rec, path=path, what=f"location client {field}",
                          severity=Severity.HIGH)
                procs.append(posixpath.basename(v))
        for proc in dict.fromkeys(procs):  # each name once: a hit is one finding
            ctx.check("process", proc, rec=rec, path=path, what="location client",
                      severity=Severity.HIGH)
    return ok(n)


# Quadream's exploit (ENDOFDAYS, iOS 14) arrived as iCloud calendar invitations that
# were left as events titled "Meeting" with the description "Notes" (Citizen Lab and
# Microsoft, April 2023); MVT raises such an event at high.
QUADREAM_EVENT = ("Meeting", "Notes")


def _calendar(ctx: Ctx, entry: Entry, path: str) -> Result:
    """Every participant's address (matched as an email) and every calendar item (MVT's
    ``CalendarItem`` rows, on the timeline by their start), with Quadream's invitation
    shape flagged; a database without ``CalendarItem`` (an old or partial one) still
    gives its participants."""
    with database(ctx, entry) as conn:
        require(conn, "Participant", ("ROWID", "email"))
        rows = conn.execute("SELECT ROWID, email FROM Participant LIMIT ?",
                            (MAX_ROWS,)).fetchall()
        have = columns(conn, "CalendarItem")
        items: list[Any] = []
        if {"ROWID", "summary", "description"} <= have:
            extra = ", ".join(c if c in have else "NULL" for c in ("start_date", "UUID"))
            items = conn.execute(f"SELECT ROWID, summary, description, {extra} "  # noqa: S608
                                 "FROM CalendarItem LIMIT ?", (MAX_ROWS,)).fetchall()
    for rowid, email in rows:
        if isinstance(email, str) and email:
            rec = ctx.record("calendar", None, "participant", {"rowid": rowid, "email": email})
            ctx.check("email", email.removeprefix("mailto:"), rec=rec, path=path,
                      what="calendar participant")
    for rowid, summary, description, start, uuid in items:
        rec = ctx.record("calendar", iso_apple(start), "start_date",
                         {"id": rowid, "summary": _text(summary),
                          "description": _text(description), "uuid": _text(uuid)})
        if (summary, description) == QUADREAM_EVENT:
            ctx.heuristic("ios-quadream-calendar-event", "Calendar event shaped as Quadream's",
                          f"calendar event {_text(uuid) or rowid} is titled 'Meeting' with the "
                          "description 'Notes', as the invitations that delivered Quadream's "
                          "exploit were left (high, as MVT)", rec=rec, path=path,
                          severity=Severity.HIGH, detail={"uuid": _text(uuid)},
                          references=QUADREAM_REFS)
    return ok(len(rows) + len(items))


def _text(v: object) -> str:
    return v if isinstance(v, str) else ""


def _global_prefs(ctx: Ctx, entry: Entry, path: str) -> Result:
    """``LDMGlobalEnabled`` in the global preferences: Lockdown Mode on (information, as
    MVT says it: an information finding alone leaves the phone's verdict clean) or
    turned off after having been set (low: Apple's protection against mercenary spyware
    is not active). Any true value is on, as MVT reads it. Without the key it was never
    turned on (said, not a finding)."""
    root = plist(ctx, entry)
    prefs = root if isinstance(root, dict) else {}
    value = prefs.get(LOCKDOWN_KEY)
    state = "never set" if value is None else "on" if value else "off"
    rec = ctx.record("global_preferences", None, "lockdown_mode",
                     {"entry": LOCKDOWN_KEY, "value": state})
    if state == "on":
        ctx.heuristic("ios-lockdown-mode-on", "Lockdown Mode enabled",
                      "Lockdown Mode is on: Apple's protection against mercenary spyware "
                      "is active (information, as MVT)", rec=rec, path=path,
                      severity=Severity.INFO, references=(LOCKDOWN_DOC,))
    elif state == "off":
        ctx.heuristic("ios-lockdown-mode-off", "Lockdown Mode disabled",
                      "Lockdown Mode is off: if you may be targeted by mercenary spyware, "
                      "turn it on (Settings > Privacy & Security > Lockdown Mode)",
                      rec=rec, path=path, severity=Severity.LOW, references=(LOCKDOWN_DOC,))
    return ok(len(prefs), f"Lockdown Mode {state}")


MODULES = (
    FnModule("datausage", "network use per process (DataUsage.sqlite)",
             single(DATAUSAGE, _datausage)),
    FnModule("os_analytics_ad_daily", "OS analytics network baseline per process",
             single(ADDAILY, _addaily)),
    FnModule("id_status_cache", "iMessage / FaceTime lookups (IDStatusCache)",
             single(IDSTATUS, _idstatuscache)),
    FnModule("tcc", "privacy permissions granted to apps (TCC.db)", single(TCC, _tcc)),
    FnModule("locationd_clients", "location-services clients (clients.plist)",
             single(LOCATIOND, _locationd)),
    FnModule("calendar", "calendar participants and events: Quadream's invitations "
             "(Calendar.sqlitedb)",
             single(CALENDAR, _calendar)),
    FnModule("global_preferences", "Lockdown Mode on or off (.GlobalPreferences.plist)",
             single(GLOBAL_PREFS, _global_prefs)),
)
