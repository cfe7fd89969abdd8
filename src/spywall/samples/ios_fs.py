"""Synthetic iOS filesystem dumps (MVT's ``check-fs`` input) for tests and demos.

``write_dump(folder, DumpSpec(...))`` writes, under ``folder/<prefix>``, the phone's own
layout (``private/var/mobile``, ``private/var/db``...) holding the same artifacts as
``samples.ios.write_backup`` (written by the same code, placed by ``fsdump.DOMAIN_ROOTS``
and container folders named by their metadata plist), plus what only a dump has: a
Shutdown.log, a netusage.sqlite and SystemVersion.plist.

``planted=True`` adds values from the real indicator sets (``PLANTED_FS``): Pegasus
processes still running at shutdown (one from /private/var/db/), a Pegasus process and
Triangulation's BackupAgent in netusage, a Cytrox file path and a Pegasus-named executable
on disk. ``planted=False`` is the clean twin, which must raise nothing.
"""

from __future__ import annotations

import os
import plistlib
import sqlite3
import uuid
from pathlib import Path

from spywall.ios.fsdump import CONTAINER_META, CONTAINER_ROOTS, DOMAIN_ROOTS, SYSTEM_VERSION
from spywall.samples import ios, ios_extra
from spywall.samples.ios import T0, BackupSpec, apple, sqlite_bytes

# Values from the real published sets (tests check each is in the bundled index).
PLANTED_FS: dict[str, str] = {
    "shutdown_client": "/private/var/db/com.apple.xpc.roleaccountd.staging/msgacntd",  # Pegasus
    "shutdown_process": "bundpwrd",  # Pegasus (under an ordinary-looking folder)
    "netusage_process": "launchafd",  # Pegasus
    "file_path": "/private/var/tmp/takePhoto",  # Cytrox
    "executable": "gssdp",  # Pegasus (an executable under /private/var/db/)
    "rotated_client": "/usr/libexec/stagegrad",  # Pegasus (only in the rotated log)
    "webkit_domain": "site-lock.net",  # Pegasus (a WebKit local-storage name)
    "cache_domain": "shortenurls.me",  # Predator (Cytrox), in an app's Cache.db
    "analytics_process": "nehelprd",  # Pegasus, in a keychain analytics event
    "indexeddb_domain": "info24.live",  # Pegasus (a WebKit IndexedDB folder name)
    "safariviewservice_domain": "top10leadsgen.com",  # Pegasus (SafariViewService data)
}
APP_UUID = "0B5E0C7A-1C2D-4E3F-8A9B-0C1D2E3F4A5B"
SHUTDOWN_AT = (T0 + 7_200, T0 + 90_000)
_NETUSAGE_SCHEMA = (
    "CREATE TABLE ZPROCESS (Z_PK INTEGER PRIMARY KEY, ZPROCNAME TEXT, ZBUNDLENAME TEXT, "
    "ZFIRSTTIMESTAMP REAL, ZTIMESTAMP REAL); CREATE TABLE ZLIVEUSAGE (Z_PK INTEGER PRIMARY "
    "KEY, ZKIND INTEGER, ZHASPROCESS INTEGER, ZTIMESTAMP REAL, ZWIFIIN REAL, ZWIFIOUT REAL, "
    "ZWWANIN REAL, ZWWANOUT REAL);")


class DumpSpec(BackupSpec):
    prefix: str = "root"  # a leading folder above private/ ("" for none)


