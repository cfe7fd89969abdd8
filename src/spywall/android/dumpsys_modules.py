"""Bugreport modules over more ``dumpsys`` sections (``android.dumpsys`` parses them), the
battery history and daily stats, and the process table. For an androidqf capture they
read its bugreport.zip (or dumpsys.txt), like the other bugreport modules.

Indicator checks are app ids (packages) and process names. Heuristics, as MVT raises them:
- ``android-risky-appop`` (medium): an app-op that lets an app install other apps
  (``REQUEST_INSTALL_PACKAGES``) recorded for a package; ``android-shell-appop``
  (medium): app-ops recorded for the adb shell (``com.android.shell``).
- ``android-app-uninstalled`` / ``android-app-downgraded`` (medium): the daily battery
  stats show a package updated to version 0 (removed) or to a lower version.
- ``android-adb-key-*`` (low, information): trusted adb hosts against the capture's own
  computer (``adb_trust``).
Apps named only in ``platform_compat`` or the battery history are apps that were on the
phone: an indicator match there names an app that may since have been removed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from spywall.android import adb_trust, dumpsys, settings_dump
from spywall.android.bugreport_modules import section_of
from spywall.android.capture import Capture
from spywall.android.common import (
    Ctx,
    Result,
    iso_any,
    ok,
    process_checks,
    setting_check,
    skipped,
)
from spywall.android.dumpstate import section
from spywall.device.base import FnModule
from spywall.report import Scalar, Severity

T = TypeVar("T")
RISKY_OPS: dict[str, str] = {
    "REQUEST_INSTALL_PACKAGES": "install other apps",
}
SHELL_PACKAGE = "com.android.shell"


def _service(name: str, parse: Callable[[str], T]) -> Callable[[str], T | None]:
    def got(text: str) -> T | None:
        body = section(text, f"DUMP OF SERVICE {name}:")
        return None if body is None else parse(body)
    return got


def appops(ctx: Ctx) -> Result:
    got = section_of(ctx, _service("appops", dumpsys.appops), "'DUMP OF SERVICE appops'")
    if isinstance(got, str):
        return skipped(got)
    where, ops = got
    checked: set[str] = set()
    shell: list[str] = []
    for op in ops:
        times = sorted(e.time for e in op.entries if e.time)
        rec = ctx.record("dumpsys_appops", iso_any(times[-1]) if times else None,
                         f"{op.package} {op.op}",
                         {"package_name": op.package, "uid": op.uid, "op": op.op,
                          "mode": op.mode, "accesses": len(op.entries)})
        if op.package not in checked:
            checked.add(op.package)
            ctx.check("app_id", op.package, rec=rec, path=where, what="package with app-ops")
        if op.op in RISKY_OPS:
            ctx.heuristic("android-risky-appop", "Risky app permission recorded",
                          f"{op.package} holds the app-op {op.op} ({op.mode or 'no mode'}): "
                          f"it can {RISKY_OPS[op.op]}; check that you allowed it",
                          rec=rec, path=where, severity=Severity.MEDIUM,
                          detail={"package": op.package, "op": op.op, "mode": op.mode})
        elif op.package == SHELL_PACKAGE:
            shell.append(op.op)
    if shell:
        rec = ctx.record("dumpsys_appops", None, f"{SHELL_PACKAGE} app-ops",
                         {"package_name": SHELL_PACKAGE, "ops": ", ".join(shell[:50])})
        ctx.heuristic("android-shell-appop", "App-ops recorded for the adb shell",
                      f"the adb shell ({SHELL_PACKAGE}) used {len(shell)} app-op(s) "
                      f"({', '.join(shell[:10])}): someone ran commands over adb",
                      rec=rec, path=where, severity=Severity.MEDIUM,
                      detail={"package": SHELL_PACKAGE})
    return ok(len(ops))


def _resolver(table: str, module: str, what: str) -> Callable[[Ctx], Result]:
    def run(ctx: Ctx) -> Result:
        got = section_of(ctx, _service("package", lambda b: dumpsys.resolver(b, table)),
                         f"{table} Resolver Table")
        if isinstance(got, str):
            return skipped(got)
        where, comps = got
        if comps is None:
            return skipped(f"no {table} Resolver Table")
        for c in comps:
            rec = ctx.record(module, None, f"{c.action} {c.component}",
                             {"intent": c.action, "package_name": c.package,
                              table.lower(): c.component})  # MVT's receiver / activity
            ctx.check("app_id", c.package, rec=rec, path=where, what=what)
        return ok(len(comps))
    return run


def platform_compat(ctx: Ctx) -> Result:
    got = section_of(ctx, _service("platform_compat", dumpsys.platform_compat),
                     "'DUMP OF SERVICE platform_compat'")
    if isinstance(got, str):
        return skipped(got)
    where, names = got
    for name in names:
        rec = ctx.record("dumpsys_platform_compat", None, f"package {name}",
                         {"package_name": name})
        ctx.check("app_id", name, rec=rec, path=where,
                  what="package remembered by platform_compat (installed or removed)")
    return ok(len(names))


def dbinfo(ctx: Ctx) -> Result:
    got = section_of(ctx, _service("dbinfo", dumpsys.dbinfo), "'DUMP OF SERVICE dbinfo'")
    if isinstance(got, str):
        return skipped(got)
    where, ops = got
    for op in ops:
        rec = ctx.record("dumpsys_dbinfo", iso_any(op.time), op.operation,
                         {"isodate": op.time, "path": op.path, "pid": op.pid,
                          "action": op.operation, "sql": op.sql[:2000]})
        for part in dict.fromkeys(op.path.split("/")):
            if "." in part:
                ctx.check("app_id", part, rec=rec, path=where, what="database of package")
    return ok(len(ops))


def adb_state(ctx: Ctx) -> Result:
    got = section_of(ctx, _service("adb", dumpsys.adb_keys), "'DUMP OF SERVICE adb'")
    stored = adb_trust.keystore_file(ctx)  # the keystore file itself, in binary XML
    if stored is None and isinstance(got, str):
        return skipped(got)
    if stored is None and got[1] is None:
        return skipped("no debugging_manager in the adb dump")
    where, found = got if not isinstance(got, str) else ("", None)
    where = where if found is not None or stored is None else stored[0]
    both = adb_trust.merge(found or [], where, stored)
    keys = [k for k, _ in both]
    recs = [ctx.record("dumpsys_adb", None, "trusted adb key",
                       {"user": k.user, "fingerprint": k.fingerprint, "key": k.key,
                        "last_connected": k.last_connected, "source": src})
            for k, src in both]  # (no time: MVT puts adb keys on no timeline)
    if ctx.evidence.kind == "androidqf":
        adb_trust.judge(ctx, keys, recs, where)
    return ok(len(keys), f"{len(keys)} trusted adb key(s)")


def _batterystats(ctx: Ctx) -> tuple[str, str] | str:
    return section_of(ctx, _service("batterystats", lambda b: b),
                      "'DUMP OF SERVICE batterystats'")


def battery_history(ctx: Ctx) -> Result:
    got = _batterystats(ctx)
    if isinstance(got, str):
        return skipped(got)
    where, body = got
    seen: set[tuple[str, str]] = set()
    for e in dumpsys.battery_history(body):
        if (e.event, e.package) in seen:
            continue
        seen.add((e.event, e.package))
        rec = ctx.record("dumpsys_battery_history", None, f"{e.event} {e.package}",
                         {"time_elapsed": e.elapsed, "event": e.event, "uid": e.uid,
                          "package_name": e.package, "service": e.service})
        ctx.check("app_id", e.package, rec=rec, path=where,
                  what=f"package {e.event.replace('_', ' ')} in the battery history")
    return ok(len(seen))


def battery_daily(ctx: Ctx) -> Result:
    got = _batterystats(ctx)
    if isinstance(got, str):
        return skipped(got)
    where, body = got
    daily = dumpsys.battery_daily(body)
    for u in daily:
        detail: dict[str, Scalar] = {"from": u.period_start, "package_name": u.package,
                                     "vers": str(u.version),  # (MVT's names and form)
                                     "version_code": u.version, "action": u.action,
                                     "previous_version": u.previous}
        rec = ctx.record("dumpsys_battery_daily", iso_any(u.period_start),
                         f"{u.action} {u.package}", detail)
        ctx.check("app_id", u.package, rec=rec, path=where,
                  what=f"package {u.action} in the daily battery stats")
        if u.action == "uninstall":
            ctx.heuristic("android-app-uninstalled", "App removed",
                          f"the daily battery stats record {u.package} at version 0 (removed) "
                          f"in the period from {u.period_start}: spyware removes itself; "
                          "check that you know this app", rec=rec, path=where,
                          severity=Severity.MEDIUM, detail=detail)
        elif u.action == "downgrade":
            ctx.heuristic("android-app-downgraded", "App downgraded",
                          f"{u.package} went from version {u.previous} to {u.version} in the "
                          f"period from {u.period_start}: a downgrade can bring back a "
                          "vulnerable version", rec=rec, path=where, severity=Severity.MEDIUM,
                          detail=detail)
    return ok(len(daily))


def _settings_dump(text: str) -> list[settings_dump.Setting] | None:
    at = text.find("DUMP OF SERVICE settings:")
    body = section(text, "DUMP OF SERVICE settings:") if at >= 0 else None
    return None if body is None else settings_dump.settings(
        body, settings_dump.dumped_at(text[at:]))


def settings(ctx: Ctx) -> Result:
    """Every setting of every namespace and user in the settings provider's dump, with
    its last change; MVT's weakened protection settings flagged (``setting_check``)."""
    got = section_of(ctx, _settings_dump, "'DUMP OF SERVICE settings'")
    if isinstance(got, str):
        return skipped(got)
    where, items = got
    for s in items:
        ctx.evidence.budget.charge_elements()
        name, value = s.fields.get("name", ""), s.fields.get("value", "")
        last = s.history[-1] if s.history else None
        times = sorted(c.time for c in s.history if c.time)
        rec = ctx.record("dumpsys_settings", times[-1] if times else None,
                         f"setting {s.namespace}/{name}",
                         {"namespace": s.namespace, "user": s.user, **s.fields,
                          "history": len(s.history),
                          "last_change_time": last.time or last.raw_time if last else None,
                          "last_old_value": last.old_value if last else None,
                          "last_new_value": last.new_value if last else None,
                          "last_change_package": last.package if last else None})
        if name:
            setting_check(ctx, rec, s.namespace, name, value, where)
    return ok(len(items))


