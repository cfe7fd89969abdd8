"""``--output`` of ``check-ios`` / ``check-android`` is never the evidence, never inside
the evidence folder (or the folder holding evidence given as a file), never an existing
file: a clear usage error (exit 2), no traceback, and the evidence untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from spywall.cli import main
from spywall.samples.android import androidqf_files, androidqf_zip, write_tree
from spywall.samples.ios import BackupSpec, write_backup

Cap = pytest.CaptureFixture[str]


def _digest(root: Path) -> dict[str, str]:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _refused(capsys: Cap, argv: list[str], evidence: Path) -> str:
    before = _digest(evidence)
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 2
    assert "--output" in err
    assert "Traceback" not in err
    assert _digest(evidence) == before
    return err


@pytest.mark.parametrize("where", ["same", "inside", "sibling"])
def test_android_zip(tmp_path: Path, capsys: Cap, where: str) -> None:
    capture = tmp_path / "cap" / "androidqf.zip"
    capture.parent.mkdir()
    capture.write_bytes(androidqf_zip(True))
    out = {"same": capture, "inside": capture / "r",
           "sibling": capture.parent / "results"}[where]
    _refused(capsys, ["check-android", str(capture), "--output", str(out), "-f", "json"],
             capture.parent)
    assert not (capture.parent / "results").exists()


@pytest.mark.parametrize("evidence", ["packages.json", "."])
def test_android_folder(tmp_path: Path, capsys: Cap, evidence: str) -> None:
    folder = write_tree(androidqf_files(True), tmp_path / "capture")
    _refused(capsys, ["check-android", str(folder / evidence), "--output",
                      str(folder / "r"), "-f", "json"], folder)
    assert not (folder / "r").exists()


def test_ios_inside_backup_and_existing_file(tmp_path: Path, capsys: Cap) -> None:
    backup = write_backup(tmp_path / "backup", BackupSpec(messages=4, history=4))
    _refused(capsys, ["check-ios", str(backup), "--output", str(backup / "out"), "-f",
                      "json"], backup)
    _refused(capsys, ["check-ios", str(backup), "--output", str(backup), "-f", "json"],
             backup)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    err = _refused(capsys, ["check-ios", str(backup), "--output", str(a_file), "-f",
                            "json"], backup)
    assert "not a folder" in err
    assert a_file.read_text() == "keep me"


def test_output_elsewhere_is_written(tmp_path: Path, capsys: Cap) -> None:
    folder = write_tree(androidqf_files(True), tmp_path / "capture")
    out = tmp_path / "results"
    assert main(["check-android", str(folder), "--output", str(out), "-f", "json",
                 "-q"]) == 1
    capsys.readouterr()
    assert (out / "alerts.json").is_file()
