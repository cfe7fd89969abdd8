"""check-android's mounts module: androidqf mounts.json (``mount`` lines), a bugreport's
FS/proc/<pid>/mountinfo, /proc/mounts lines; awkward input; MVT's heuristics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spywall.android import mounts as mt
from spywall.android.check import check_capture
from spywall.android.fs_modules import FS_MODULES
from spywall.iocs import IocIndex
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
    out = check_capture(ev, index, modules=FS_MODULES)
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
    bundle = {
        "type": "bundle",
        "objects": [
            {"type": "malware", "id": "malware--1", "name": "Implant"},
            {
                "type": "indicator",
                "id": "indicator--1",
                "pattern": "[file:path = '/data/local/tmp/.x/mnt']",
            },
        ],
    }
    (tmp_path / "i.stix2").write_text(json.dumps(bundle))
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