def _process_table(text: str) -> list[dumpsys.Proc] | None:
    body = dumpsys.processes_section(text)
    return None if body is None else dumpsys.processes(body)


def processes(ctx: Ctx) -> Result:
    got = section_of(ctx, _process_table, "PROCESSES AND THREADS")
    if isinstance(got, str):
        return skipped(got)
    where, procs = got
    for p in procs:
        rec = ctx.record("bugreport_processes", None, f"process {p.name}",
                         {**p.fields, "kernel_thread": p.kernel_thread})
        process_checks(ctx, rec, p.name, where)
    return ok(len(procs))


DUMPSYS_MODULES: tuple[FnModule[Capture], ...] = (
    FnModule("dumpsys_appops", "app-ops: risky permissions (REQUEST_INSTALL_PACKAGES), "
             "adb shell use, app ids", appops),
    FnModule("dumpsys_receivers", "broadcast receivers (SMS, calls...): app ids",
             _resolver("Receiver", "dumpsys_receivers", "broadcast receiver")),
    FnModule("dumpsys_activities", "activities of the package manager: app ids",
             _resolver("Activity", "dumpsys_activities", "activity")),
    FnModule("dumpsys_platform_compat", "apps remembered by platform_compat, removed ones "
             "included: app ids", platform_compat),
    FnModule("dumpsys_dbinfo", "databases recently used, by package: app ids", dbinfo),
    FnModule("dumpsys_adb", "trusted adb host keys (adb state, and a capture's own "
             "adb_temp_keys.xml in binary XML): in androidqf, computers other than the "
             "capture's", adb_state),
    FnModule("dumpsys_battery_history", "battery history: apps installed, removed, run "
             "(jobs, foreground, alarms)", battery_history),
    FnModule("dumpsys_battery_daily", "daily battery stats: app updates, removals "
             "(version 0) and downgrades", battery_daily),
    FnModule("dumpsys_settings", "settings provider dump (every namespace and user, change "
             "history): weakened protection settings", settings),
    FnModule("bugreport_processes", "bugreport process table: process names, app ids "
             "(kernel threads without brackets)", processes),
)
