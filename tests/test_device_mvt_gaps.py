"""Heuristics MVT 2026.x raises that spywall did not (the audit of issue 12), each at
MVT's level, read from its modules: an app installed by a third-party store (androidqf
packages, information: ``THIRD_PARTY_STORE_INSTALLERS``), a calendar event shaped as
Quadream's exploit invitation (high), an IDStatusCache lookup key holding two NUL
characters (high), a configuration profile whose first payload manages notifications
(medium)."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import plistlib
import sqlite3
import subprocess
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from spywall.android.check import MODULES, check_capture
from spywall.cli import exit_status, main
from spywall.iocs import IocIndex
from spywall.ios.check import DUMP_MODULES, check_backup, check_dump
from spywall.ios.check import MODULES as MODULES_IOS
from spywall.report import Finding, Severity
from spywall.rulebook import rulebook
from spywall.samples import android as gen
from spywall.samples import android_more as more
from spywall.samples.ios import PROFILES, T0, BackupSpec, apple, file_id, mbfile, write_backup
from spywall.samples.ios_fs import DumpSpec, write_dump

MVT_IOS = Path("/work/main/.venv-bench/bin/mvt-ios")
MVT_ANDROID = MVT_IOS.with_name("mvt-android")


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def _package(name: str, installer: str | None, system: bool = False) -> dict[str, object]:
    # as androidqf writes a package: "null" (a string) when Android recorded no installer
    return {"name": name, "installer": installer or "null", "uid": 10200, "disabled": False,
            "system": system, "third_party": not system, "files": []}


def _check_packages(tmp: Path, index: IocIndex, pkgs: list[dict[str, object]]
                    ) -> list[Finding]:
    files = gen.androidqf_files(False, with_bugreport=False)
    files["packages.json"] = json.dumps(pkgs, indent=1).encode()
    mods = [m for m in MODULES if m.name == "packages"]
    out = check_capture(gen.write_tree(files, tmp / "qf"), index, modules=mods)
    return out.report.all_findings()


# installer -> the rule MVT's androidqf packages module raises for a non-system app
INSTALLS = {
    "org.fdroid.fdroid": "android-third-party-store-app",
    "com.aurora.store": "android-third-party-store-app",
    "com.google.android.packageinstaller": "android-sideloaded-app",
    None: "android-sideloaded-app",
    "com.android.vending": None,
}


def test_third_party_store_is_info(tmp_path: Path, index: IocIndex) -> None:
    pkgs = [_package(f"org.example.app{i}", inst) for i, inst in enumerate(INSTALLS)]
    # a system app that a store updated is still from that store, and one updated from
    # a downloaded APK is still sideloaded (MVT looks at the system flag only for an app
    # with no installer)
    pkgs.append(_package("org.example.sys", "org.fdroid.fdroid", system=True))
    pkgs.append(_package("org.example.sysapk", "com.android.packageinstaller", system=True))
    pkgs.append(_package("org.example.sysnull", None, system=True))
    found = _check_packages(tmp_path, index, pkgs)
    by_pkg = {(str(f.detail.get("package")), f.rule): f for f in found}
    for i, (installer, rule) in enumerate(INSTALLS.items()):
        rules = {r for p, r in by_pkg if p == f"org.example.app{i}"}
        assert rules == ({rule} if rule else set()), installer
    assert ("org.example.sys", "android-third-party-store-app") in by_pkg
    assert ("org.example.sysapk", "android-sideloaded-app") in by_pkg
    assert not [r for p, r in by_pkg if p == "org.example.sysnull"]
    infos = [f for f in found if f.rule == "android-third-party-store-app"]
    assert {f.severity for f in infos} == {Severity.INFO}
    assert {str(f.detail["installer"]) for f in infos} == {"org.fdroid.fdroid",
                                                           "com.aurora.store"}
    assert rulebook()["android-third-party-store-app"].severity is Severity.INFO


@pytest.mark.skipif(not MVT_ANDROID.exists(), reason="MVT's bench environment is not installed")
def test_package_installers_against_mvt(tmp_path: Path, index: IocIndex) -> None:
    """The oracle: MVT's androidqf packages module over the same packages.json raises the
    same package alerts at the same levels."""
    pkgs = [_package(f"org.example.app{i}", inst) for i, inst in enumerate(INSTALLS)]
    pkgs += [_package("org.example.sys", "org.fdroid.fdroid", system=True),
             _package("org.example.sysapk", "com.android.packageinstaller", system=True),
             _package("org.example.sysnull", None, system=True)]
    found = _check_packages(tmp_path, index, pkgs)
    level = {Severity.MEDIUM: "MEDIUM", Severity.INFO: "INFORMATIONAL"}
    ours = {(level[f.severity], str(f.detail["package"])) for f in found}
    stix = _stix(tmp_path / "none.stix2", ["[domain-name:value = 'nothing.invalid']"])
    res = tmp_path / "mvt"
    alerts = _mvt("check-androidqf", tmp_path / "qf", stix, res, "AQFPackages")
    assert {(a["level"], a["event"]["name"]) for a in alerts} == ours


def test_info_alone_is_not_found(tmp_path: Path, index: IocIndex) -> None:
    """A phone whose only finding is an F-Droid app exits 0 (said, not "found"); with a
    sideloaded app too it exits 1."""
    only = _check_packages(tmp_path / "a", index, [_package("org.example.a", "org.fdroid.fdroid")])
    assert [f.rule for f in only] == ["android-third-party-store-app"]
    files = gen.androidqf_files(False, with_bugreport=False)
    files["packages.json"] = json.dumps([_package("org.example.a", "org.fdroid.fdroid")]).encode()
    mods = [m for m in MODULES if m.name == "packages"]
    report = check_capture(gen.write_tree(files, tmp_path / "b"), index, modules=mods).report
    assert exit_status(report.finalize()) == 0
    files["packages.json"] = json.dumps([_package("org.example.a", "org.fdroid.fdroid"),
                                         _package("org.example.b", None)]).encode()
    report = check_capture(gen.write_tree(files, tmp_path / "c"), index, modules=mods).report
    assert exit_status(report.finalize()) == 1


# ---- iOS: checked against MVT itself when its bench environment is there ----------------
# spywall rule -> (MVT module writing the same alert, MVT's level)
IOS_RULES = {
    "ios-quadream-calendar-event": ("calendar", "HIGH"),
    "ios-idstatuscache-nul": ("id_status_cache", "HIGH"),
    "ios-profile-notification-settings": ("configuration_profiles", "MEDIUM"),
}
NOTIFY_PROFILE = "5E1B6B9A-0D3C-4C27-9A7E-2F4A7B1C9D01"


def _stored(root: Path, domain: str, rel: str) -> Path:
    fid = file_id(domain, rel)
    return root / fid[:2] / fid


def _add_file(root: Path, domain: str, rel: str, data: bytes) -> None:
    """A file added to a backup as iOS stores it: Manifest.db row with its MBFile, the
    bytes under the file id."""
    target = _stored(root, domain, rel)
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(data)
    with sqlite3.connect(root / "Manifest.db") as c:
        c.execute("INSERT INTO Files VALUES (?,?,?,1,?)",
                  (file_id(domain, rel), domain, rel, mbfile(rel, len(data), T0, 0o100644)))
    c.close()


def _profile(uuid: str, name: str, payload_type: str) -> bytes:
    # the profile plist profiled stores (binary), as MDM or a .mobileconfig installs it
    return plistlib.dumps({
        "PayloadUUID": uuid, "PayloadIdentifier": f"org.example.{name}",
        "PayloadDisplayName": name, "PayloadType": "Configuration", "PayloadVersion": 1,
        "PayloadContent": [{"PayloadType": payload_type, "PayloadUUID": uuid + "-1",
                            "PayloadIdentifier": f"org.example.{name}.p",
                            "PayloadVersion": 1}],
        "InstallDate": datetime(2023, 6, 1, 8, 0, 0)}, fmt=plistlib.FMT_BINARY)


@pytest.fixture(scope="module")
def gap_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean backup with the awkward rows these heuristics look at: a Quadream-shaped
    event beside a 'Meeting' with another description and an event with no title (NULL
    columns, as Calendar writes for a birthday or a declined invitation); IDStatusCache
    lookups whose address holds two NULs and one NUL (binary plist, where NUL is
    allowed); a notification-settings profile and a web clip one."""
    root = write_backup(tmp_path_factory.mktemp("gaps") / "b", BackupSpec(planted=False))
    db = _stored(root, "HomeDomain", "Library/Calendar/Calendar.sqlitedb")
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO CalendarItem (ROWID, summary, description, start_date, "
                      "end_date, organizer_id, UUID) VALUES (?,?,?,?,?,1,?)", [
                          (2, "Meeting", "Notes", apple(T0 + 60), apple(T0 + 120), "Q-1"),
                          (3, "Meeting", "Agenda", apple(T0), apple(T0 + 60), "M-1"),
                          (4, None, None, None, None, "N-1")])
    c.close()
    ids = _stored(root, "HomeDomain",
                  "Library/Preferences/com.apple.identityservices.idstatuscache.plist")
    ids.write_bytes(plistlib.dumps({"com.apple.madrid": {
        "mailto:a\x00\x00b@example.com": {"LookupDate": apple(T0), "IDStatus": 1},
        "mailto:c\x00d@example.com": {"LookupDate": apple(T0), "IDStatus": 1},
        "mailto:friend@example.com": {"LookupDate": apple(T0), "IDStatus": 1}}},
        fmt=plistlib.FMT_BINARY))
    _add_file(root, PROFILES, "Library/ConfigurationProfiles/profile-5e1b.stub",
              _profile(NOTIFY_PROFILE, "Focus", "com.apple.notificationsettings"))
    _add_file(root, PROFILES, "Library/ConfigurationProfiles/profile-77aa.stub",
              _profile("0B7E8C2D-6A51-4F0E-8D3B-1C2A3B4C5D6E", "Intranet",
                       "com.apple.webClip.managed"))
    return root


