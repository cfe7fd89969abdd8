"""File system state of a generated Android capture, as phones and tools write it.

- androidqf ``mounts.json``: the lines of ``mount`` (toybox) as a JSON list:
  ``<device> on <mount point> type <fs> (<options>)``. A stock phone of the
  system-as-root era mounts ``/`` read-only from a dm-verity device, ``/system_ext``,
  ``/product`` and ``/vendor`` read-only ``noatime``, ``/data`` read-write.
- a bugreport's ``FS/proc/<pid>/mountinfo`` (dumpstate adds one per mount namespace),
  proc(5) lines ``id parent major:minor root mount-point options [tags] - fs source
  super-options``; a path with a space is written ``\\040``.
Planted: ``/system`` remounted read-write (what root tools do), ``/vendor`` with
``nodiratime``.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import tempfile
from pathlib import Path

_STOCK = [
    ("/dev/block/dm-8", "/", "ext4", "ro,seclabel,nodev,noatime"),
    ("tmpfs", "/dev", "tmpfs", "rw,seclabel,nosuid,relatime,size=3857212k,mode=755"),
    ("proc", "/proc", "proc", "rw,relatime,gid=3009,hidepid=invisible"),
    ("/dev/block/dm-9", "/system_ext", "ext4", "ro,seclabel,nodev,noatime"),
    ("/dev/block/dm-10", "/product", "ext4", "ro,seclabel,nodev,noatime"),
    ("/dev/block/dm-11", "/vendor", "ext4", "ro,seclabel,nodev,noatime"),
    ("/dev/block/sda21", "/metadata", "ext4", "rw,sync,seclabel,nosuid,nodev,noatime"),
    ("/dev/block/dm-46", "/data", "f2fs", "rw,lazytime,seclabel,nosuid,nodev,noatime"),
    ("/dev/fuse", "/storage/emulated", "fuse", "rw,lazytime,nosuid,nodev,noexec,noatime"),
]
_PLANTED = [
    ("/dev/block/dm-8", "/system", "ext4", "rw,seclabel,relatime"),
    ("/dev/block/sda15", "/vendor/firmware_mnt", "vfat", "ro,nodiratime,context=u:r:fw"),
]


_PER_MOUNT = frozenset(
    {
        "ro",
        "rw",
        "nosuid",
        "nodev",
        "noexec",
        "noatime",
        "nodiratime",
        "relatime",
        "lazytime",
        "sync",
    }
)


def _table(planted: bool) -> list[tuple[str, str, str, str]]:
    return _STOCK + (_PLANTED if planted else [])


def mounts_json(planted: bool) -> bytes:
    return json.dumps(
        [f"{d} on {p} type {t} ({o})" for d, p, t, o in _table(planted)], indent=1
    ).encode()


def mountinfo(planted: bool, crlf: bool = False) -> bytes:
    """One namespace's mountinfo; ``crlf``: line ends as a Windows copy leaves them."""
    lines = []
    for i, (dev, point, fs, opts) in enumerate(_table(planted)):
        # per-mount flags before the separator, the file system's options after it
        flags = [o for o in opts.split(",") if o in _PER_MOUNT]
        rest = [o for o in opts.split(",") if o not in _PER_MOUNT or o in ("ro", "rw")]
        tags = "shared:1 " if point == "/" else ""
        lines.append(
            f"{20 + i} {19 if i else 1} 253:{i} / {point} {','.join(flags)} "
            f"{tags}- {fs} {dev} {','.join(rest)}"
        )
    lines.append("99 20 0:55 / /mnt/media\\040rw rw,nosuid - tmpfs tmpfs rw")
    end = "\r\n" if crlf else "\n"
    return (end.join(lines) + end).encode()


CHROME_EPOCH = 11_644_473_600
# Chrome's History tables as a 2024 Chrome for Android creates them (the visits table
# has grown since the iOS sample's older schema: referrer, opener and sync columns).
HISTORY_SCHEMA = """
CREATE TABLE meta(key LONGVARCHAR NOT NULL UNIQUE PRIMARY KEY, value LONGVARCHAR);
CREATE TABLE urls(id INTEGER PRIMARY KEY AUTOINCREMENT,url LONGVARCHAR,title LONGVARCHAR,
  visit_count INTEGER DEFAULT 0 NOT NULL,typed_count INTEGER DEFAULT 0 NOT NULL,
  last_visit_time INTEGER NOT NULL,hidden INTEGER DEFAULT 0 NOT NULL);
CREATE TABLE visits(id INTEGER PRIMARY KEY AUTOINCREMENT,url INTEGER NOT NULL,
  visit_time INTEGER NOT NULL,from_visit INTEGER,external_referrer_url TEXT,
  transition INTEGER DEFAULT 0 NOT NULL,segment_id INTEGER,
  visit_duration INTEGER DEFAULT 0 NOT NULL,
  incremented_omnibox_typed_score BOOLEAN DEFAULT FALSE NOT NULL,opener_visit INTEGER,
  originator_cache_guid TEXT,originator_visit_id INTEGER,originator_from_visit INTEGER,
  originator_opener_visit INTEGER,is_known_to_sync BOOLEAN DEFAULT FALSE NOT NULL,
  consider_for_ntp_most_visited BOOLEAN DEFAULT FALSE NOT NULL,visited_link_id INTEGER
  DEFAULT 0 NOT NULL,app_id TEXT);
INSERT INTO meta VALUES('version', '67'), ('last_compatible_version', '16');
"""


