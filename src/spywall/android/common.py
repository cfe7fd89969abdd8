"""What the Android modules share: reading artifacts from a capture, time conversion,
and the package heuristics (root managers, apps installed outside a store)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from spywall.android import qf, qf_pb
from spywall.android.capture import Capture
from spywall.android.dumpstate import decode
from spywall.device.base import CheckContext, Record, SchemaUnknown, iso_unix
from spywall.report import Severity

Ctx = CheckContext[Capture]
Result = tuple[str, int, str]
MAX_JSON = 256 * 1024 * 1024

# Package managers of root tools (public lists of root apps; presence is not spyware, but
# a rooted phone loses the platform's protections).
ROOT_PACKAGES = frozenset({
    "com.topjohnwu.magisk", "eu.chainfire.supersu", "com.koushikdutta.superuser",
    "com.noshufou.android.su", "com.thirdparty.superuser", "com.kingroot.kinguser",
    "com.kingo.root", "com.zhiqupk.root.global", "com.smedialink.oneclickroot",
    "com.alephzain.framaroot", "com.yellowes.su", "me.weishu.kernelsu",
    "com.devadvance.rootcloak", "de.robv.android.xposed.installer",
    # and the rest of MVT's list (root managers, root hiders, patchers)
    "com.noshufou.android.su.elite", "eu.chainfire.supersu.pro", "me.phh.superuser",
    "com.kingouser.com", "com.koushikdutta.rommanager", "com.koushikdutta.rommanager.license",
    "com.dimonvideo.luckypatcher", "com.chelpus.lackypatch", "com.ramdroid.appquarantine",
    "com.ramdroid.appquarantinepro", "com.devadvance.rootcloakplus", "com.saurik.substrate",
    "com.zachspong.temprootremovejb", "com.amphoras.hidemyroot",
    "com.amphoras.hidemyrootadfree", "com.formyhm.hiderootPremium", "com.formyhm.hideroot",
})
# Packages whose being disabled weakens the phone (MVT's lists): manufacturers' security
# agents, and the system update (OTA) clients.
SECURITY_PACKAGES = frozenset({
    "com.policydm", "com.samsung.android.app.omcagent", "com.samsung.android.securitylogagent",
    "com.sec.android.soagent",
})
UPDATE_PACKAGES = frozenset({
    "com.android.updater", "com.google.android.gms", "com.huawei.android.hwouc",
    "com.lge.lgdmsclient", "com.motorola.ccc.ota", "com.oneplus.opbackup", "com.oppo.ota",
    "com.transsion.systemupdate", "com.wssyncmldm",
})
# Installers that mean "not from a store": the package installer (a downloaded APK),
# the adb shell, or a browser.
SIDELOAD_INSTALLERS = frozenset({
    "com.google.android.packageinstaller", "com.android.packageinstaller",
    "com.android.shell", "com.android.chrome", "org.mozilla.firefox",
    "com.sec.android.app.sbrowser", "com.opera.browser",
})
# Installers of app stores other than Google Play: MVT's two (Aurora, F-Droid), and
# F-Droid's privileged extension and clients of the F-Droid repositories, and the
# clients of APK sites. An install from one is said at information level, as MVT does.
THIRD_PARTY_STORE_INSTALLERS = frozenset({
    "com.aurora.store", "org.fdroid.fdroid", "org.fdroid.basic",
    "org.fdroid.fdroid.privileged", "com.looker.droidify", "com.machiav3lli.fdroid",
    "cm.aptoide.pt", "com.apkpure.aegon", "com.uptodown",
})


def skipped(why: str) -> Result:
    return ("skipped", 0, why)


def ok(n: int, message: str = "") -> Result:
    return ("ok", n, message)


def read_json(cap: Capture, name: str) -> Any | None:
    data = cap.read(name, MAX_JSON)
    return None if data is None else qf.load_json(data, name)


def read_qf(cap: Capture, name: str) -> tuple[str, Any] | None:
    """(member read, document) of an androidqf JSON artifact, or of its protobuf twin
    (``packages.pb`` for ``packages.json``...: ``qf_pb``) in the JSON's shape; None when
    the capture has neither."""
    doc = read_json(cap, name)
    if doc is not None:
        return name, doc
    twin, reader = qf_pb.TWINS[name]
    data = cap.read(twin, MAX_JSON)
    return None if data is None else (twin, reader(data, twin))


def read_manifest(cap: Capture, name: str, key: str) -> dict[str, Any] | None:
    """An androidqf manifest (``schema_version`` 1 with a ``key`` list), None when the
    capture is not androidqf or has none; ``SchemaUnknown`` for another shape."""
    if cap.kind != "androidqf" or not cap.has(name):
        return None
    doc = read_json(cap, name)
    if not isinstance(doc, dict) or doc.get("schema_version") != 1 or not isinstance(
            doc.get(key), list):
        raise SchemaUnknown(f"{name}: not schema_version 1 with a {key} list")
    return doc


def read_text(cap: Capture, name: str) -> str | None:
    data = cap.read(name)
    return None if data is None else decode(data)


_LOCAL_TS = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,32}))?\s*"
    r"(Z|[+-]\d{2}:?\d{2})?")


def iso_any(value: object) -> str | None:
    """ISO-8601 of unix seconds/milliseconds or a ``YYYY-MM-DD hh:mm:ss[.f][+zzzz]`` text
    (UTC when it has an offset; as written when it has none). A fraction of a second is
    kept to the microsecond (cut, not rounded, as MVT's parser keeps it)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        v = float(value)
        return iso_unix(v / 1000 if v > 1e11 else v)
    if not isinstance(value, str):
        return None
    m = _LOCAL_TS.match(value.strip())
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                      int(frac[:6].ljust(6, "0")) if frac else 0)
    except ValueError:
        return None
    if tz is None:
        return dt.isoformat()
    if tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        minutes = sign * (int(tz[1:3]) * 60 + int(tz[-2:]))
        dt -= timedelta(minutes=minutes)
    return dt.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def mvt_form(ts: str) -> str:
    """A time of ``iso_any`` / ``iso_unix`` (``2024-01-15T10:00:02``, ``...02[.ffffff]Z``)
    as MVT writes one in a record's fields: ``2024-01-15 10:00:02.000000`` (the result
    folder's own helper, ``device.output.mvt_time``, is loaded only when a result folder
    is written)."""
    day, _, clock = ts.removesuffix("Z").partition("T")
    whole, _, frac = clock.partition(".")
    return f"{day} {whole}.{frac.ljust(6, '0')[:6]}"