def _stix(path: Path, patterns: list[str]) -> Path:
    """A STIX 2.1 bundle of one malware and an indicator per pattern, as the published
    indicator files are written (both tools read it)."""
    malware = f"malware--{uuid.uuid4()}"
    stamp = {"spec_version": "2.1", "created": "2023-01-01T00:00:00.000Z",
             "modified": "2023-01-01T00:00:00.000Z"}
    objects: list[dict[str, object]] = [{"type": "malware", "id": malware,
                                         "name": "TestSpy", "is_family": False, **stamp}]
    for pattern in patterns:
        ind = f"indicator--{uuid.uuid4()}"
        objects += [{"type": "indicator", "id": ind, "pattern": pattern,
                     "pattern_type": "stix", "valid_from": "2023-01-01T00:00:00Z", **stamp},
                    {"type": "relationship", "id": f"relationship--{uuid.uuid4()}",
                     "relationship_type": "indicates", "source_ref": ind,
                     "target_ref": malware, **stamp}]
    path.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                "objects": objects}))
    return path


def _mvt(command: str, target: Path, stix: Path, out: Path,
         module: str | None = None) -> list[dict[str, Any]]:
    """MVT's alerts.json of ``mvt-ios`` / ``mvt-android`` ``command`` over ``target`` (one
    module, or all); [] when MVT raised nothing (it then writes no alerts.json)."""
    tool = MVT_ANDROID if command in ("check-androidqf", "check-bugreport") else MVT_IOS
    subprocess.run([str(tool), command, "-i", str(stix), *(["-m", module] if module else []),
                    "--output", str(out), str(target)], check=True, capture_output=True,
                   timeout=300)
    alerts = out / "alerts.json"
    return json.loads(alerts.read_text()) if alerts.exists() else []


def _mvt_alerts(backup: Path, stix: Path, module: str, out: Path) -> list[dict[str, Any]]:
    return _mvt("check-backup", backup, stix, out, module)


def _levels(found: list[Finding]) -> Counter[tuple[str, str]]:
    return Counter((IOS_RULES[f.rule][0], f.severity.value.upper())
                   for f in found if f.rule in IOS_RULES)


