"""check-android records carry MVT's field names and value forms (the results folder's
``<module>.json`` is a drop-in for MVT's)."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spywall.android import ps, qf_modules
from spywall.android.check import MODULES, check_capture
from spywall.android.common import iso_any, mvt_form
from spywall.iocs import IocIndex
from spywall.samples import android as gen


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def _only(*names: str) -> tuple[object, ...]:
    return tuple(m for m in MODULES if m.name in names)


@pytest.mark.parametrize("value", [1705180000000, 1705181000, 1705181000.25, 1700000000.123456])
def test_mvt_form_is_mvts_datetime_text(value: float) -> None:
    seconds = value / 1000 if value > 1e11 else value
    want = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    ts = iso_any(value)
    assert ts is not None
    assert mvt_form(ts) == want


def test_sms_fields_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "backup.ab"
    path.write_bytes(gen.backup_ab(True))
    out = check_capture(path, index, modules=_only("sms"))  # type: ignore[arg-type]
    recs = {r.data["body"]: r.data for r in out.ctx.records["sms"]}
    sms = recs[f"Urgent: read this https://{gen.PREDATOR_DOMAIN}/a1b2c3 now"]
    assert {
        k: sms[k] for k in ("address", "date", "type", "read", "direction", "isodate", "links")
    } == {
        "address": "+381600000001",
        "date": "1705200000000",
        "type": "1",
        "read": "0",
        "direction": "received",
        "isodate": "2024-01-14 02:40:00.000000",
        "links": f"https://{gen.PREDATOR_DOMAIN}/a1b2c3",
    }
    mms = recs["Your invoice: https://mobnetlink1.com/inv/77"]
    assert (mms["msg_box"], mms["date_sent"], mms["direction"], mms["address"]) == (
        "1",
        "0",
        "received",
        "+381600000002",
    )
    assert "mms_addresses" not in mms  # a list: not a record field
    assert recs["See you at 8 at the cafe"]["links"] == ""


PS = (
    "LABEL                          USER           PID  PPID     VSZ    RSS WCHAN            "
    "ADDR S NAME\n"
    "u:r:init:s0                    root             1     0 1234567  89012 do_epoll_wait       "
    "0 S init\n"
    "u:r:kernel:s0                  root             2     0       0      0                     "
    "0 S [kthreadd]\n"  # WCHAN printed blank
    "u:r:gatekeeperd:s0             system         801     1 1234567   4012 binder_ioctl        "
    "0 S gatekeeperd\n"
    "u:r:untrusted_app:s0:c155      u0_a155       4242   650 1234567  89012 do_epoll_wait       "
    f"0 S {gen.NOVISPY_APP}\n"
    "cut short\n"
)


def test_ps_rows_as_mvt_names_them() -> None:
    rows, bad = ps.table(PS.splitlines())
    assert bad == 1
    assert [r.name for r in rows] == ["init", "kthreadd", "gatekeeperd", gen.NOVISPY_APP]
    kthread = rows[1]
    assert kthread.kernel_thread
    assert kthread.mvt_fields() == {
        "label": "u:r:kernel:s0",
        "user": "root",
        "pid": 2,
        "ppid": 0,
        "virtual_memory_size": 0,
        "resident_set_size": 0,
        "wchan": "",
        "aprocress": "0",
        "stat": "S",
        "proc_name": "kthreadd",
    }


def test_gatekeeperd_is_not_pegasus_on_android(tmp_path: Path, index: IocIndex) -> None:
    """Pegasus's published process names include ``gatekeeperd`` (an iOS name); every
    Android phone runs a ``gatekeeperd`` daemon. MVT skips it; so does spywall."""
    assert index.match("process", "gatekeeperd")  # the collision exists
    files = gen.androidqf_files(False, with_bugreport=False)
    files["ps.txt"] = PS.encode()
    out = check_capture(gen.write_tree(files, tmp_path / "qf"), index, modules=_only("processes"))  # type: ignore[arg-type]
    found = {
        (f.rule, f.indicator.matched if f.indicator else None) for f in out.report.all_findings()
    }
    assert found == {("ioc-app-id", gen.NOVISPY_APP)}
    recs = {r.data["proc_name"]: r.data for r in out.ctx.records["processes"]}
    assert recs["init"]["ppid"] == 0
    assert recs["init"]["wchan"] == "do_epoll_wait"
    assert recs["kthreadd"]["kernel_thread"] is True


def test_bugreport_process_records_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "br.zip"
    path.write_bytes(gen.bugreport_zip(True))
    out = check_capture(path, index, modules=_only("bugreport_processes"))  # type: ignore[arg-type]
    recs = out.ctx.records["bugreport_processes"]
    assert {
        "user",
        "pid",
        "ppid",
        "virtual_memory_size",
        "resident_set_size",
        "wchan",
        "aprocress",
        "stat",
        "proc_name",
        "label",
        "kernel_thread",
    } <= set(recs[0].data)


def test_package_records_and_mvt_package_lists(tmp_path: Path, index: IocIndex) -> None:
    files = gen.androidqf_files(False, with_bugreport=False)
    pkgs = json.loads(files["packages.json"])
    extra = [("com.wssyncmldm", True), ("com.saurik.substrate", False), ("com.policydm", False)]
    for name, disabled in extra:
        pkgs.append(
            {
                "name": name,
                "installer": "null",
                "uid": 1000,
                "disabled": disabled,
                "system": True,
                "third_party": False,
                "files": [],
            }
        )
    files["packages.json"] = json.dumps(pkgs).encode()
    out = check_capture(gen.write_tree(files, tmp_path / "qf"), index, modules=_only("packages"))  # type: ignore[arg-type]
    assert sorted((f.rule, str(f.detail["package"])) for f in out.report.all_findings()) == [
        ("android-protection-app-disabled", "com.wssyncmldm"),
        ("android-root-app", "com.saurik.substrate"),
    ]
    rec = next(r.data for r in out.ctx.records["packages"] if r.data["name"] == "com.wssyncmldm")
    assert rec == {
        "name": "com.wssyncmldm",
        "installer": "null",
        "uid": 1000,
        "disabled": True,
        "system": True,
        "third_party": False,
        "files": 0,
    }


@pytest.mark.parametrize(
    ("mode", "executable", "directory"),
    [
        ("-rwxr-xr-x", True, False),
        ("-rw-r--r--", False, False),
        ("drwxr-xr-x", False, True),
        ("0755", True, False),
        ("0600", False, False),
        ("644", False, False),
        (str(stat.S_IFREG | 0o755), True, False),
        (str(stat.S_IFDIR | 0o755), False, True),
        (str(stat.S_IFREG | 0o600), False, False),
        ("0999", False, False),
        ("", False, False),
        # Go's FileMode.String(), as androidqf's collector writes modes: type and set-id
        # letters (dalTLDpSugct?) before the permissions
        ("urwxr-xr-x", True, False),
        ("ugrwxr-x--x", True, False),
        ("Lrwxrwxrwx", False, False),
        ("Dcrw-rw----", False, False),
        ("dtrwxrwx--x", False, True),
        ("4755", True, False),
    ],
)
def test_file_modes(mode: str, executable: bool, directory: bool) -> None:
    assert (qf_modules._executable(mode), qf_modules._directory(mode)) == (executable, directory)


def test_file_mode_agrees_with_stat_filemode() -> None:
    """ls-style modes: Python's ``stat.filemode`` writes every permission, set-id and
    sticky combination of each file type; ``file_mode`` reads them all back."""
    kinds = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "link",
             stat.S_IFCHR: "other", stat.S_IFIFO: "other", stat.S_IFSOCK: "other"}
    for kind, name in kinds.items():
        for bits in range(0o10000):
            assert qf_modules.file_mode(stat.filemode(kind | bits)) == (name, bits)
    assert qf_modules.file_mode("urwxr-xr-x") == ("file", 0o4755)
    assert qf_modules.file_mode(str(stat.S_IFREG | 0o6750)) == ("file", 0o6750)
    assert qf_modules.file_mode("rwxr-xr-x!") is None


def test_setuid_and_tmp_files(tmp_path: Path, index: IocIndex) -> None:
    """Modes as the collector writes them. MVT (2026.10, run by hand on these entries)
    raises its suspicious-path alert for both /data/local/tmp entries, calling both
    executable (an x in the mode, the link's too); spywall calls the link a file (a link
    is not run) and adds the set-user-ID heuristic, which MVT has not."""
    files = gen.androidqf_files(False, with_bugreport=False)
    entries = json.loads(files["files.json"])
    entries += [
        {"path": "/data/local/tmp/e", "size": 9, "mode": "urwxr-xr-x", "user_id": 0,
         "group_id": 2000, "changed_time": 1705269601, "modified_time": 1705269602,
         "access_time": 1705269600, "context": "u:object_r:shell_data_file:s0"},
        {"path": "/system/xbin/su", "size": 9, "mode": "ugrwxr-x--x", "user_id": 0},
        {"path": "/system/bin/run-as", "size": 9, "mode": "-rwxr-x---", "user_id": 0},
        {"path": "/data/local/tmp/link", "size": 9, "mode": "Lrwxrwxrwx"},
    ]
    files["files.json"] = json.dumps(entries).encode()
    out = check_capture(gen.write_tree(files, tmp_path / "qf"), index, modules=_only("files"))  # type: ignore[arg-type]
    assert sorted((f.rule, f.detail["file"]) for f in out.report.all_findings()) == [
        ("android-setuid-file", "/data/local/tmp/e"),
        ("android-setuid-file", "/system/xbin/su"),
        ("android-tmp-executable", "/data/local/tmp/e"),
        ("android-tmp-file", "/data/local/tmp/link"),
    ]


def test_file_records_and_tmp_rules_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    files = gen.androidqf_files(False, with_bugreport=False)
    entries = json.loads(files["files.json"])
    entries.append(
        {
            "path": "/data/local/tmp/notes.txt",
            "size": 3,
            "mode": "-rw-rw-rw-",
            "user_name": "shell",
            "group_name": "shell",
            "access_time": 1705269600,
            "changed_time": 1705269601,
            "modified_time": 1705269602,
            "context": "u:object_r:shell_data_file:s0",
            "error": "",
            "sha256": "",
        }
    )
    files["files.json"] = json.dumps(entries).encode()
    out = check_capture(gen.write_tree(files, tmp_path / "qf"), index, modules=_only("files"))  # type: ignore[arg-type]
    # androidqf's own collector (executable, in /data/local/tmp) is not reported
    assert [(f.rule, f.detail["file"]) for f in out.report.all_findings()] == [
        ("android-tmp-file", "/data/local/tmp/notes.txt")
    ]
    rec = next(
        r.data for r in out.ctx.records["files"] if r.data["path"] == "/data/local/tmp/notes.txt"
    )
    assert {
        k: rec[k] for k in ("user_name", "access_time", "changed_time", "modified_time", "context")
    } == {
        "user_name": "shell",
        "access_time": "2024-01-14 22:00:00.000000",
        "changed_time": "2024-01-14 22:00:01.000000",
        "modified_time": "2024-01-14 22:00:02.000000",
        "context": "u:object_r:shell_data_file:s0",
    }


def test_result_folder_names_and_alert_shapes_as_mvt(tmp_path: Path) -> None:
    from spywall.cli import main

    (tmp_path / "ev").mkdir()
    ev = gen.write_tree(gen.androidqf_files(True), tmp_path / "ev" / "qf")
    out = tmp_path / "out"
    assert main(["check-android", str(ev), "--output", str(out), "-q"]) == 1
    names = {p.name for p in out.iterdir()}
    assert {
        "aqf_packages.json",
        "aqf_processes.json",
        "aqf_get_prop.json",
        "aqf_settings.json",
        "aqf_files.json",
        "aqf_log_timestamps.json",
        "sms.json",
        "root_binaries.json",
        "mounts.json",
        "browser_history.json",
        "dumpsys_packages.json",
        "dumpsys_get_prop.json",
        "dumpsys_appops.json",
        "dumpsys_db_info.json",
        "dumpsys_adb_state.json",
        "dumpsys_battery_daily.json",
        "dumpsys_battery_history.json",
        "dumpsys_platform_compat.json",
        "dumpsys_receivers.json",
        "dumpsys_activities.json",
        "dumpsys_accessibility.json",
        "settings.json",
        "processes.json",
        "bugreport_timestamps.json",
        "tombstones.json",
        "mounts_detected.json",
        "sms_detected.json",
        "browser_history_detected.json",
        "alerts.json",
        "timeline.csv",
        "info.json",
        "command.log",
    } <= names
    for name in (
        "mounts_detected.json",
        "browser_history_detected.json",
        "settings_detected.json",
        "aqf_packages_detected.json",
    ):
        alerts = json.loads((out / name).read_text())
        assert alerts
        for a in alerts:
            assert {
                "level",
                "module",
                "message",
                "event_time",
                "event",
                "matched_indicator",
            } <= set(a)
            assert a["module"] == name.removesuffix("_detected.json")
            assert a["level"] in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL")
    mounts = json.loads((out / "mounts_detected.json").read_text())
    # a read-write /system high, nodiratime on a vendor partition medium (MVT 2026.x)
    assert {(a["level"], a["event"]["mount_point"]) for a in mounts} == {
        ("HIGH", "/system"), ("MEDIUM", "/vendor/firmware_mnt")}


def test_dumpsys_package_records_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "br.zip"
    path.write_bytes(gen.bugreport_zip(True))
    out = check_capture(path, index, modules=_only("dumpstate_packages"))  # type: ignore[arg-type]
    rec = next(
        r
        for r in out.ctx.records["dumpstate_packages"]
        if r.data["package_name"] == gen.NOVISPY_APP
    )
    assert {
        k: rec.data[k]
        for k in ("uid", "version_code", "first_install_time", "last_update_time", "installer")
    } == {
        "uid": rec.data["uid"],
        "version_code": rec.data["version_code"],
        "first_install_time": rec.timestamp.replace("T", " ") if rec.timestamp else None,
        "last_update_time": rec.data["last_update_time"],
        "installer": "com.google.android.packageinstaller",
    }
    assert str(rec.data["uid"]).isdigit()
    assert str(rec.data["version_code"]).endswith("minSdk=28 targetSdk=34")


def test_tombstone_records_and_privileged_crash(tmp_path: Path, index: IocIndex) -> None:
    files = gen.bugreport_files(False)
    text = gen.tombstone("/system/bin/surfaceflinger", "/system/bin/surfaceflinger")
    text = text.replace("uid: 10155", "uid: 1000").replace(
        "signal 11",
        "Abort message: 'Out of memory'\nsignal 6 (SIGABRT), code -1 (SI_QUEUE)\nsignal 11",
    )
    files["FS/data/tombstones/tombstone_07"] = text.encode()
    path = tmp_path / "br.zip"
    path.write_bytes(gen.zip_files(files))
    out = check_capture(path, index, modules=_only("tombstones"))  # type: ignore[arg-type]
    [f] = out.report.all_findings()
    assert (f.rule, f.detail["uid"], f.detail["file"]) == (
        "android-privileged-crash",
        1000,
        "FS/data/tombstones/tombstone_07",
    )
    rec = next(
        r.data
        for r in out.ctx.records["tombstones"]
        if r.data["file_name"] == "FS/data/tombstones/tombstone_07"
    )
    assert {
        k: rec[k]
        for k in (
            "pid",
            "tid",
            "process_name",
            "binary_path",
            "uid",
            "abort_message",
            "build_fingerprint",
            "file_timestamp",
        )
    } == {
        "pid": 4242,
        "tid": 4251,
        "process_name": "/system/bin/sur",
        "binary_path": "/system/bin/surfaceflinger",
        "uid": 1000,
        "abort_message": "Out of memory",
        "build_fingerprint": "google/oriole/oriole:14/UP1A.231105.003/11010452:user/release-keys",
        "file_timestamp": "2024-01-15 10:00:02.000000",
    }


def test_resolver_and_accessibility_records_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "br.zip"
    path.write_bytes(gen.bugreport_zip(True))
    names = ("dumpsys_receivers", "dumpsys_activities", "dumpsys_accessibility")
    out = check_capture(path, index, modules=_only(*names))  # type: ignore[arg-type]
    recv = out.ctx.records["dumpsys_receivers"][0].data
    act = out.ctx.records["dumpsys_activities"][0].data
    acc = out.ctx.records["dumpsys_accessibility"][0].data
    assert set(recv) == {"intent", "package_name", "receiver"}
    assert set(act) == {"intent", "package_name", "activity"}
    assert str(recv["receiver"]).startswith(f"{recv['package_name']}/")
    assert {"package_name", "service", "enabled"} <= set(acc)
    assert str(acc["service"]).startswith(f"{acc['package_name']}/")


def test_battery_daily_records_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "br.zip"
    path.write_bytes(gen.bugreport_zip(True))
    out = check_capture(path, index, modules=_only("dumpsys_battery_daily"))  # type: ignore[arg-type]
    rec = next(
        r.data
        for r in out.ctx.records["dumpsys_battery_daily"]
        if r.data["package_name"] == gen.RCS_APP and r.data["action"] == "uninstall"
    )
    assert (rec["from"], rec["vers"]) == ("2024-01-13 03:00:00", "0")


def test_dbinfo_records_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "br.zip"
    path.write_bytes(gen.bugreport_zip(True))
    out = check_capture(path, index, modules=_only("dumpsys_dbinfo"))  # type: ignore[arg-type]
    rec = out.ctx.records["dumpsys_dbinfo"][0].data
    assert set(rec) == {"isodate", "path", "pid", "action", "sql"}
    assert rec["isodate"] == "2024-01-15 09:50:01.123"  # as dumpsys prints it, as MVT keeps it


def test_battery_history_records_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "br.zip"
    path.write_bytes(gen.bugreport_zip(True))
    out = check_capture(path, index, modules=_only("dumpsys_battery_history"))  # type: ignore[arg-type]
    recs = {
        (r.data["event"], r.data["package_name"]): r.data
        for r in out.ctx.records["dumpsys_battery_history"]
    }
    job = recs["start_job", "com.android.chrome"]
    assert (job["service"], job["uid"], job["time_elapsed"]) == (
        "com.android.chrome/org.chromium.Sync",
        "u0a123",
        "+3h00m00s000ms",
    )
    assert recs["wake", gen.RCS_APP]["service"] == f"{gen.RCS_APP}/.Beacon"
    assert recs["install", "com.whatsapp"]["service"] == ""


def test_adb_key_records_as_mvt(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "br.zip"
    path.write_bytes(gen.bugreport_zip(False))
    out = check_capture(path, index, modules=_only("dumpsys_adb"))  # type: ignore[arg-type]
    [rec] = out.ctx.records["dumpsys_adb"]
    raw = base64.b64decode(str(rec.data["key"]), validate=True)
    digest = hashlib.md5(raw).hexdigest().upper()
    assert rec.data["fingerprint"] == ":".join(digest[i : i + 2] for i in range(0, 32, 2))
    assert rec.data["user"] == "analyst@laptop"


def test_enabled_accessibility_service(tmp_path: Path, index: IocIndex) -> None:
    """MVT raises an accessibility service that matched no indicator: medium when it is
    enabled (and low when it is only installed, which spywall leaves to the record); one
    that matched an indicator is reported as that match alone, as MVT does."""
    files = gen.bugreport_files(True)
    text = files[gen.DUMPSTATE].decode()
    talkback = ("com.google.android.marvin.talkback/"
                "com.google.android.marvin.talkback.TalkBackService")
    text = text.replace("  Enabled services:{", f"  Enabled services:{{{{{talkback}}}, ", 1)
    files[gen.DUMPSTATE] = text.encode()
    path = tmp_path / "br.zip"
    path.write_bytes(gen.zip_files(files))
    out = check_capture(path, index, modules=_only("dumpsys_accessibility"))  # type: ignore[arg-type]
    assert sorted((f.rule, f.detail.get("service")) for f in out.report.all_findings()) == [
        ("android-accessibility-enabled", talkback), ("ioc-app-id", None)]