# MVT's "more than six months": 6 x 31 days, counted from the patch day's midnight to
# the moment of the check, so a patch 186 calendar days old is already past it.
PATCH_MAX_AGE_DAYS = 6 * 31
_PATCH = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def patch_check(ctx: Ctx, props: dict[str, str], rec: Record | None, where: str,
                today: date | None = None) -> None:
    """Heuristic (once per capture): a security patch level older than six months
    (medium, as MVT)."""
    cap = ctx.evidence
    m = _PATCH.fullmatch(props.get("ro.build.version.security_patch", "").strip())
    if m is None or cap.cache.get("patch_checked"):
        return
    cap.cache["patch_checked"] = True
    try:
        level = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return
    age = ((today or datetime.now(UTC).date()) - level).days
    if age >= PATCH_MAX_AGE_DAYS:
        ctx.heuristic("android-outdated-patch", "Security patches out of date",
                      f"security patch level {level.isoformat()} is {age} days old: known "
                      "exploits may work on this phone; install the system updates",
                      rec=rec, path=where, severity=Severity.MEDIUM,
                      detail={"security_patch": level.isoformat(), "age_days": age})


def package_checks(ctx: Ctx, rec: Record, name: str, installer: str | None, system: bool,
                   where: str) -> None:
    """Indicator and heuristic checks of one installed package."""
    ctx.check("app_id", name, rec=rec, path=where, what="installed package")
    if name in ROOT_PACKAGES:
        ctx.heuristic("android-root-app", "Root management app installed",
                      f"{name} is a rooting tool: the phone is (or was) rooted, which "
                      "disables Android's sandbox protections", rec=rec, path=where,
                      severity=Severity.MEDIUM, detail={"package": name})
    # (MVT: an app with no installer only when it is not a system app; one installed by
    # the package installer whatever its flag: an updated system app keeps it)
    if (installer is None and not system) or installer in SIDELOAD_INSTALLERS:
        how = f"by {installer}" if installer else "with no installer recorded"
        ctx.heuristic("android-sideloaded-app", "App installed outside an app store",
                      f"{name} was installed {how}, not from an app store; check that "
                      "you installed it yourself", rec=rec, path=where,
                      severity=Severity.MEDIUM, detail={"package": name, "installer": installer})
    elif installer in THIRD_PARTY_STORE_INSTALLERS:
        ctx.heuristic("android-third-party-store-app", "App installed from a third-party store",
                      f"{name} was installed by {installer}, an app store other than Google "
                      "Play (information, as MVT)", rec=rec, path=where,
                      severity=Severity.INFO, detail={"package": name, "installer": installer})