def test_ios_heuristics_at_mvts_levels(gap_backup: Path, index: IocIndex) -> None:
    out = check_backup(gap_backup, index, index.sources)
    found = [f for f in out.report.all_findings() if f.rule in IOS_RULES]
    assert _levels(found) == Counter({("calendar", "HIGH"): 1, ("id_status_cache", "HIGH"): 1,
                                      ("configuration_profiles", "MEDIUM"): 1})
    by_rule = {f.rule: f for f in found}
    assert by_rule["ios-quadream-calendar-event"].detail["uuid"] == "Q-1"
    assert by_rule["ios-quadream-calendar-event"].location.timestamp == "2023-06-01T06:14:20Z"
    assert "a\\x00\\x00b@example.com" in by_rule["ios-idstatuscache-nul"].message
    assert NOTIFY_PROFILE in by_rule["ios-profile-notification-settings"].message
    for rule, (_, level) in IOS_RULES.items():
        assert rulebook()[rule].severity.value.upper() == level
    # every calendar item is a record (MVT's rows), the untitled one too, with no time
    items = [r for r in out.ctx.records["calendar"] if r.event == "start_date"]
    assert sorted(str(r.data["uuid"]) for r in items) == ["C-1", "M-1", "N-1", "Q-1"]


@pytest.mark.skipif(not MVT_IOS.exists(), reason="MVT's bench environment is not installed")
def test_ios_heuristics_as_mvt_raises_them(gap_backup: Path, index: IocIndex,
                                           tmp_path: Path) -> None:
    """The oracle: MVT 2026.x run over the same backup raises the same alerts, at the
    same levels, from the same modules (an indicator file that matches nothing, as MVT
    checks these only when it has indicators)."""
    stix = _stix(tmp_path / "none.stix2", ["[domain-name:value = 'nothing.invalid']"])
    mvt: Counter[tuple[str, str]] = Counter()
    for module in ("Calendar", "IDStatusCache", "ConfigurationProfiles"):
        mvt += Counter((a["module"], a["level"])
                       for a in _mvt_alerts(gap_backup, stix, module, tmp_path / module))
    out = check_backup(gap_backup, index, index.sources)
    assert _levels(out.report.all_findings()) == mvt


@pytest.mark.parametrize(("age_days", "raised"), [(185, False), (186, True), (900, True)])
def test_outdated_patch_at_mvts_age_and_level(tmp_path: Path, index: IocIndex, age_days: int,
                                              raised: bool) -> None:
    """MVT: more than six months of 31 days from the patch day's midnight to now, medium;
    a patch 185 days old (over 180, spywall's old bound) is not outdated for MVT."""
    files = gen.androidqf_files(False, with_bugreport=False)
    level = (datetime.now(UTC).date() - timedelta(days=age_days)).isoformat()
    files["getprop.txt"] = files["getprop.txt"].replace(gen.recent_patch().encode(),
                                                        level.encode())
    mods = [m for m in MODULES if m.name == "getprop"]
    found = [f for f in check_capture(gen.write_tree(files, tmp_path / "qf"), index,
                                      modules=mods).report.all_findings()
             if f.rule == "android-outdated-patch"]
    assert [(f.severity, f.detail["security_patch"]) for f in found] == (
        [(Severity.MEDIUM, level)] if raised else [])
    assert rulebook()["android-outdated-patch"].severity is Severity.MEDIUM


def test_root_binary_is_high(tmp_path: Path, index: IocIndex) -> None:
    """MVT raises every root binary androidqf found at high (su, and magisk as androidqf
    lists it, by path)."""
    files = gen.androidqf_files(False, with_bugreport=False)
    files["root_binaries.json"] = json.dumps(["/system/xbin/su", "/sbin/magisk"]).encode()
    mods = [m for m in MODULES if m.name == "root_binaries"]
    found = check_capture(gen.write_tree(files, tmp_path / "qf"), index,
                          modules=mods).report.all_findings()
    assert sorted((f.rule, f.severity, f.detail["binary"]) for f in found) == [
        ("android-root-binary", Severity.HIGH, "/sbin/magisk"),
        ("android-root-binary", Severity.HIGH, "/system/xbin/su")]
    assert rulebook()["android-root-binary"].severity is Severity.HIGH


LOCATION_CLIENTS = {
    # newer iOS ends keys with ':'; a location bundle's key is its path
    "com.apple.locationd.bundle-/private/var/tmp/libbmanaged:": {
        "Authorization": 2, "LocationTimeStopped": apple(T0)},
    # a client whose bundle id is a spyware process name
    "com.example.weather": {"BundleId": "libbmanaged", "Authorization": 4},
    # the path it registered from
    "com.example.maps": {"BundleId": "com.example.maps", "Registered": "/private/var/db/evil/bin"},
    # Registered is a flag on some clients; nothing to match here
    "com.example.clean:": {"BundleId": "com.example.clean", "Registered": True,
                           "Executable": "/Applications/Clean.app/Clean"},
    "MigrationVersion": 3,  # not a client (a migration counter)
}
LOCATION_HITS = {"com.apple.locationd.bundle-/private/var/tmp/libbmanaged",
                 "com.example.weather", "com.example.maps"}


@pytest.fixture(scope="module")
def location_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("locationd")
    root = write_backup(tmp / "b", BackupSpec(planted=False))
    _stored(root, "RootDomain", "Library/Caches/locationd/clients.plist").write_bytes(
        plistlib.dumps(LOCATION_CLIENTS, fmt=plistlib.FMT_BINARY))
    stix = _stix(tmp / "loc.stix2", ["[process:name = 'libbmanaged']",
                                     "[file:path = '/private/var/db/evil/bin']"])
    return root, stix


def test_location_clients_as_mvt_reads_them(location_case: tuple[Path, Path]) -> None:
    root, stix = location_case
    index = IocIndex.load([stix])
    out = check_backup(root, index, index.sources)
    recs = out.ctx.records["locationd_clients"]
    assert sorted(str(r.data["client"]) for r in recs) == sorted(
        k.rstrip(":") for k, v in LOCATION_CLIENTS.items() if isinstance(v, dict))
    hit = {str(r.data["client"]) for r in out.ctx.detected.get("locationd_clients", [])}
    assert hit == LOCATION_HITS
    assert {f.severity for f in out.report.all_findings()
            if f.location.module == "locationd_clients"} == {Severity.HIGH}


@pytest.mark.skipif(not MVT_IOS.exists(), reason="MVT's bench environment is not installed")
def test_location_clients_against_mvt(location_case: tuple[Path, Path],
                                      tmp_path: Path) -> None:
    root, stix = location_case
    alerts = _mvt_alerts(root, stix, "LocationdClients", tmp_path / "mvt")
    assert {a["event"]["package"] for a in alerts} == LOCATION_HITS
    assert {a["level"] for a in alerts} == {"HIGH"}


