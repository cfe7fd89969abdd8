"""What the backup holds: every Manifest.db path, configuration profiles, the device and
its installed apps (Info.plist), and the Triangulation event window over file times."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from spywall.device.base import CheckContext, FnModule, Record, iso_datetime, iso_unix
from spywall.errors import FormatError
from spywall.ios import releases, triangulation
from spywall.ios.common import SKIPPED, Ctx, Result, ok, plist
from spywall.report import Severity

PROFILES_DOMAIN = "SysSharedContainerDomain-systemgroup.com.apple.configurationprofiles"
PROFILES_DIR = "Library/ConfigurationProfiles/"
EVENTS_PLIST = PROFILES_DIR + "MCProfileEvents.plist"
# Payload types of a profile that MVT flags (medium): notification settings, with which a
# profile can silence an app.
HIDING_PAYLOADS = frozenset({"com.apple.notificationsettings"})
# WebKit names the storage of a site by its origin: https_<host>_<port> (local storage,
# IndexedDB, SafariViewService data), so a folder or file name tells a visited domain.
WEBKIT_ORIGIN = re.compile(r"(?:^|/)https?_([a-z0-9][a-z0-9.-]{0,252})_\d+", re.IGNORECASE)
# MVT's reading of a backup path: every part between underscores that starts with a
# host name (its text up to a '/', ':' or the next '_') names a site, WebKit's origins
# (https_<host>_<port>) and any other. A host here has a dot and a last label that starts
# with a letter, as every top-level domain does; matched on '_' + the lower-cased path
# (the first part too). findall over a pattern that starts with a literal: faster than
# WEBKIT_ORIGIN's finditer (CPU time over 200,000 paths, 0.15-0.22 s against 0.30-0.41 s).
PATH_HOST = re.compile(r"_([a-z0-9](?:[a-z0-9-]{0,62}\.)+[a-z][a-z0-9-]{0,62})(?=$|[/_:])")
DEVICE_KEYS = {"Product Version": "ios_version", "Build Version": "build",
               "Product Type": "product_type", "Device Name": "device_name",
               "Display Name": "display_name", "Serial Number": "serial_number",
               "Unique Identifier": "udid", "IMEI": "imei", "Phone Number": "phone_number",
               "Last Backup Date": "last_backup"}


def _manifest(ctx: Ctx) -> Result:
    b = ctx.evidence
    root = str(b.root)
    for e in b.entries:
        name = posixpath.basename(e.relative_path)
        full = "/" + e.relative_path
        origins: list[str] = PATH_HOST.findall("_" + e.relative_path.lower())
        if not (ctx.timeline or ctx.any_hit("file_name", (name,))
                or ctx.any_hit("file_path", (full,)) or ctx.any_hit("domain", origins)):
            continue
        try:
            meta = e.meta()
        except FormatError:
            meta = None
        when = iso_unix(meta.last_modified) if meta else None
        rec = ctx.record("manifest", when, "file_modified" if e.is_file else "entry",
                         {"domain": e.domain, "relative_path": e.relative_path,
                          "file_id": e.file_id, "size": meta.size if meta else None})
        path = f"{root}!/{e.domain}/{e.relative_path}"
        # (high, as MVT's manifest module marks its matches: a name or path alone)
        ctx.check("file_name", name, rec=rec, path=path, what="backup file name",
                  severity=Severity.HIGH)
        ctx.check("file_path", full, rec=rec, path=path, what="backup path",
                  severity=Severity.HIGH)
        for origin in origins:
            ctx.check("domain", origin, rec=rec, path=path, what="site named in a backup path",
                      severity=Severity.HIGH)
    return ok(len(b.entries))


def _profiles(ctx: Ctx) -> Result:
    b = ctx.evidence
    entries = [e for e in b.entries if e.is_file and e.domain == PROFILES_DOMAIN
               and e.relative_path.startswith(PROFILES_DIR + "profile-")]
    if not entries:
        return SKIPPED
    for e in entries:
        path = b.display(e)
        p = plist(ctx, e)
        d = p if isinstance(p, dict) else {}
        uuid = str(d.get("PayloadUUID") or "")
        rec = ctx.record("configuration_profiles", iso_datetime(d.get("InstallDate")),
                         "profile_installed",
                         {"uuid": uuid, "identifier": str(d.get("PayloadIdentifier") or ""),
                          "name": str(d.get("PayloadDisplayName") or "")})
        ctx.check("config_profile", uuid, rec=rec, path=path, what="configuration profile")
        content = d.get("PayloadContent")
        first = content[0] if isinstance(content, list) and content else None
        kind = first.get("PayloadType") if isinstance(first, dict) else None
        if kind in HIDING_PAYLOADS:
            ctx.heuristic("ios-profile-notification-settings",
                          "Configuration profile that manages notifications",
                          f"configuration profile {uuid or e.relative_path} "
                          f"({rec.data['name'] or 'no name'}) sets notification settings "
                          f"({kind}): a profile can hide an app's notifications (medium, as "
                          "MVT)", rec=rec, path=path, severity=Severity.MEDIUM,
                          detail={"payload_type": str(kind)})
    return ok(len(entries))


def _profile_events(ctx: Ctx) -> Result:
    """MCProfileEvents.plist: ``ProfileEvents``, a list of {profile identifier: {operation,
    process, timestamp}}: which process installed or removed which profile, when."""
    b = ctx.evidence
    events = b.get(PROFILES_DOMAIN, EVENTS_PLIST)
    if events is None or not events.is_file:
        return SKIPPED
    path = b.display(events)
    p = plist(ctx, events)
    items = p.get("ProfileEvents") if isinstance(p, dict) else None
    n = 0
    for item in items if isinstance(items, list) else []:
        for ident, ev in item.items() if isinstance(item, dict) else []:
            n += 1
            d = ev if isinstance(ev, dict) else {}
            proc = str(d.get("process") or "")
            rec = ctx.record("profile_events", iso_datetime(d.get("timestamp")),
                             f"profile_{d.get('operation') or 'event'}",
                             {"profile_id": str(ident), "operation": str(d.get("operation")
                                                                          or ""),
                              "process": proc})
            ctx.check("config_profile", str(ident), rec=rec, path=path,
                      what="configuration profile event")
            ctx.check("process", posixpath.basename(proc), rec=rec, path=path,
                      what="process that installed a profile")
    return ok(n)


def _info(ctx: Ctx) -> Result:
    b = ctx.evidence
    if not b.info:
        return SKIPPED
    source = getattr(b, "info_source", "Info.plist")  # a dump: SystemVersion.plist
    path = str(b.root / str(source))
    rec = ctx.record("backup_info", iso_datetime(b.info.get("Last Backup Date")), "backup",
                     {DEVICE_KEYS[k]: str(v) for k, v in b.info.items() if k in DEVICE_KEYS})
    apps = b.info.get("Installed Applications")
    app_list = [a for a in apps if isinstance(a, str)] if isinstance(apps, list) else []
    for app in app_list:
        ctx.check("app_id", app, rec=rec, path=path, what="installed app")
    build = str(b.info.get("Build Version") or "")
    version, known = outdated(ctx, str(b.info.get("Product Version") or ""), build, rec, path)
    shown = f"iOS {version}" if version else f"build {build or 'unknown'}"
    return ok(1 + len(app_list), f"{shown}; newest release known: {known.summary()}")


def outdated(ctx: CheckContext[Any], version: str, build: str, rec: Record | None,
             path: str) -> tuple[str, releases.Releases]:
    """``ios-outdated`` when ``version`` (or, when it is empty, the version ``build``
    names: MVT's check takes either) is older than the newest release spywall knows;
    the version as worked out, and the release list used."""
    known = releases.for_sources(ctx.index.sources)
    latest = known.latest()
    version = version or known.builds().get(build.upper(), "")
    parsed = releases.version_tuple(version)
    if parsed and latest is not None and parsed < releases.version_tuple(latest.version):
        when = f", released {latest.released}" if latest.released else ""
        ctx.heuristic(
            "ios-outdated", "Outdated iOS version",
            f"iOS {version} is older than iOS {latest.version}{when}, the newest release "
            f"in spywall's list of releases as of {known.updated or 'unknown'} (`spywall "
            "iocs update` refreshes it): known exploited vulnerabilities may be unpatched. "
            "Update the device, and consider Lockdown Mode if you may be targeted",
            rec=rec, path=path, severity=Severity.LOW,
            detail={"ios_version": version, "latest_ios": latest.version,
                    "releases_as_of": known.updated})
    return version, known


MANIFEST = FnModule("manifest", "every backed-up path: file names, paths, WebKit origins",
                    _manifest)
PROFILES = FnModule("configuration_profiles", "installed configuration profiles",
                    _profiles)
PROFILE_EVENTS = FnModule("profile_events", "configuration profile installs and removals, "
                          "by process (MCProfileEvents.plist)", _profile_events)
BACKUP_INFO = FnModule("backup_info", "device, iOS version and installed apps (Info.plist)",
                       _info)
WINDOW = FnModule("triangulation_window", "Operation Triangulation event-window heuristic",
                  triangulation.event_window)


def device_info(info: dict[str, object]) -> dict[str, str | int | float | bool | None]:
    """The report's ``device`` fields from Info.plist."""
    out: dict[str, str | int | float | bool | None] = {"platform": "ios"}
    for key, name in DEVICE_KEYS.items():
        v = info.get(key)
        if isinstance(v, str | int | float | bool):
            out[name] = v
        elif v is not None:
            out[name] = iso_datetime(v) or str(v)[:200]
    return out