def disabled_check(ctx: Ctx, rec: Record, name: str, where: str) -> None:
    """Heuristic: a security agent or system update client disabled (medium, as MVT)."""
    what = ("security agent" if name in SECURITY_PACKAGES else
            "system update client" if name in UPDATE_PACKAGES else None)
    if what is not None:
        ctx.heuristic("android-protection-app-disabled", "Security or update app disabled",
                      f"the {what} {name} is disabled: the phone may miss protections or "
                      "updates", rec=rec, path=where, severity=Severity.MEDIUM,
                      detail={"package": name})


# Settings whose value, when not the safe one, weakens protections against malicious
# apps: key -> (safe value, what another value means). MVT's list, plus unknown sources.
# As MVT does, the key is looked up in every namespace.
DANGEROUS_SETTINGS: dict[str, tuple[str, str]] = {
    "verifier_verify_adb_installs": ("1", "apps installed over USB (adb) are not verified"),
    "package_verifier_enable": ("1", "Google Play Protect app verification is disabled"),
    "package_verifier_state": ("1", "APK package verification is disabled"),
    "package_verifier_user_consent": ("1", "Google Play Protect scanning is not consented"),
    "upload_apk_enable": ("1", "unknown apps are not sent to Google for scanning"),
    "adb_install_need_confirm": ("1", "apps installed over adb need no confirmation"),
    "send_security_reports": ("1", "security reports are not shared"),
    "samsung_errorlog_agree": ("1", "crash logs are not shared with the manufacturer"),
    "send_action_app_error": ("1", "app crash reports are disabled"),
    "accessibility_enabled": ("0", "accessibility services are enabled (they can read "
                                   "and control the screen)"),
    "install_non_market_apps": ("0", "installing apps from unknown sources is allowed"),
}


def setting_check(ctx: Ctx, rec: Record, namespace: str, key: str, value: str,
                  where: str) -> None:
    """Heuristic: a setting of ``DANGEROUS_SETTINGS`` (any namespace) not at its safe
    value."""
    rule = DANGEROUS_SETTINGS.get(key)
    if rule is None or value == rule[0]:
        return
    ctx.heuristic(f"android-setting-{key.replace('_', '-')}", "Protection setting weakened",
                  f"{namespace} setting {key}={value}: {rule[1]}", rec=rec, path=where,
                  severity=Severity.MEDIUM,
                  detail={"setting": key, "value": value, "safe_value": rule[0]})


def property_checks(ctx: Ctx, module: str, props: dict[str, str], where: str) -> int:
    """Record and match every system property; check the patch level once."""
    patch_rec: Record | None = None
    for key, value in props.items():
        rec = ctx.record(module, None, f"property {key}", {"name": key, "value": value})
        ctx.check("android_property", key, rec=rec, path=where, what="system property")
        if key == "ro.build.version.security_patch":
            patch_rec = rec
    patch_check(ctx, props, patch_rec, where)
    return len(props)


# Stock Android daemons whose names are also published as (iOS) spyware process names:
# not matched as processes on Android, as MVT does not (Pegasus's ``gatekeeperd``).
ANDROID_DAEMONS = frozenset({"gatekeeperd"})


def process_checks(ctx: Ctx, rec: Record, name: str, where: str) -> None:
    """A process name as a process (but for ``ANDROID_DAEMONS``), as an app id
    (``pkg:service`` -> ``pkg``: an app's processes carry its package name) and, for an
    absolute path, as a file path."""
    base = name.rpartition("/")[2]
    if base not in ANDROID_DAEMONS:
        ctx.check("process", base, rec=rec, path=where, what="running process")
    ctx.check("app_id", name.partition(":")[0], rec=rec, path=where,
              what="process of package")
    if name.startswith("/"):
        ctx.check("file_path", name, rec=rec, path=where, what="process executable")