def test_app_without_bundle_id_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    """Store metadata with no softwareVersionBundleId (written by an enterprise or
    re-signing tool, not the App Store) is medium, and its installer is then not judged
    again, as MVT does; checked against MVT over the same backup when it is installed."""
    root = write_backup(tmp_path / "b", BackupSpec(planted=False))
    info = plistlib.loads((root / "Info.plist").read_bytes())
    meta = {"itemName": "Tool", "artistName": "Example Ltd", "bundleShortVersionString": "1.0",
            "sourceApp": "com.example.enterprise.installer",
            "com.apple.iTunesStore.downloadInfo": {"purchaseDate": "2023-05-30T10:00:00Z"}}
    info["Applications"]["com.example.tool"] = {"iTunesMetadata": plistlib.dumps(
        meta, fmt=plistlib.FMT_BINARY), "PlaceholderIcon": b"\x89PNG"}
    (root / "Info.plist").write_bytes(plistlib.dumps(info))
    out = check_backup(root, index, index.sources)
    found = [(f.rule, f.severity, f.detail.get("app")) for f in out.report.all_findings()
             if f.location.module == "applications"]
    assert found == [("ios-app-no-bundle-id", Severity.MEDIUM, "com.example.tool")]
    assert rulebook()["ios-app-no-bundle-id"].severity is Severity.MEDIUM
    if MVT_IOS.exists():
        stix = _stix(tmp_path / "none.stix2", ["[domain-name:value = 'nothing.invalid']"])
        alerts = _mvt_alerts(root, stix, "Applications", tmp_path / "mvt")
        assert [(a["level"], a["event"]["name"]) for a in alerts] == [
            ("MEDIUM", "com.example.tool")]


MANIFEST_PATHS = {
    # WebKit's storage of a site, https_<host>_<port> (upper case as some apps write it)
    ("AppDomain-com.example.browser", "Library/WebKit/WebsiteData/LocalStorage/"
     "HTTPS_Evil-Site.com_0.localstorage"): True,
    # a host after any underscore, not only WebKit's scheme_: MVT reads every part
    ("AppDomain-com.example.browser", "Library/Caches/Downloads/invoice_evil-site.com/"
     "statement.pdf"): True,
    # the same name as a file name, with no underscore before it, is no site for MVT
    ("HomeDomain", "Library/Cookies/evil-site.com.binarycookies"): False,
    ("HomeDomain", "Documents/Notes_0.sqlite"): False,
}


def test_sites_in_backup_paths_as_mvt(tmp_path: Path) -> None:
    root = write_backup(tmp_path / "b", BackupSpec(planted=False))
    for domain, rel in MANIFEST_PATHS:
        _add_file(root, domain, rel, b"x")
    stix = _stix(tmp_path / "site.stix2", ["[domain-name:value = 'evil-site.com']"])
    index = IocIndex.load([stix])
    out = check_backup(root, index, index.sources)
    hits = {str(r.data["relative_path"]) for r in out.ctx.detected.get("manifest", [])}
    want = {rel for (_, rel), hit in MANIFEST_PATHS.items() if hit}
    assert hits == want
    assert {f.severity for f in out.report.all_findings()
            if f.location.module == "manifest"} == {Severity.HIGH}
    if MVT_IOS.exists():
        alerts = _mvt_alerts(root, stix, "Manifest", tmp_path / "mvt")
        assert {a["event"]["relative_path"] for a in alerts} == want
        assert {a["level"] for a in alerts} == {"HIGH"}


SHUTDOWN_CLIENTS = {
    "/usr/libexec/lockdownd": False,
    # a spyware process name as the folder the program runs from
    "/private/var/tmp/bundpwrd/helper": True,
    "/usr/libexec/bundpwrd": True,
}


def test_shutdown_clients_every_path_part_as_mvt(tmp_path: Path) -> None:
    root = write_dump(tmp_path / "d", DumpSpec(planted=False, prefix=""))
    lines = ["After 0.51s, these clients are still here:"]
    lines += [f"\t\tremaining client pid: {300 + i} ({c})"
              for i, c in enumerate(SHUTDOWN_CLIENTS)]
    lines.append("SIGTERM: [1685600000]")
    (root / "private/var/db/diagnostics/shutdown.log").write_text("\n".join(lines) + "\n")
    (root / "private/var/db/diagnostics/shutdown.0.log").unlink(missing_ok=True)
    stix = _stix(tmp_path / "proc.stix2", ["[process:name = 'bundpwrd']"])
    index = IocIndex.load([stix])
    mods = [m for m in DUMP_MODULES if m.name == "shutdown_log"]
    out = check_dump(root, index, index.sources, modules=mods)
    hits = {str(r.data["client"]) for r in out.ctx.detected.get("shutdown_log", [])
            if any(f.indicator for f in out.report.all_findings()
                   if f.detail.get("client") == r.data["client"])}
    want = {c for c, hit in SHUTDOWN_CLIENTS.items() if hit}
    assert hits == want
    if MVT_IOS.exists():
        res = tmp_path / "mvt"
        alerts = _mvt("check-fs", root, stix, res, "ShutdownLog")
        assert {a["event"]["client"] for a in alerts} == want



def test_mount_levels_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    """A read-write /system is high, nodiratime on a vendor partition medium (MVT
    2026.x's levels); checked against MVT over the same androidqf capture. MVT's second,
    medium alert for the option ``rw`` of a read-write mount is the documented difference
    (one alert per read-write mount)."""
    qf_dir = gen.write_tree(gen.androidqf_files(True, with_bugreport=False), tmp_path / "qf")
    mods = [m for m in MODULES if m.name == "mounts"]
    found = check_capture(qf_dir, index, modules=mods).report.all_findings()
    got = {(f.severity.value.upper(), str(f.detail["mount_point"])) for f in found
           if f.rule.startswith("android-") and "mount" in f.rule}
    assert got == {("HIGH", "/system"), ("MEDIUM", "/vendor/firmware_mnt")}
    assert rulebook()["android-suspicious-mount-options"].severity is Severity.MEDIUM
    if MVT_ANDROID.exists():
        stix = _stix(tmp_path / "none.stix2", ["[domain-name:value = 'nothing.invalid']"])
        res = tmp_path / "mvt"
        alerts = _mvt("check-androidqf", qf_dir, stix, res, "Mounts")
        assert {(a["level"], a["event"]["mount_point"]) for a in alerts
                if not a["message"].endswith(": rw")} == got


OTHER_KEY = base64.b64encode(hashlib.sha512(b"another computer").digest() * 4).decode()
HOST = f"{more.ADB_KEY} {more.ADB_USER}"


