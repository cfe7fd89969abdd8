"""Installed apps and where they came from (MVT's ``applications``).

- A backup's Info.plist ``Applications``: bundle id -> {``iTunesMetadata``: a plist (bytes)
  with ``softwareVersionBundleId``, ``sourceApp``, ``itemName``, ``artistName``,
  ``bundleShortVersionString`` and ``com.apple.iTunesStore.downloadInfo.purchaseDate``}.
- A filesystem dump: ``private/var/containers/Bundle/Application/<UUID>/iTunesMetadata.plist``.

Each app id is matched as an app id and a process name. Heuristic
``ios-app-not-from-app-store`` (medium): an app whose ``sourceApp`` is neither the App
Store nor device management (an enterprise or developer install, the way spyware is
sideloaded onto an iPhone). ``ios-app-no-bundle-id`` (medium, as MVT): store metadata
without ``softwareVersionBundleId``, which the App Store always writes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from spywall.device.base import FnModule, iso_unix, load_plist
from spywall.errors import FormatError, LimitExceeded
from spywall.ios.common import SKIPPED, Ctx, Result, ok, plist
from spywall.report import Scalar, Severity

KNOWN_INSTALLERS = frozenset({"com.apple.AppStore", "com.apple.AppStore.ProductPageExtension",
                              "com.apple.dmd", "dmd"})
MAX_APPS = 20_000
MAX_METADATA = 4 * 1024 * 1024
_BUNDLE_META = re.compile(r"private/var/containers/Bundle/Application/[^/]{1,64}/"
                          r"iTunesMetadata\.plist")


def _purchased(meta: dict[str, object]) -> str | None:
    info = meta.get("com.apple.iTunesStore.downloadInfo")
    when = info.get("purchaseDate") if isinstance(info, dict) else None
    if not isinstance(when, str):
        return None
    try:
        dt = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return iso_unix(int(dt.timestamp()))


def _check(ctx: Ctx, name: str, meta: dict[str, object], path: str) -> None:
    bundle = meta.get("softwareVersionBundleId")
    bundle_id = bundle if isinstance(bundle, str) else ""
    source = meta.get("sourceApp")
    data: dict[str, Scalar] = {
        "name": name, "softwareVersionBundleId": bundle_id,
        "itemName": str(meta.get("itemName") or ""), "artistName": str(
            meta.get("artistName") or ""),
        "bundleShortVersionString": str(meta.get("bundleShortVersionString") or ""),
        "sourceApp": source if isinstance(source, str) else None}
    rec = ctx.record("applications", _purchased(meta), "app_installed", data)
    app = bundle_id or name
    ctx.check("app_id", app, rec=rec, path=path, what="installed app")
    ctx.check("process", app, rec=rec, path=path, what="installed app")
    if meta and not bundle_id:
        ctx.heuristic(
            "ios-app-no-bundle-id", "App with no bundle id in its store metadata",
            f"{name} has iTunesMetadata without softwareVersionBundleId: the App Store "
            "always writes it, so the metadata was made by something else (medium, as "
            "MVT)", rec=rec, path=path, severity=Severity.MEDIUM, detail={"app": name})
    elif isinstance(source, str) and source not in KNOWN_INSTALLERS:
        ctx.heuristic(
            "ios-app-not-from-app-store", "App not installed from the App Store",
            f"{app} was installed by {source!r}, neither the App Store nor device "
            "management: an enterprise or developer install, the way spyware is sideloaded "
            "onto an iPhone. Check that you know this app", rec=rec, path=path,
            severity=Severity.MEDIUM, detail={"app": app, "source_app": source})


def _metadata(blob: object) -> dict[str, object]:
    if not isinstance(blob, bytes):
        return {}
    try:
        got = load_plist(blob, MAX_METADATA)
    except (FormatError, LimitExceeded):
        return {}
    return {str(k): v for k, v in got.items()} if isinstance(got, dict) else {}


def _applications(ctx: Ctx) -> Result:
    ev = ctx.evidence
    apps = ev.info.get("Applications")
    if isinstance(apps, dict) and apps:
        path = str(ev.root / "Info.plist")
        for name, entry in list(apps.items())[:MAX_APPS]:
            blob = entry.get("iTunesMetadata") if isinstance(entry, dict) else None
            _check(ctx, str(name), _metadata(blob), path)
        return ok(min(len(apps), MAX_APPS))
    metas = [e for e in ev.entries if e.disk and _BUNDLE_META.fullmatch(e.disk)][:MAX_APPS]
    if not metas:
        return SKIPPED
    for e in metas:
        got = plist(ctx, e)
        meta = {str(k): v for k, v in got.items()} if isinstance(got, dict) else {}
        _check(ctx, str(meta.get("softwareVersionBundleId") or e.disk.split("/")[-2]),
               meta, ev.display(e))
    return ok(len(metas))


MODULES = (
    FnModule("applications", "installed apps (Info.plist Applications, iTunesMetadata): app "
             "ids, apps not from the App Store", _applications),
)
