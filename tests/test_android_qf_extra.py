"""androidqf magisk_modules/ and Samsung sfslog.N.gz (MVT's magisk_modules and
samsung_sfs_logs): records, unsafe paths, gzip members and bombs, time zones."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from spywall.android import qf_extra
from spywall.android.check import check_capture
from spywall.iocs import IocIndex
from spywall.limits import Limits
from spywall.samples import android as gen
from spywall.samples import android_fs

MODS = qf_extra.QF_EXTRA_MODULES


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def _base() -> dict[str, bytes]:
    return gen.androidqf_files(False, with_bugreport=False)


def _check(
    files: dict[str, bytes], tmp: Path, index: IocIndex, limits: Limits | None = None
) -> object:
    return check_capture(gen.write_tree(files, tmp), index, modules=MODS, limits=limits)


def test_magisk_module_recorded_and_reported(tmp_path: Path, index: IocIndex) -> None:
    files = {**_base(), **android_fs.magisk_modules(True)}
    out = _check(files, tmp_path / "qf", index)
    rep = out.report  # type: ignore[attr-defined]
    assert [(f.rule, f.detail["module"]) for f in rep.all_findings()] == [
        ("android-magisk-module", "zygisk_lsposed")
    ]
    [rec] = out.ctx.records["magisk_modules"]  # type: ignore[attr-defined]
    assert {
        k: rec.data[k]
        for k in (
            "id",
            "name",
            "version_code",
            "author",
            "disabled",
            "removal_pending",
            "state_files_complete",
            "update_json",
        )
    } == {
        "id": "zygisk_lsposed",
        "name": "Zygisk - LSPosed",
        "version_code": "7024",
        "author": "LSPosed Developers",
        "disabled": True,
        "removal_pending": False,
        "state_files_complete": True,
        "update_json": "https://lsposed.github.io/LSPosed/release/zygisk.json",
    }
    clean = _check({**_base(), **android_fs.magisk_modules(False)}, tmp_path / "c", index)
    assert clean.report.all_findings() == []  # type: ignore[attr-defined]
    assert clean.report.modules[0].status == "ok"  # type: ignore[attr-defined]


def test_magisk_unsafe_prop_path_and_update_url(tmp_path: Path) -> None:
    android_fs.indicator_file(
        tmp_path / "i.stix2", "Implant", "[domain-name:value = 'updates.implant.example']"
    )
    files = _base()
    files["magisk_modules/evil/module.prop"] = (
        b"id=evil\nupdateJson=https://updates.implant.example/u.json\n"
    )
    files["secret.prop"] = b"id=leak\n"
    files[qf_extra.MAGISK_MANIFEST] = json.dumps(
        {
            "schema_version": 1,
            "modules": [
                {
                    "directory_name": "evil",
                    "module_prop_status": "collected",
                    "module_prop_path": "magisk_modules/evil/module.prop",
                    "state_files": "x",
                },
                {
                    "directory_name": "escape",
                    "module_prop_status": "collected",
                    "module_prop_path": "magisk_modules/../secret.prop",
                },
                "junk",
            ],
        }
    ).encode()
    out = _check(files, tmp_path / "qf", IocIndex.load([tmp_path / "i.stix2"]))
    recs = {r.data["directory_name"]: r.data for r in out.ctx.records["magisk_modules"]}  # type: ignore[attr-defined]
    assert recs["escape"]["id"] is None  # the prop outside magisk_modules/ is not read
    assert (recs["evil"]["disabled"], recs["evil"]["state_files_complete"]) == (None, False)
    rules = sorted(f.rule for f in out.report.all_findings())  # type: ignore[attr-defined]
    assert rules == ["android-magisk-module", "android-magisk-module", "ioc-domain"]


def test_magisk_schema(tmp_path: Path, index: IocIndex) -> None:
    files = {**_base(), qf_extra.MAGISK_MANIFEST: b'{"schema_version": 2, "modules": []}'}
    assert _check(files, tmp_path / "qf", index).report.modules[0].status == (  # type: ignore[attr-defined]
        "schema-unknown"
    )


def test_sfs_events_and_times(tmp_path: Path, index: IocIndex) -> None:
    files = {
        **_base(),
        "logs/sfslog.0.gz": android_fs.sfslog(),
        "logs/sfslog.1.gz": android_fs.sfslog()[:-12],
    }  # the second cut short
    out = _check(files, tmp_path / "qf", index)
    runs = {m.name: m.status for m in out.report.modules}  # type: ignore[attr-defined]
    assert runs["samsung_sfs_logs"] == "error"  # a log cut short is said, not skipped
    files["logs/sfslog.1.gz"] = android_fs.sfslog() + android_fs.sfslog()  # two members
    out = _check(files, tmp_path / "qf2", index)
    recs = out.ctx.records["samsung_sfs_logs"]  # type: ignore[attr-defined]
    assert [r.event for r in recs] == ["usb_state", "adb_connection", "usb_device_attached"] * 3
    local = datetime(2024, 1, 14, 22, 10, 3, 4000, tzinfo=timezone(timedelta(hours=1)))
    adb = recs[1]
    assert adb.timestamp == local.astimezone(UTC).isoformat().replace("+00:00", "Z")
    digest = hashlib.md5(base64.b64decode(android_fs.ADB_KEY)).hexdigest().upper()
    assert (adb.data["fingerprint"], adb.data["user"], adb.data["state_name"]) == (
        ":".join(digest[i : i + 2] for i in range(0, 32, 2)),
        "analyst@forensic-pc",
        "user_allowed",
    )
    usb = recs[2].data
    assert (usb["vendor_id"], usb["product_id"], usb["has_storage"], usb["serial"]) == (
        "0781",
        "5581",
        True,
        "4C530001",
    )
    assert recs[0].data["usb_state"] == "CONNECTED"
    assert out.report.all_findings() == []  # type: ignore[attr-defined]


def test_sfs_gzip_bomb_is_capped(tmp_path: Path, index: IocIndex) -> None:
    bomb = gzip.compress(b"\0" * (20 << 20), mtime=0)
    files = {**_base(), "sfslog.0.gz": bomb}
    out = _check(files, tmp_path / "qf", index, Limits(max_stream_bytes=4 << 20))
    run = next(m for m in out.report.modules if m.name == "samsung_sfs_logs")  # type: ignore[attr-defined]
    assert run.status == "error"
    assert "decompresses past" in run.message


def test_sfs_lines() -> None:
    assert qf_extra.sfs_event("garbage") is None
    assert (
        qf_extra.sfs_event(
            "24-02-30 (GMT+00:00) 10:00:00.000 1 I UsbDeviceManager: USB UEVENT: "
            "{USB_STATE=CONFIGURED}"
        )
        is None
    )  # no 30 February
    got = qf_extra.sfs_event(
        "23-12-31 (GMT-05:30) 23:00:00.250 9 I UsbDeviceManager: USB UEVENT: "
        "{USB_STATE=DISCONNECTED, ACTION=change}\r\n"
    )
    assert got is not None
    assert got[:2] == ("2024-01-01T04:30:00.250000Z", "usb_state")