def _adb_capture(tmp: Path, layout: str) -> Path:
    """An androidqf capture whose bugreport's adb state trusts the capture's computer
    (last connected three days before the capture), another computer, and a line that
    is no key; the capture records its host key in acquisition.json, in
    adb_host_key.pub (older androidqf), or not at all."""
    files = gen.androidqf_files(False, with_bugreport=False)
    meta = json.loads(files["acquisition.json"])
    meta.pop("adb_host_public_key")
    if layout == "json":
        meta["adb_host_public_key"] = HOST + "\n"
    elif layout == "pub":
        files["adb_host_key.pub"] = (HOST + "\n").encode()
    files["acquisition.json"] = json.dumps(meta).encode()
    started = int(datetime(2024, 1, 15, 10, tzinfo=UTC).timestamp() * 1000)
    br = gen.bugreport_files(False)
    text = br[gen.DUMPSTATE].decode()
    state = more.adb_state([HOST, f"{OTHER_KEY} other@desktop", "not-base64!! bad@host"],
                           [(HOST, started - 3 * 86_400_000)])
    br[gen.DUMPSTATE] = text.replace(more.adb_state([HOST], [(HOST, more.ADB_LAST_MS)]),
                                     state).encode()
    assert state in br[gen.DUMPSTATE].decode()
    files["bugreport.zip"] = gen.zip_files(br)
    return gen.write_tree(files, tmp / layout)


ADB_WANT = {
    "json": {("INFORMATIONAL", more.ADB_USER), ("LOW", "other@desktop"), ("LOW", "bad@host")},
    "pub": {("INFORMATIONAL", more.ADB_USER), ("LOW", "other@desktop"), ("LOW", "bad@host")},
    "none": {("LOW", more.ADB_USER), ("LOW", "other@desktop"), ("LOW", "bad@host")},
}


@pytest.mark.parametrize("layout", list(ADB_WANT))
def test_trusted_adb_hosts_as_mvt(tmp_path: Path, index: IocIndex, layout: str) -> None:
    qf_dir = _adb_capture(tmp_path, layout)
    mods = [m for m in MODULES if m.name == "dumpsys_adb"]
    found = check_capture(qf_dir, index, modules=mods).report.all_findings()
    level = {Severity.LOW: "LOW", Severity.INFO: "INFORMATIONAL"}
    assert {(level[f.severity], str(f.detail["user"])) for f in found} == ADB_WANT[layout]
    for rule in ("android-adb-key-invalid", "android-adb-key-unverified",
                 "android-adb-key-other-host", "android-adb-key-old-connection"):
        assert rule in rulebook()
    if MVT_ANDROID.exists():
        stix = _stix(tmp_path / "none.stix2", ["[domain-name:value = 'nothing.invalid']"])
        res = tmp_path / "mvt"
        # (MVT's -m does not reach the bugreport modules it runs inside androidqf)
        alerts = _mvt("check-androidqf", qf_dir, stix, res)
        assert {(a["level"], a["event"]["user"]) for a in alerts
                if a["module"] == "dumpsys_adb_state"} == ADB_WANT[layout]


def test_bare_bugreport_has_no_capture_computer(tmp_path: Path, index: IocIndex) -> None:
    """A bugreport alone names no computer that made it: its trusted keys are records
    only (MVT checks them only inside an androidqf capture)."""
    path = tmp_path / "br.zip"
    path.write_bytes(gen.bugreport_zip(False))
    mods = [m for m in MODULES if m.name == "dumpsys_adb"]
    out = check_capture(path, index, modules=mods)
    assert [r.data["user"] for r in out.ctx.records["dumpsys_adb"]] == [more.ADB_USER]
    assert out.report.all_findings() == []


READER = "com.example.reader/com.example.reader.ReaderService"
TALKBACK = "com.google.android.marvin.talkback/com.google.android.accessibility.talkback." \
           "TalkBackService"
A11Y_HEAD = ("ACCESSIBILITY MANAGER (dumpsys accessibility)\n\ncurrentUserId=0\nUser state[\n"
             "  attributes:{id=0, touchExplorationEnabled=false, serviceHandlesDoubleTap=false}\n"
             "  installed services: {\n")
A11Y = {
    # an older build's dump: installed services only, nothing said of which are on
    "not-stated": A11Y_HEAD + f"    0 : {READER}\n  }}\n]\n",
    # bound (running) though not on the Enabled line; TalkBack installed, off
    "bound": A11Y_HEAD + f"    0 : {READER}\n    1 : {TALKBACK}\n  }}\n"
             f"  Bound services:{{{{{READER}}}}}\n  Enabled services:{{}}\n"
             "  Binding services:{}\n]\n",
}


@pytest.mark.parametrize("layout", list(A11Y))
def test_accessibility_not_stated_or_bound_as_mvt(tmp_path: Path, index: IocIndex,
                                                  layout: str) -> None:
    """Medium, as MVT, for a service that is bound, or whose enabled state the dump does
    not print (not stated is not off); an installed service that is off stays a record
    (the documented difference: MVT raises it low)."""
    files = gen.bugreport_files(False)
    head, sep, rest = files[gen.DUMPSTATE].decode().partition(
        "DUMP OF SERVICE accessibility:\n")
    files[gen.DUMPSTATE] = (head + sep + A11Y[layout] + rest[rest.index("---------"):]).encode()
    path = tmp_path / "bugreport.zip"
    path.write_bytes(gen.zip_files(files))
    mods = [m for m in MODULES if m.name == "dumpsys_accessibility"]
    found = check_capture(path, index, modules=mods).report.all_findings()
    assert [(f.rule, f.severity, f.detail["service"]) for f in found] == [
        ("android-accessibility-enabled", Severity.MEDIUM, READER)]
    if MVT_ANDROID.exists():
        stix = _stix(tmp_path / "none.stix2", ["[domain-name:value = 'nothing.invalid']"])
        res = tmp_path / "mvt"
        alerts = _mvt("check-bugreport", path, stix, res, "DumpsysAccessibility")
        assert {(a["level"], a["event"]["component"]) for a in alerts
                if a["level"] != "LOW"} == {("MEDIUM", READER)}


