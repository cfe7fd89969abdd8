"""Generated iOS sysdiagnoses (``check-sysdiagnose``), built from public descriptions of
what the phone writes: one folder ``sysdiagnose_<YYYY.MM.DD_HH-MM-SS+ZZZZ>_iPhone-OS_
iPhone_<build>`` holding ``remotectl_dumpstate.txt`` (``remotectl dumpstate``: each
device, its ``Properties: {`` block of ``key => value`` lines, tab-indented),
``logs/MobileActivation/collection_oob_request.txt`` (the activation request: a request
line, headers, then ``BODY:`` and its JSON), ``logs/appinstallation/appstored.sqlitedb``
(older iOS: ``asset.sinfs_data``, a plist list of ``{sinf: <data>}`` whose bytes hold
``name<account>\\0``, and ``job_software.store_account_name``), ``sysdiagnose.log`` (it
names the archive it writes) and ``system_logs.logarchive/Extra/shutdown.log`` (with a
rotated ``shutdown.0.log``), packed as the phone packs it: a gzip-compressed tar whose
members carry AppleDouble ``._`` sidecars (macOS's tar adds them).

``planted=True`` puts Pegasus processes in the shutdown logs (``ios_fs.PLANTED_FS``).
"""

from __future__ import annotations

import gzip
import io
import json
import plistlib
import tarfile
from pathlib import Path

import msgspec

from spywall.samples.ios import T0, sqlite_bytes
from spywall.samples.ios_fs import put_file, rotated_log, shutdown_log

NAME = "sysdiagnose_2023.06.13_15-12-19+0200_iPhone-OS_iPhone_20F66"
ARCHIVE = NAME + ".tar.gz"


class SysdiagnoseSpec(msgspec.Struct, frozen=True):
    planted: bool = True
    product_type: str = "iPhone14,2"
    version: str = "16.5"
    build: str = "20F66"
    serial: str = "F2LXK0AAPLHW"
    appstored: bool = True      # older iOS kept it in a sysdiagnose
    activation: bool = True


def dumpstate(spec: SysdiagnoseSpec) -> bytes:
    """``remotectl dumpstate``: the local device, then a paired one (a watch); only the
    first device's properties describe the phone."""
    props = {"AppleInternal": "false", "BuildVersion": spec.build, "DeviceClass": "iPhone",
             "HWModelStr": "D63AP", "OSVersion": spec.version, "ProductName": "iPhone OS",
             "ProductType": spec.product_type, "RegionCode": "LL", "RegionInfo": "LL/A",
             "SerialNumber": spec.serial}
    lines = ["Local device", "\tUUID: 8A1F44C2-5D2B-4C1E-9E0F-3B6A7C8D9E0F",
             f"\tProduct Type: {spec.product_type}", f"\tOS Build: {spec.version} "
             f"({spec.build})", "\tMessaging Protocol Version: 3", "\tProperties: {"]
    lines += [f"\t\t{k} => {v}" for k, v in props.items()]
    lines += ["\t}", "\tServices:", "\t\tcom.apple.mobile.lockdown.remote.trusted",
              "Found localbridge (bridge)", "\tProperties: {",
              "\t\tProductType => Watch6,2", "\t\tSerialNumber => WATCHSERIAL0", "\t}"]
    return ("\n".join(lines) + "\n").encode()


def activation(spec: SysdiagnoseSpec) -> bytes:
    body = {"serial-number": spec.serial, "productType": spec.product_type,
            "productName": "iPhone OS", "imei": "356789012345678", "os-version": spec.version,
            "udid": "00008110-000A1B2C3D4E5F60", "meid": "35678901234567", "os-build":
            spec.build, "capabilities": {"cellular": True}}
    return ("POST https://humb.apple.com/humbug/baa HTTP/1.1\n"
            "HEADERS: {\"Content-Type\": \"application/json\"}\n"
            f"BODY: {json.dumps(body)}\n").encode()


def appstored() -> tuple[bytes, bytes]:
    sinf = b"\x00\x00\x01\x00sinf" + b"\x00" * 12 + b"nameJane Appleseed\x00\x00key\x01\x02"

    def fill(conn: object) -> None:
        import sqlite3

        assert isinstance(conn, sqlite3.Connection)
        conn.execute("INSERT INTO asset (sinfs_data) VALUES (?)", (b"not a plist",))
        conn.execute("INSERT INTO asset (sinfs_data) VALUES (?)",
                     (plistlib.dumps([{"id": 0, "sinf": sinf}], fmt=plistlib.FMT_BINARY),))
        conn.executemany("INSERT INTO job_software (store_account_name) VALUES (?)",
                         [(None,), ("jane@example.org",)])

    return sqlite_bytes("CREATE TABLE asset (pid INTEGER PRIMARY KEY, sinfs_data BLOB); "
                        "CREATE TABLE job_software (pid INTEGER PRIMARY KEY, "
                        "store_account_name TEXT);", fill, wal=True)


def sysdiagnose_log() -> bytes:
    return ("Jun 13 15:12:19 sysdiagnose[812] <Notice>: sysdiagnose (full) requested\n"
            "Jun 13 15:14:02 sysdiagnose[812] <Notice>: Output path: /private/var/mobile/"
            "Library/Logs/CrashReporter/DiagnosticLogs/sysdiagnose/" + ARCHIVE + "\n").encode()


def files(spec: SysdiagnoseSpec | None = None) -> dict[str, bytes]:
    """Path (below the sysdiagnose folder) -> content."""
    spec = spec or SysdiagnoseSpec()
    out = {"remotectl_dumpstate.txt": dumpstate(spec), "sysdiagnose.log": sysdiagnose_log(),
           "system_logs.logarchive/Extra/shutdown.log": shutdown_log(spec.planted),
           "system_logs.logarchive/Extra/shutdown.0.log": rotated_log(spec.planted),
           "ps.txt": b"USER PID COMMAND\nroot 1 /sbin/launchd\n"}
    if spec.activation:
        out["logs/MobileActivation/collection_oob_request.txt"] = activation(spec)
    if spec.appstored:
        db, wal = appstored()
        out["logs/appinstallation/appstored.sqlitedb"] = db
        out["logs/appinstallation/appstored.sqlitedb-wal"] = wal
    return out


def write_folder(parent: str | Path, spec: SysdiagnoseSpec | None = None) -> Path:
    """The sysdiagnose extracted: ``parent/<NAME>/...``."""
    root = Path(parent, NAME)
    for rel, data in files(spec).items():
        put_file(root / rel, data, T0)
    return root


def archive(spec: SysdiagnoseSpec | None = None,
            extra: dict[str, bytes] | None = None) -> bytes:
    """The ``.tar.gz``: the folder, then each file (PAX headers, as bsdtar writes), an
    AppleDouble sidecar before each file (as macOS's tar adds them); ``extra``: more
    members, by their full name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folder = tarfile.TarInfo(NAME)
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, T0
        tar.addfile(folder)
        for rel, data in files(spec).items():
            head, _, tail = rel.rpartition("/")
            sidecar = f"{NAME}/{head}/._{tail}" if head else f"{NAME}/._{tail}"
            _add(tar, sidecar, b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
            _add(tar, f"{NAME}/{rel}", data)
        for name, data in (extra or {}).items():
            _add(tar, name, data)
    return gzip.compress(buf.getvalue(), mtime=0)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), T0, 0o644
    tar.addfile(info, io.BytesIO(data))