def chrome_history(urls: list[tuple[str, str, float]]) -> bytes:
    """A Chromium ``History`` database (its ``urls`` / ``visits`` tables as Chrome
    creates them) with one visit per (url, title, unix time); times are microseconds
    since 1601."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "History")
        conn = sqlite3.connect(path)
        try:
            conn.executescript(HISTORY_SCHEMA)
            for i, (url, title, unix) in enumerate(urls, 1):
                t = int((unix + CHROME_EPOCH) * 1_000_000)
                conn.execute(
                    "INSERT INTO urls (id, url, title, visit_count, last_visit_time) "
                    "VALUES (?,?,?,1,?)",
                    (i, url, title, t),
                )
                conn.execute(
                    "INSERT INTO visits (id, url, visit_time, from_visit, transition) "
                    "VALUES (?,?,?,?,?)",
                    (i, i, t, i - 1 if i > 1 else 0, 805306368 + (i > 1)),
                )
            conn.commit()
        finally:
            conn.close()
        return path.read_bytes()


def browser_history(planted: bool, domain: str) -> dict[str, bytes]:
    """androidqf's ``browser_history/`` folder: the manifest and Chrome's History (the
    planted one with a visit to ``domain``)."""
    urls = [
        ("https://www.example.com/news", "News", 1705180000.25),
        ("https://docs.example.org/guide", "Guide", 1705180100.0),
    ]
    if planted:
        urls.append((f"https://{domain}/r/8f2e", "", 1705180101.0))
    archive = "browser_history/com.android.chrome/Default/History"
    manifest = {
        "schema_version": 1,
        "databases": [
            {
                "browser": "chrome",
                "package": "com.android.chrome",
                "profile": "Default",
                "device_path": "/data/data/com.android.chrome/app_chrome/Default/History",
                "archive_path": archive,
            }
        ],
    }
    return {
        "browser_history/manifest.json": json.dumps(manifest).encode(),
        archive: chrome_history(urls),
    }


def magisk_modules(planted: bool) -> dict[str, bytes]:
    """androidqf's ``magisk_modules/``: the manifest and each collected ``module.prop``
    (a planted phone has one module, disabled; a clean one none)."""
    modules: list[dict[str, object]] = []
    files: dict[str, bytes] = {}
    if planted:
        prop = "magisk_modules/zygisk_lsposed/module.prop"
        modules.append(
            {
                "device_path": "/data/adb/modules/zygisk_lsposed",
                "directory_name": "zygisk_lsposed",
                "module_prop_status": "collected",
                "module_prop_path": prop,
                "state_files": ["disable"],
                "state_files_complete": True,
            }
        )
        files[prop] = (
            b"# a Magisk module\nid=zygisk_lsposed\nname=Zygisk - LSPosed\n"
            b"version=v1.9.2 (7024)\nversionCode=7024\nauthor=LSPosed Developers\n"
            b"description=Another enhanced implementation of Xposed Framework.\n"
            b"updateJson=https://lsposed.github.io/LSPosed/release/zygisk.json\n"
        )
    manifest = {"schema_version": 1, "modules": modules}
    return {MAGISK_MANIFEST: json.dumps(manifest).encode(), **files}


MAGISK_MANIFEST = "magisk_modules/manifest.json"
ADB_KEY = "QAAAAMz1c2FtcGxlIGFkYiBob3N0IGtleSBmb3Igc3B5d2FsbCB0ZXN0cw=="


def sfslog(lines: list[str] | None = None) -> bytes:
    """A Samsung ``sfslog.N.gz`` (gzip text) with adb and USB events as the system
    framework logs them (times with the phone's GMT offset)."""
    body = (
        lines
        if lines is not None
        else [
            "24-01-14 (GMT+01:00) 22:10:01.120  1234 I UsbDeviceManager: USB UEVENT: "
            "{USB_STATE=CONNECTED, SUBSYSTEM=android_usb, SEQNUM=4211, ACTION=change, "
            "DEVPATH=/devices/virtual/android_usb/android0}",
            "24-01-14 (GMT+01:00) 22:10:03.004  1234 I AdbDebuggingManager: Logging key "
            f"{ADB_KEY} analyst@forensic-pc, state = 2, alwaysAllow = true, "
            "lastConnectionTime = 1705266603004, authWindow = 604800000",
            "24-01-14 (GMT+01:00) 22:11:00.500  1234 I UsbHostManager: USB device attached: "
            "vidpid 0781:5581 mfg/product/ver/serial SanDisk/Ultra/1.00/4C530001 "
            "hasAudio/HID/Storage: false/false/true",
            "24-01-14 (GMT+01:00) 22:11:30.000  1234 I ActivityManager: Start proc 4321:x/u0a1",
        ]
    )
    return gzip.compress(("\n".join(body) + "\n").encode(), mtime=0)


def indicator_file(path: Path, name: str, pattern: str) -> Path:
    """A one-indicator STIX2 bundle (malware ``name``, STIX ``pattern``) written to
    ``path``, for a test's own indicator."""
    path.write_text(
        json.dumps(
            {
                "type": "bundle",
                "objects": [
                    {"type": "malware", "id": "malware--1", "name": name},
                    {"type": "indicator", "id": "indicator--1", "pattern": pattern},
                ],
            }
        )
    )
    return path