def test_rejected_favicon_icon_url_as_mvt(tmp_path: Path) -> None:
    """A Favicons.db whose rejected_resources has an icon_url column (MVT reads it): the
    icon's address is matched too, not only the page's."""
    root = write_dump(tmp_path / "d", DumpSpec(planted=False, prefix=""))
    (db,) = root.glob("private/var/mobile/Containers/Data/Application/*/Library/"
                      "Image Cache/Favicons/Favicons.db")
    db.unlink()
    with sqlite3.connect(db) as c:
        c.executescript(
            "CREATE TABLE page_url (uuid TEXT NOT NULL, url TEXT NOT NULL UNIQUE);"
            "CREATE TABLE icon_info (uuid TEXT NOT NULL UNIQUE, url TEXT NOT NULL, "
            "timestamp REAL, width REAL, height REAL, has_generated_representations INTEGER);"
            "CREATE TABLE rejected_resources (id INTEGER PRIMARY KEY AUTOINCREMENT, page_url "
            "TEXT NOT NULL, icon_url TEXT, timestamp REAL);")
        c.execute("INSERT INTO page_url VALUES ('U1', 'https://news.example.org/')")
        c.execute("INSERT INTO icon_info VALUES ('U1', 'https://news.example.org/f.ico', ?, "
                  "32, 32, 0)", (apple(T0),))
        c.execute("INSERT INTO rejected_resources (page_url, icon_url, timestamp) VALUES "
                  "('https://shop.example.net/', 'https://cdn.evil-icons.com/x.ico', ?)",
                  (apple(T0 + 60),))
    c.close()
    stix = _stix(tmp_path / "icon.stix2", ["[domain-name:value = 'evil-icons.com']"])
    index = IocIndex.load([stix])
    mods = [m for m in DUMP_MODULES if m.name == "safari_favicon"]
    out = check_dump(root, index, index.sources, modules=mods)
    hits = [str(r.data["icon_url"]) for r in out.ctx.detected.get("safari_favicon", [])]
    assert hits == ["https://cdn.evil-icons.com/x.ico"]
    if MVT_IOS.exists():
        res = tmp_path / "mvt"
        alerts = _mvt("check-fs", root, stix, res, "SafariFavicon")
        assert [a["event"]["icon_url"] for a in alerts] == hits


# MVT marks a detected indicator CRITICAL, except in the modules that match a name or a
# path alone (manifest, filesystem, locationd, sms_attachments): HIGH.
HIGH_MATCH_MODULES = {"manifest", "filesystem", "locationd_clients", "sms_attachments"}
PEGASUS_STIX = Path("/work/shared/iocs/amnesty_pegasus.stix2")


def _indicator_levels(found: list[Finding]) -> dict[str, set[str]]:
    levels: dict[str, set[str]] = {}
    for f in found:
        if f.indicator is not None:
            levels.setdefault(str(f.location.module), set()).add(f.severity.value.upper())
    return levels


def test_indicator_matches_are_critical_but_names_and_paths_high(tmp_path: Path) -> None:
    """Every module's indicator match is critical (it exits 1, SARIF says error), except
    the four modules that match a bare name or path, high as MVT marks them."""
    root = write_backup(tmp_path / "b", BackupSpec())
    for rel in ("Library/Caches/locationd/clients.plist",):
        _stored(root, "RootDomain", rel).write_bytes(plistlib.dumps(
            {"com.apple.locationd.bundle-/private/var/tmp/roleaboutd":
             {"BundlePath": "/private/var/tmp/roleaboutd"}}, fmt=plistlib.FMT_BINARY))
    index = IocIndex.load()
    out = check_backup(root, index, index.sources)
    levels = _indicator_levels(out.report.all_findings())
    assert {"manifest", "locationd_clients", "sms", "whatsapp", "calls"} <= set(levels)
    for module, got in levels.items():
        assert got == ({"HIGH"} if module in HIGH_MATCH_MODULES else {"CRITICAL"}), module
    assert exit_status(out.report.finalize()) == 1
    dump = write_dump(tmp_path / "d", DumpSpec(prefix=""))
    fs = check_dump(dump, index, index.sources,
                    modules=[m for m in DUMP_MODULES if m.name == "filesystem"])
    assert _indicator_levels(fs.report.all_findings()) == {"filesystem": {"HIGH"}}


@pytest.mark.skipif(not (MVT_IOS.exists() and PEGASUS_STIX.exists()),
                    reason="MVT's bench environment is not installed")
def test_indicator_levels_against_mvt(tmp_path: Path) -> None:
    """The oracle: for every module in which MVT matched an indicator over the generated
    backup, spywall's indicator findings of that module are at MVT's levels."""
    root = write_backup(tmp_path / "b", BackupSpec())
    mvt: dict[str, set[str]] = {}
    for a in _mvt("check-backup", root, PEGASUS_STIX, tmp_path / "mvt"):
        if a.get("matched_indicator"):
            mvt.setdefault(a["module"], set()).add(a["level"])
    index = IocIndex.load([PEGASUS_STIX])
    ours = _indicator_levels(check_backup(root, index, index.sources).report.all_findings())
    assert {"manifest", "sms"} <= set(mvt)
    assert {m: ours.get(m) for m in mvt} == mvt


def _sms_rows(out: Path, plugin: str = "SMS") -> list[list[str]]:
    with (out / "timeline.csv").open(encoding="utf-8", newline="") as fh:
        return [r for r in csv.reader(fh) if r[1] == plugin]


def test_sms_read_rows_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    """A message read has a second timeline row, ``sms_read``, at its read time with the
    message's description, as MVT's SMS module writes it; the rows stand in time order
    among the others. Some messages are read at the time the next one arrived (rows of
    equal times: MVT orders those by no rule, so a time's rows are compared as a set)."""
    root = write_backup(tmp_path / "b", BackupSpec(planted=False, messages=12))
    with sqlite3.connect(_stored(root, "HomeDomain", "Library/SMS/sms.db")) as c:
        c.execute("UPDATE message SET date_read = date + 60000000000 WHERE ROWID % 3 = 0")
        c.execute("UPDATE message SET date_read = date + 30000000000 WHERE ROWID % 3 = 1")
        read = dict(c.execute("SELECT ROWID, date_read FROM message WHERE date_read != 0"))
    c.close()
    out = tmp_path / "out"
    assert main(["check-ios", str(root), "-m", "sms", "-q", "-f", "json", "--output",
                 str(out)]) == 0
    rows = _sms_rows(out)
    reads = [r for r in rows if r[2] == "sms_read"]
    assert len(reads) == len(read) == 8
    received = {json.loads(r[3])["rowid"]: r for r in rows if r[2] == "sms_received"}
    for r in reads:
        desc = json.loads(r[3])
        assert r[0] == desc["isodate_read"] != received[desc["rowid"]][0]
        assert r[3] == received[desc["rowid"]][3]
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert len({r[0] for r in rows}) < len(rows)  # some rows share a time
    if MVT_IOS.exists():
        stix = _stix(tmp_path / "none.stix2", ["[domain-name:value = 'nothing.invalid']"])
        _mvt("check-backup", root, stix, tmp_path / "mvt", "SMS")
        theirs = _sms_rows(tmp_path / "mvt")
        assert [r[0] for r in theirs] == [r[0] for r in rows]
        by_time: dict[str, Counter[str]] = {}
        for r in theirs:
            by_time.setdefault(r[0], Counter())[r[2]] += 1
        ours: dict[str, Counter[str]] = {}
        for r in rows:
            ours.setdefault(r[0], Counter())[r[2]] += 1
        assert ours == by_time


