"""``check-ios`` and ``check-android`` with evidence under a hostile folder name and a
hostile device name: every finding reported, shown escaped, exact in JSON."""

from __future__ import annotations

import json
import plistlib
from pathlib import Path

import pytest
from output_hostile import MARKUP, TAIL, assert_safe, assert_shown_escaped, hostile_path, run

from spywall.samples.android import androidqf_files, write_tree
from spywall.samples.ios import BackupSpec, write_backup

Cap = pytest.CaptureFixture[str]
MP = pytest.MonkeyPatch
DEVICE_NAME = MARKUP + TAIL


def _backup(tmp_path: Path) -> Path:
    backup = write_backup(hostile_path(tmp_path, ""), BackupSpec(messages=6, history=6))
    info = plistlib.loads((backup / "Info.plist").read_bytes())
    info["Device Name"] = DEVICE_NAME   # XML plists cannot hold controls; binary ones can
    (backup / "Info.plist").write_bytes(plistlib.dumps(info, fmt=plistlib.FMT_BINARY))
    return backup


def _capture(tmp_path: Path) -> Path:
    return write_tree(androidqf_files(True), hostile_path(tmp_path, ""))


def test_check_ios(tmp_path: Path, capsys: Cap, monkeypatch: MP) -> None:
    backup = _backup(tmp_path)
    code, out, err = run(capsys, monkeypatch, ["check-ios", str(backup), "-f", "table",
                                               "-j", "1"])
    assert code == 1
    assert_safe(out)
    assert_safe(err)
    assert_shown_escaped(out)
    assert "triangulation-backupagent-network" in out
    assert "[/x][bold green]CLEAN" in out  # the device name, shown as text
    code, out, _ = run(capsys, monkeypatch, ["check-ios", str(backup), "-f", "json",
                                             "-j", "1"])
    report = json.loads(out)
    assert code == 1
    assert report["device"]["device_name"] == DEVICE_NAME
    assert report["subjects"][0]["path"] == str(backup)


def test_check_android(tmp_path: Path, capsys: Cap, monkeypatch: MP) -> None:
    capture = _capture(tmp_path)
    code, out, err = run(capsys, monkeypatch, ["check-android", str(capture), "-f", "table"])
    assert code == 1
    assert_safe(out)
    assert_safe(err)
    assert_shown_escaped(out)
    assert "ioc-app-id" in out
    code, out, _ = run(capsys, monkeypatch, ["check-android", str(capture), "-f", "json"])
    assert code == 1
    paths = {f["path"] for s in json.loads(out)["subjects"] for f in s["findings"]}
    assert f"{capture}/packages.json" in paths