class _DumpWriter(ios._Writer):
    """The backup writer with ``put`` / ``folder`` writing to the phone's paths."""

    def _folder_of(self, domain: str) -> Path:
        base = DOMAIN_ROOTS.get(domain)
        if base is not None:
            return self.root / base
        prefix = next(p for p in CONTAINER_ROOTS if domain.startswith(p))
        ident = domain[len(prefix):]
        folder = self.root / CONTAINER_ROOTS[prefix] / str(uuid.uuid5(uuid.NAMESPACE_DNS, ident))
        if not folder.is_dir():
            folder.mkdir(parents=True)
            (folder / CONTAINER_META).write_bytes(plistlib.dumps(
                {"MCMMetadataIdentifier": ident, "MCMMetadataContentClass": 2}))
        return folder

    def put(self, domain: str, rel: str, data: bytes, mtime: int = T0) -> None:
        put_file(self._folder_of(domain) / rel, data, mtime)

    def folder(self, domain: str, rel: str, birth: int) -> None:
        path = self._folder_of(domain) / rel
        path.mkdir(parents=True, exist_ok=True)
        os.utime(path, (birth, birth))


def put_file(path: Path, data: bytes, mtime: int = T0, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    os.utime(path, (mtime, mtime))


def shutdown_log(planted: bool) -> bytes:
    """Two shutdowns as iOS logs them; the planted one keeps two Pegasus processes alive."""
    normal = ["/usr/libexec/lockdownd", "/System/Library/PrivateFrameworks/"
              "MediaRemote.framework/Support/mediaremoted", "/usr/sbin/mDNSResponder"]
    lines: list[str] = []
    for n, at in enumerate(SHUTDOWN_AT):
        clients = list(normal)
        if planted and n == 1:
            clients += [PLANTED_FS["shutdown_client"],
                        f"/usr/libexec/{PLANTED_FS['shutdown_process']}"]
        for delay in ("0.51", "1.02"):
            lines.append(f"After {delay}s, these clients are still here:")
            lines += [f"\t\tremaining client pid: {300 + i} ({c})" for i, c in enumerate(clients)]
        lines.append(f"SIGTERM: [{at}]")
    return ("\n".join(lines) + "\n").encode()


def rotated_log(planted: bool) -> bytes:
    """One older shutdown, with a CRLF line end and a trailing partial line (a log cut
    when it was rotated)."""
    clients = ["/usr/libexec/lockdownd"]
    if planted:
        clients.append(PLANTED_FS["rotated_client"])
    lines = ["After 0.50s, these clients are still here:"]
    lines += [f"\t\tremaining client pid: {200 + i} ({c})\r" for i, c in enumerate(clients)]
    lines.append(f"SIGTERM: [{SHUTDOWN_AT[0] - 86_400}]")
    return ("\n".join(lines) + "\nAfter 0.5").encode()


def _netusage(root: Path, planted: bool) -> None:
    procs = [("mDNSResponder", ""), ("nsurlsessiond", ""), ("BackupAgent2", "")]
    if planted:
        procs += [(PLANTED_FS["netusage_process"], ""), ("BackupAgent", "")]

    def fill(c: sqlite3.Connection) -> None:
        for i, (name, bundle) in enumerate(procs, 1):
            c.execute("INSERT INTO ZPROCESS VALUES (?,?,?,?,?)",
                      (i, name, bundle, apple(T0 + i), apple(T0 + i)))
            c.execute("INSERT INTO ZLIVEUSAGE VALUES (?,?,?,?,?,?,?,?)",
                      (i, 0, i, apple(T0 + 60 * i), 500.0 * i, 20.0, 0.0, 0.0))

    data, _ = sqlite_bytes(_NETUSAGE_SCHEMA, fill)
    put_file(root / "private/var/networkd/netusage.sqlite", data)


# (unix time, build) of the analytics events that name a build, in no order
ANALYTICS_BUILDS = ((T0 + 5_000, "20F66"), (T0 - 864_000, "20E252"), (T0 + 1_000, "20F66"),
                    (T0 - 900_000, "20E252"))


def _analytics_db(root: Path, planted: bool) -> None:
    """A keychain analytics database (hard/soft failures, all events: Apple-epoch time and
    a binary plist), the planted one naming a Pegasus process in an event."""
    def fill(c: sqlite3.Connection) -> None:
        events = [{"eventType": "KeychainItemAccess", "process": "securityd",
                   "attributes": "kSecClassGenericPassword"}]
        if planted:
            events.append({"eventType": "SecTrustEvaluation", "process":
                           PLANTED_FS["analytics_process"], "errorCode": "-67843"})
        for i, ev in enumerate(events):
            c.execute("INSERT INTO soft_failures (timestamp, data) VALUES (?, ?)",
                      (apple(T0 + 800 + i), plistlib.dumps(ev, fmt=plistlib.FMT_BINARY)))
        # events name the build that logged them: the update to 20F66 shows as its first
        for at, build in ANALYTICS_BUILDS:
            ev = {"eventType": "KeychainSyncState", "build": build, "product": "iPhone OS"}
            c.execute("INSERT INTO all_events (timestamp, data) VALUES (?, ?)",
                      (apple(at), plistlib.dumps(ev, fmt=plistlib.FMT_BINARY)))

    data, _ = sqlite_bytes(
        "CREATE TABLE hard_failures (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp REAL, "
        "data BLOB); CREATE TABLE soft_failures (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "timestamp REAL, data BLOB); CREATE TABLE all_events (id INTEGER PRIMARY KEY "
        "AUTOINCREMENT, timestamp REAL, data BLOB);", fill)
    put_file(root / "private/var/Keychains/Analytics/security_analytics.db", data)


def _cache_db(root: Path, planted: bool) -> None:
    """An app's CFNetwork URL cache (Cache.db) in its data container's Caches folder."""
    host = PLANTED_FS["cache_domain"] if planted else "api.example.com"

    def fill(c: sqlite3.Connection) -> None:
        c.executemany("INSERT INTO cfurl_cache_response (entry_ID, version, hash_value, "
                      "storage_policy, request_key, time_stamp, partition) VALUES "
                      "(?, 0, ?, 0, ?, ?, NULL)",
                      [(1, 11, "https://www.example.org/feed.json", "2023-06-01 06:20:00"),
                       (2, 12, f"https://{host}/v1/config", "2023-06-01 06:21:40")])

    data, _ = sqlite_bytes(
        "CREATE TABLE cfurl_cache_response (entry_ID INTEGER PRIMARY KEY AUTOINCREMENT "
        "UNIQUE, version INTEGER, hash_value INTEGER, storage_policy INTEGER, request_key "
        "TEXT UNIQUE, time_stamp TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, partition "
        "TEXT);", fill)
    app = root / "private/var/mobile/Containers/Data/Application" / APP_UUID
    put_file(app / "Library/Caches/com.example.weather/Cache.db", data)


def _webkit_folders(root: Path, planted: bool) -> None:
    """WebKit's per-site storage in an app's container, named after the site's origin
    (``https_<host>_<port>``): an IndexedDB folder and SafariViewService website data
    (the in-app browser), beside names that are not sites; their folders' times set."""
    app = root / "private/var/mobile/Containers/Data/Application" / APP_UUID
    idb = app / "Library/WebKit/WebsiteData/IndexedDB"
    site = PLANTED_FS["indexeddb_domain"] if planted else "docs.example.org"
    put_file(idb / f"https_{site}_0" / "IndexedDB.sqlite3", b"SQLite format 3\x00", T0 + 710)
    put_file(idb / "v1" / "salt", b"\x00" * 8, T0 + 710)  # (a hashed layout: not a site)
    put_file(idb / "https_www.example.com_443" / "IndexedDB.sqlite3", b"", T0 + 720)
    svs = app / "SystemData/com.apple.SafariViewService/Library/WebKit/WebsiteData"
    site = PLANTED_FS["safariviewservice_domain"] if planted else "news.example.net"
    put_file(svs / f"https_{site}_0.localstorage", b"SQLite format 3\x00", T0 + 730)
    put_file(svs / "LocalStorage" / "StorageTracker.db", b"", T0 + 730)
    for folder, at in ((idb, T0 + 740), (svs, T0 + 750)):
        os.utime(folder, (at, at))


JOURNALS = (  # (file date, header time as analyticsd writes it, os_version)
    ("2023-05-20-020001", "2023-05-20 02:00:01.00 +0200", "iPhone OS 16.4.1 (20E252)"),
    ("2023-06-01-020004", "2023-06-01 02:00:04.37 +0200", "iPhone OS 16.5 (20F66)"),
)


def _journals(root: Path) -> None:
    """analyticsd's journals: a one-line JSON header, then one event per line."""
    import json

    folder = root / "private/var/db/analyticsd"
    for day, stamp, version in JOURNALS:
        header = {"bug_type": "211", "timestamp": stamp, "os_version": version,
                  "incident_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, day)).upper()}
        body = json.dumps({"message": {"name": "com.apple.example", "count": 1}})
        put_file(folder / f"Analytics-Journal-{day}.ips",
                 (json.dumps(header) + "\n" + body + "\n").encode())
    put_file(folder / "Analytics-Day-2023-06-01-020004.ips", b"{}\n")  # (not a journal)


def write_dump(folder: str | Path, spec: DumpSpec | None = None) -> Path:
    """Write a synthetic dump into ``folder`` (created); return the folder."""
    spec = spec or DumpSpec()
    top = Path(folder)
    root = top / spec.prefix if spec.prefix else top
    root.mkdir(parents=True, exist_ok=True)
    w = _DumpWriter(root, spec)
    for part in (ios._sms, ios._whatsapp, ios._safari, ios._system,
                 ios._other_messengers, ios_extra.add):
        part(w)
    put_file(root / SYSTEM_VERSION, plistlib.dumps(
        {"ProductName": "iPhone OS", "ProductVersion": spec.version(),
         "ProductBuildVersion": "20F66"}))
    put_file(root / "private/var/db/diagnostics/shutdown.log", shutdown_log(spec.planted),
             SHUTDOWN_AT[-1])
    # an older, rotated log (iOS keeps shutdown.0.log, shutdown.1.log ... beside it);
    # the planted one holds a process that only it names
    put_file(root / "private/var/db/diagnostics/shutdown.0.log",
             rotated_log(spec.planted), SHUTDOWN_AT[0] - 86_400)
    _netusage(root, spec.planted)
    # the programs of the system daemons that used the network (a full file system
    # extraction holds the system volume too); the planted processes have none
    for program in ("usr/sbin/mDNSResponder", "usr/libexec/nsurlsessiond",
                    "System/Library/PrivateFrameworks/MobileBackup.framework/BackupAgent2"):
        put_file(root / program, b"\xcf\xfa\xed\xfe", T0 - 86_400 * 30, 0o755)
    (root / "private/var/tmp").mkdir(parents=True, exist_ok=True)
    _cache_db(root, spec.planted)
    _webkit_folders(root, spec.planted)
    _journals(root)
    _analytics_db(root, spec.planted)
    for i, app in enumerate(ios_extra.applications(spec.planted).values()):
        meta = app["iTunesMetadata"] if isinstance(app, dict) else b""
        put_file(root / f"private/var/containers/Bundle/Application/{uuid.UUID(int=i + 1)}"
                 / "iTunesMetadata.plist", meta if isinstance(meta, bytes) else b"")
    site = PLANTED_FS["webkit_domain"] if spec.planted else "www.example.org"
    local = root / "private/var/mobile/Library/WebKit/WebsiteData/LocalStorage"
    put_file(local / f"https_{site}_0.localstorage", b"SQLite format 3\x00" + bytes(84),
             T0 + 700)
    os.utime(local, (T0 + 760, T0 + 760))
    if spec.planted:
        put_file(root / PLANTED_FS["file_path"].lstrip("/"), b"\x00" * 16, T0 + 3_600)
        put_file(root / "private/var/db" / PLANTED_FS["executable"], b"\xcf\xfa\xed\xfe",
                 T0 + 3_600, 0o755)
    else:
        put_file(root / "private/var/tmp/com.apple.example.cache", b"\x00" * 16)
    return top