SESSION_REL = ("Library/WebKit/WebsiteData/ResourceLoadStatistics/"
               "full_browsing_session_resourceLog.plist")


def test_session_log_redirect_as_mvt(tmp_path: Path) -> None:
    """A WebKit session-log entry that matches an indicator also gets MVT's "redirect
    between suspicious domains" (high), naming its redirect path; the others none. The
    redirect lists in MVT's form (dictionaries with an origin or a domain) are read.
    Checked against MVT's webkit_session_resource_log over the same backup."""
    root = write_backup(tmp_path / "b", BackupSpec(planted=False))
    _stored(root, "AppDomain-com.apple.mobilesafari", SESSION_REL).write_bytes(plistlib.dumps(
        {"browsingStatistics": [
            {"PrevalentResourceOrigin": "evil-site.com",
             "topFrameUniqueRedirectsFrom": [{"origin": "news.example.org"}],
             "topFrameUniqueRedirectsTo": [{"domain": "cdn.example.net"},
                                           {"origin": "landing.example.com"}],
             "lastSeen": datetime(2023, 6, 1, 8, 0, 0)},
            {"PrevalentResourceOrigin": "quiet.example.org",
             "topFrameUniqueRedirectsTo": [{"domain": "other.example.net"}],
             "lastSeen": datetime(2023, 6, 1, 9, 0, 0)}]}, fmt=plistlib.FMT_BINARY))
    stix = _stix(tmp_path / "site.stix2", ["[domain-name:value = 'evil-site.com']"])
    index = IocIndex.load([stix])
    mods = [m for m in MODULES_IOS if m.name == "webkit_session_resource_log"]
    found = check_backup(root, index, index.sources, modules=mods).report.all_findings()
    got = sorted((f.severity.value.upper(), f.rule) for f in found)
    assert got == [("CRITICAL", "ioc-domain"), ("HIGH", "ios-webkit-suspicious-redirect")]
    (redirect,) = [f for f in found if f.rule == "ios-webkit-suspicious-redirect"]
    path = ('SOURCE: "news.example.org" -> ORIGIN: "evil-site.com" -> DESTINATION: '
            '"cdn.example.net", "landing.example.com"')
    assert path in redirect.message
    assert rulebook()["ios-webkit-suspicious-redirect"].severity is Severity.HIGH
    if MVT_IOS.exists():
        alerts = _mvt_alerts(root, stix, "WebkitSessionResourceLog", tmp_path / "mvt")
        assert sorted(a["level"] for a in alerts) == ["CRITICAL", "HIGH"]
        (theirs,) = [a for a in alerts if a["level"] == "HIGH"]
        assert theirs["message"].endswith(path)


def test_fast_redirect_is_medium(tmp_path: Path, index: IocIndex) -> None:
    """A fast cross-domain redirect in Safari's history is medium, as MVT raises it."""
    root = write_backup(tmp_path / "b", BackupSpec())
    mods = [m for m in MODULES_IOS if m.name == "safari_history"]
    found = check_backup(root, index, index.sources, modules=mods).report.all_findings()
    assert [f.severity for f in found if f.rule == "ios-fast-cross-domain-redirect"] == [
        Severity.MEDIUM]
    assert rulebook()["ios-fast-cross-domain-redirect"].severity is Severity.MEDIUM


