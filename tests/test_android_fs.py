"""check-android's mounts module: androidqf mounts.json (``mount`` lines), a bugreport's
FS/proc/<pid>/mountinfo, /proc/mounts lines; awkward input; MVT's heuristics."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.android import mounts as mt
from spywall.android import qf_extra
from spywall.android.capture import ZipSource
from spywall.android.check import check_capture
from spywall.android.fs_modules import FS_MODULES
from spywall.cli import main
from spywall.iocs import IocIndex
from spywall.limits import Limits
from spywall.samples import android as gen
from spywall.samples import android_fs


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def test_mount_line_forms() -> None:
    a = mt.mount_line("/dev/block/dm-12 on / type ext4 (ro,seclabel,noatime)")
    assert a == mt.Mount("/dev/block/dm-12", "/", "ext4", "ro,seclabel,noatime")
    b = mt.mount_line("/dev/block/bootdevice/by-name/system /system ext4 rw,seclabel 0 0\r")
    assert b is not None
    assert (b.device, b.mount_point, b.is_read_write, b.is_system_partition) == (
        "/dev/block/bootdevice/by-name/system",
        "/system",
        True,
        True,
    )
    c = mt.mount_line("/dev/sdb1 /mnt/my\\040disk vfat rw 0 0")
    assert c is not None
    assert c.mount_point == "/mnt/my disk"
    d = mt.mount_line("overlay on /system/etc type overlay")  # no options
    assert d is not None
    assert (d.mount_options, d.is_read_write) == ("", False)
    for junk in ("", "garbage", "/dev/x on /y type", "on type (rw)", "x" * 9000):
        assert mt.mount_line(junk) is None


def test_heuristic_lists_as_mvt() -> None:
    assert mt.Mount("d", "/vendor", "ext4", "ro,noatime").suspicious_options() == []
    assert mt.Mount("d", "/system", "ext4", "ro,noatime").suspicious_options() == ["noatime"]
    assert mt.Mount("d", "/system_dlkm", "ext4", "rw,noatime").suspicious_options() == []
    assert mt.Mount("d", "/data", "f2fs", "rw,noatime").suspicious_options() == []
    assert mt.Mount("d", "/product/app", "ext4", "ro,remount").suspicious_options() == ["remount"]


def test_mountinfo_truncated_and_escaped() -> None:
    text = (
        "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
        "37 36 0:5 / /mnt/a\\040b ro shared:2 propagate_from:1 - tmpfs tmpfs ro\n"
        "38 36 0:6 / /no-separator rw\n"
        "39 36 0:7 / /cut rw -"
    )  # the last line of a dump cut short
    got, bad = mt.mountinfo(text)
    assert [
        (
            m.mount_point,
            m.root,
            m.device,
            m.filesystem_type,
            m.mount_options,
            m.super_options,
            m.major_minor,
        )
        for m in got
    ] == [
        ("/mnt2", "/mnt1", "/dev/root", "ext3", "rw,noatime", "rw,errors=continue", "98:0"),
        ("/mnt/a b", "/", "tmpfs", "tmpfs", "ro", "ro", "0:5"),
    ]
    assert bad == 2


@pytest.mark.skipif(not Path("/proc/self/mountinfo").is_file(), reason="no /proc")
def test_mountinfo_agrees_with_proc_mounts() -> None:
    """The kernel's own two views of one namespace (an independent oracle): the same
    mount points, devices and file system types."""
    info, bad = mt.mountinfo(Path("/proc/self/mountinfo").read_text())
    lines, bad2 = mt.mount_lines(Path("/proc/self/mounts").read_text().splitlines())
    assert (bad, bad2) == (0, 0)
    assert sorted((m.mount_point, m.device, m.filesystem_type) for m in info) == sorted(
        (m.mount_point, m.device, m.filesystem_type) for m in lines
    )


def _run(ev: Path, index: IocIndex) -> tuple[dict[str, object], list[tuple[str, str]], object]:
    out = check_capture(ev, index, modules=FS_MODULES[:1])
    run = out.report.modules[0]
    found = sorted(
        (f.rule, str(f.detail.get("mount_point", ""))) for f in out.report.all_findings()
    )
    return {"status": run.status, "records": run.records, "message": run.message}, found, out


def test_androidqf_and_bugreport(tmp_path: Path, index: IocIndex) -> None:
    ev = gen.write_tree(gen.androidqf_files(True), tmp_path / "bad")
    run, found, out = _run(ev, index)
    assert run["status"] == "ok"
    assert run["message"] == "11 mount(s) in mounts.json; 12 distinct mount(s) in mountinfo"
    assert (
        found
        == [("android-suspicious-mount-options", "/vendor/firmware_mnt")] * 2
        + [("android-system-rw-mount", "/system")] * 2
    )
    recs = out.ctx.records["mounts"]  # type: ignore[attr-defined]
    info = [r.data for r in recs if r.data["source"] == "mountinfo"]
    assert {d["process_ids"] for d in info} == {"1,812"}  # one namespace, two pids
    assert any(d["mount_point"] == "/mnt/media rw" for d in info)
    system = next(d for d in info if d["mount_point"] == "/system")
    assert (system["is_system_partition"], system["is_read_write"], system["device"]) == (
        True,
        True,
        "/dev/block/dm-8",
    )
    clean = gen.write_tree(gen.androidqf_files(False), tmp_path / "clean")
    assert _run(clean, index)[1] == []


def test_missing_and_bad(tmp_path: Path, index: IocIndex) -> None:
    files = gen.androidqf_files(False, with_bugreport=False)
    del files["mounts.json"]
    ev = gen.write_tree(files, tmp_path / "none")
    assert _run(ev, index)[0]["status"] == "skipped"
    for body, status in ((b'{"mounts": 3}', "schema-unknown"), (b"[1, 2", "error")):
        files["mounts.json"] = body
        ev = gen.write_tree(files, tmp_path / status)
        assert _run(ev, index)[0]["status"] == status
    files["mounts.json"] = json.dumps(["nonsense", 7, "/dev/a on /system type ext4 (rw)"]).encode()
    run, found, _ = _run(gen.write_tree(files, tmp_path / "odd"), index)
    assert (run["records"], found) == (1, [("android-system-rw-mount", "/system")])
    assert "2 line(s) of another shape skipped" in str(run["message"])


def test_mount_paths_matched_as_indicators(tmp_path: Path) -> None:
    android_fs.indicator_file(
        tmp_path / "i.stix2", "Implant", "[file:path = '/data/local/tmp/.x/mnt']"
    )
    files = gen.androidqf_files(False, with_bugreport=False)
    files["mounts.json"] = json.dumps(
        ["tmpfs on /data/local/tmp/.x/mnt type tmpfs (rw,nosuid)"]
    ).encode()
    rep = check_capture(
        gen.write_tree(files, tmp_path / "ev"),
        IocIndex.load([tmp_path / "i.stix2"]),
        modules=FS_MODULES,
    ).report
    assert [
        (f.rule, f.indicator.collection if f.indicator else None) for f in rep.all_findings()
    ] == [("ioc-file-path", "Implant")]


def test_sample_mount_lines_parse() -> None:
    lines = json.loads(android_fs.mounts_json(True))
    got, bad = mt.mount_lines(lines)
    assert (len(got), bad) == (len(lines), 0)


TS_MODULES = tuple(m for m in FS_MODULES if m.name.endswith("timestamps"))


def _zipinfo_times(path: Path) -> dict[str, str]:
    """Member times as Info-ZIP's zipinfo reads them (``-T``: yyyymmdd.hhmmss)."""
    out = subprocess.run(
        ["zipinfo", "-T", "-l", str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    got = {}
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 8 and re.fullmatch(r"\d{8}\.\d{6}", cols[-2]):
            d, t = cols[-2].split(".")
            got[cols[-1]] = f"{d[:4]}-{d[4:6]}-{d[6:]} {t[:2]}:{t[2:4]}:{t[4:]}.000000"
    return got


@pytest.mark.skipif(shutil.which("zipinfo") is None, reason="no zipinfo")
def test_bugreport_zip_times_agree_with_zipinfo(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "br.zip"
    path.write_bytes(gen.bugreport_zip(True))
    out = check_capture(path, index, modules=TS_MODULES)
    runs = {m.name: m.status for m in out.report.modules}
    assert runs == {"bugreport_timestamps": "ok", "log_timestamps": "skipped"}
    recs = out.ctx.records["bugreport_timestamps"]
    want = {k: v for k, v in _zipinfo_times(path).items() if k.startswith("FS/")}
    assert {r.data["path"]: r.data["modified_time"] for r in recs} == want
    assert len(want) == 6
    assert {(r.event, r.timestamp) for r in recs} == {("M---", "2024-01-15T10:00:02")}
    assert out.report.all_findings() == []


def test_folder_times_and_androidqf_logs(tmp_path: Path, index: IocIndex) -> None:
    ev = gen.write_tree(gen.androidqf_files(False, with_bugreport=False), tmp_path / "qf")
    when = 1705269600.5  # 2024-01-14T22:00:00.5Z
    for p in (ev / "logs").rglob("*"):
        os.utime(p, (when, when))
    out = check_capture(ev, index, modules=TS_MODULES)
    recs = out.ctx.records["log_timestamps"]
    assert sorted(r.data["path"] for r in recs) == [
        "logs/data/anr/anr_2024-01-14-21-02-11-123",
        "logs/data/system/uiderrors.txt",
    ]
    want = datetime.fromtimestamp(when, UTC)
    assert {r.data["modified_time"] for r in recs} == {want.strftime("%Y-%m-%d %H:%M:%S.%f")}
    assert {r.timestamp for r in recs} == {"2024-01-14T22:00:00.500000Z"}
    runs = {m.name: m.status for m in out.report.modules}
    assert runs["bugreport_timestamps"] == "skipped"


def test_androidqf_zip_reads_nested_bugreport_times(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "qf.zip"
    path.write_bytes(gen.androidqf_zip(False))
    out = check_capture(path, index, modules=TS_MODULES)
    assert {m.name: m.records for m in out.report.modules} == {
        "bugreport_timestamps": 6,
        "log_timestamps": 2,
    }


def test_timestamps_result_folder_names_as_mvt(tmp_path: Path) -> None:
    (tmp_path / "ev").mkdir()
    path = tmp_path / "ev" / "qf.zip"
    path.write_bytes(gen.androidqf_zip(False))
    out = tmp_path / "out"
    assert (
        main(
            [
                "check-android",
                str(path),
                "-m",
                "log_timestamps",
                "-m",
                "bugreport_timestamps",
                "--output",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    rows = list(
        csv.reader((out / "timeline.csv").open(encoding="utf-8", newline=""), escapechar="\\")
    )
    assert {(r[1], r[2]) for r in rows[1:]} == {
        ("AQFLogTimestamps", "M---"),
        ("BugReportTimestamps", "M---"),
    }
    assert {r[0] for r in rows[1:]} == {"2024-01-15 10:00:02.000000"}
    logs = json.loads((out / "aqf_log_timestamps.json").read_text())
    assert {(x["event"], x["modified_time"]) for x in logs} == {
        ("M---", "2024-01-15 10:00:02.000000")
    }
    assert (out / "bugreport_timestamps.json").is_file()


def test_zip_member_with_impossible_time_has_none(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("FS/a", (1980, 0, 0, 0, 0, 0)), b"x")
        zf.writestr(zipfile.ZipInfo("FS/b", (2023, 12, 31, 23, 59, 58)), b"y")
    src = ZipSource(buf.getvalue(), "t.zip", Limits())
    assert (src.mtime("FS/a"), src.mtime("FS/b"), src.mtime("FS/c")) == (
        None,
        "2023-12-31T23:59:58",
        None,
    )


def test_dumpsys_txt_fills_what_the_bugreport_lacks(tmp_path: Path, index: IocIndex) -> None:
    """androidqf's dumpsys.txt serves the sections its bugreport lacks (here a dumpstate
    cut short before the app-ops dump); the bugreport stays first for the others."""
    text = gen.dumpstate(True)
    cut = text.index("DUMP OF SERVICE appops")
    br = gen.bugreport_files(True)
    br[gen.DUMPSTATE] = text[:cut].encode()
    files = gen.androidqf_files(True, with_bugreport=False)
    files["bugreport.zip"] = gen.zip_files(br)
    files["dumpsys.txt"] = text[text.index("DUMP OF SERVICE") :].encode()
    ev = gen.write_tree(files, tmp_path / "qf")
    rep = check_capture(ev, index).report
    where = {
        (f.location.module, f.path.rpartition("/")[2])
        for f in rep.all_findings()
        if f.location.module in ("dumpsys_appops", "dumpstate_packages")
    }
    assert where == {("dumpsys_appops", "dumpsys.txt"), ("dumpstate_packages", gen.DUMPSTATE)}


_MOUNT_PIECES = [*"/ ab-:0123\\\n()", " on ", " type ", " - ", "rw,", "\\040", "ext4 ", "(rw)"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_MOUNT_PIECES), max_size=400).map("".join))
def test_mount_parsers_never_raise(text: str) -> None:
    start = time.monotonic()
    got, bad = mt.mount_lines(text.splitlines())
    info, bad2 = mt.mountinfo(text)
    for m in (*got, *info):
        m.suspicious_options()
        assert isinstance(m.is_read_write, bool)
    assert min(bad, bad2) >= 0
    for line in text.splitlines():
        qf_extra.sfs_event(line)
    assert time.monotonic() - start < 120  # a hang guard