@pytest.mark.parametrize("planted", [False, True])
def test_lockdown_mode_as_mvt(tmp_path: Path, index: IocIndex, planted: bool,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """Lockdown Mode on is information (MVT's "Lockdown mode enabled"), off is low: the
    same level as MVT's GlobalPreferences module over the same backup. On alone, the
    phone exits 0 and the table's verdict is not FOUND."""
    root = write_backup(tmp_path / "b", BackupSpec(planted=planted))
    mods = [m for m in MODULES_IOS if m.name == "global_preferences"]
    found = check_backup(root, index, index.sources, modules=mods).report.all_findings()
    level = {Severity.INFO: "INFORMATIONAL", Severity.LOW: "LOW"}
    ours = [level[f.severity] for f in found]
    assert ours == (["LOW"] if planted else ["INFORMATIONAL"])
    if not planted:
        assert main(["check-ios", str(root), "-m", "global_preferences"]) == 0
        text = capsys.readouterr().out
        assert "ios-lockdown-mode-on" in text
        assert "FOUND" not in text
    if MVT_IOS.exists():
        stix = _stix(tmp_path / "none.stix2", ["[domain-name:value = 'nothing.invalid']"])
        alerts = _mvt_alerts(root, stix, "GlobalPreferences", tmp_path / "mvt")
        assert [a["level"] for a in alerts] == ours


A11Y_COUNTED = {
    # the count alone (most builds print no installed-services block): none named
    "none-named": ("ACCESSIBILITY MANAGER (dumpsys accessibility)\n\ncurrentUserId=0\n"
                   "User state[\n  attributes:{id=0, installedServiceCount=2, "
                   "touchExplorationEnabled=false}\n]\n", {("LOW", 2, 2)}),
    # three stated, one named (and enabled: medium besides)
    "one-named": (A11Y_HEAD.replace("{id=0,", "{id=0, installedServiceCount=3,")
                  + f"    0 : {READER}\n  }}\n  Enabled services:{{{{{READER}}}}}\n]\n",
                  {("LOW", 3, 2), ("MEDIUM", None, None)}),
    # as many named as stated: nothing unnamed
    "all-named": (A11Y_HEAD.replace("{id=0,", "{id=0, installedServiceCount=1,")
                  + f"    0 : {READER}\n  }}\n  Enabled services:{{}}\n]\n", set()),
}


@pytest.mark.parametrize("layout", list(A11Y_COUNTED))
def test_accessibility_unnamed_services_as_mvt(tmp_path: Path, index: IocIndex,
                                               layout: str) -> None:
    """A stated installedServiceCount larger than the services the dump names is low,
    with the counts, as MVT raises it; checked against MVT over the same bugreport."""
    dump, want = A11Y_COUNTED[layout]
    files = gen.bugreport_files(False)
    head, sep, rest = files[gen.DUMPSTATE].decode().partition(
        "DUMP OF SERVICE accessibility:\n")
    files[gen.DUMPSTATE] = (head + sep + dump + rest[rest.index("---------"):]).encode()
    path = tmp_path / "bugreport.zip"
    path.write_bytes(gen.zip_files(files))
    mods = [m for m in MODULES if m.name == "dumpsys_accessibility"]
    found = check_capture(path, index, modules=mods).report.all_findings()
    level = {Severity.LOW: "LOW", Severity.MEDIUM: "MEDIUM"}
    assert {(level[f.severity], f.detail.get("installed_service_count"),
             f.detail.get("unnamed_service_count")) for f in found} == want
    if MVT_ANDROID.exists():
        stix = _stix(tmp_path / "none.stix2", ["[domain-name:value = 'nothing.invalid']"])
        alerts = _mvt("check-bugreport", path, stix, tmp_path / "mvt", "DumpsysAccessibility")
        # (MVT's low for an installed service that is off: the documented difference)
        unnamed = {("LOW", a["event"]["installed_service_count"],
                    a["event"]["unnamed_service_count"]) for a in alerts
                   if a["level"] == "LOW" and not a["event"]["component"]}
        assert unnamed | {(a["level"], None, None) for a in alerts
                          if a["level"] == "MEDIUM"} == want


def _abx_keystore(keys: list[tuple[str, int]]) -> bytes:
    """adb_temp_keys.xml as Android writes it in binary XML (ABX): ``ABX\\0``, then
    tokens (the low nibble the event, the high one the value's type), names interned
    (0xFFFF and the text the first time, its index after), strings with a 16-bit length,
    longs as 8 bytes, all big-endian."""
    names: list[str] = []

    def name(text: str) -> bytes:
        if text in names:
            return names.index(text).to_bytes(2, "big")
        names.append(text)
        raw = text.encode()
        return b"\xff\xff" + len(raw).to_bytes(2, "big") + raw

    def string(text: str) -> bytes:
        raw = text.encode()
        return len(raw).to_bytes(2, "big") + raw

    out = b"ABX\x00\x10" + b"\x32" + name("keyStore") + b"\x6f" + name("version") + (
        1).to_bytes(4, "big")
    for key, ms in keys:
        out += (b"\x32" + name("adbKey") + b"\x2f" + name("key") + string(key) + b"\x8f"
                + name("lastConnection") + ms.to_bytes(8, "big") + b"\x33" + name("adbKey"))
    return out + b"\x33" + name("keyStore") + b"\x11"


# (a key's 16-bit length ends in a byte that is no base64 character: MVT reads the
# characters before the key as part of it otherwise, and so misses it)
ABX_USER = "x@other"


def test_binary_keystore_keys_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    """A keystore in binary XML (ABX): its keys are read (their last connection is not
    known), as MVT recovers them; checked against MVT over the same capture."""
    abx_host = f"{OTHER_KEY} {ABX_USER}"
    assert (len(abx_host) & 0xFF) not in b"+/0123456789" + bytes(range(65, 91)) + bytes(
        range(97, 123))
    files = gen.androidqf_files(False, with_bugreport=False)
    meta = json.loads(files["acquisition.json"])
    meta["adb_host_public_key"] = HOST + "\n"
    files["acquisition.json"] = json.dumps(meta).encode()
    br = gen.bugreport_files(False)
    state = more.adb_state([HOST], [(HOST, more.ADB_LAST_MS)])
    start = state.index("keystore=") + len("keystore=")
    end = state.index("\n\n", start)
    abx = _abx_keystore([(abx_host, more.ADB_LAST_MS)])
    assert b"\n" not in abx
    br[gen.DUMPSTATE] = br[gen.DUMPSTATE].replace(
        state.encode(), state[:start].encode() + abx + state[end:].encode())
    assert abx in br[gen.DUMPSTATE]
    files["bugreport.zip"] = gen.zip_files(br)
    qf_dir = gen.write_tree(files, tmp_path / "qf")
    out = check_capture(qf_dir, index, modules=[m for m in MODULES if m.name == "dumpsys_adb"])
    keys = {str(r.data["user"]): r.data for r in out.ctx.records["dumpsys_adb"]}
    assert set(keys) == {more.ADB_USER, ABX_USER}
    assert keys[ABX_USER]["last_connected"] is None
    level = {Severity.LOW: "LOW", Severity.INFO: "INFORMATIONAL"}
    ours = {(level[f.severity], str(f.detail["user"])) for f in out.report.all_findings()}
    assert ("LOW", ABX_USER) in ours
    if MVT_ANDROID.exists():
        stix = _stix(tmp_path / "none.stix2", ["[domain-name:value = 'nothing.invalid']"])
        alerts = _mvt("check-androidqf", qf_dir, stix, tmp_path / "mvt")
        assert {(a["level"], a["event"]["user"]) for a in alerts
                if a["module"] == "dumpsys_adb_state"} == ours


def test_binary_keystore_is_read_bounded() -> None:
    """A hostile ABX keystore: one base64 run of 4 MB is read within MAX_ABX, and at
    most 1000 keys are kept."""
    from spywall.android import dumpsys

    head = "ADB MANAGER STATE (dumpsys adb):\n{\n  debugging_manager={\n    keystore=ABX\0"
    got = dumpsys.adb_keys(head + "A" * (4 << 20) + "\n\n  }\n}\n")
    assert got is not None
    assert [len(k.key) for k in got] == [dumpsys.MAX_ABX - len("ABX\0")]
    many = "\x01".join(f"{base64.b64encode(i.to_bytes(4, 'big') * 80).decode()} u{i}@h"
                       for i in range(3000))
    got = dumpsys.adb_keys(head + many + "\n\n  }\n}\n")
    assert got is not None
    assert 0 < len(got) <= 1000
