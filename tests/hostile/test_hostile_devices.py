"""Adversarial suite: names that are not regular files (FIFOs, devices), worker deaths,
and evidence boundaries. Each CLI case runs in a subprocess under the ceilings of
``hostile_run``: a hang fails the test by its time ceiling instead of hanging the suite.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import shapes
from hostile_run import assert_sound, run_cli

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder holding a FIFO (no writer: opening it for reading blocks) and an exploit."""
    root = tmp_path / "in"
    root.mkdir()
    os.mkfifo(root / "a-pipe")
    (root / "b.webp").write_bytes(shapes.webp_exploit())
    return root


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_fifo_in_a_folder_is_an_input_error_not_a_hang(folder: Path, jobs: str) -> None:
    run = run_cli("scan", "-j", jobs, "--timeout", "5", str(folder))
    assert_sound(run)
    assert run.code == 1  # the exploit beside it is still found
    assert "webp-huffman-overflow" in run.rules
    assert ("io", f"{folder / 'a-pipe'} is a FIFO (named pipe): only regular files are read"
            ) in run.errors


@pytest.mark.parametrize("name", ["fifo", "/dev/zero", "/dev/null"])
def test_scan_of_a_non_regular_file_exits_2(tmp_path: Path, name: str) -> None:
    path = name
    if name == "fifo":
        path = str(tmp_path / "p")
        os.mkfifo(path)
    if not os.path.exists(path):
        pytest.skip(f"no {path}")
    run = run_cli("scan", "--timeout", "5", path)
    assert_sound(run)
    assert run.code == 2
    assert [code for code, _ in run.errors] == ["io"]


@pytest.mark.parametrize("name", ["fifo", "/dev/zero"])
def test_pcap_of_a_non_regular_file_exits_2(tmp_path: Path, name: str) -> None:
    path = name
    if name == "fifo":
        path = str(tmp_path / "p")
        os.mkfifo(path)
    if not os.path.exists(path):
        pytest.skip(f"no {path}")
    run = run_cli("pcap", "--no-iocs", path)
    assert_sound(run)
    assert run.code == 2
    assert [code for code, _ in run.errors] == ["io"]


def test_standard_input_that_never_writes_is_a_limit_not_a_hang() -> None:
    read, write = os.pipe()  # the write end stays open and silent
    try:
        run = run_cli("scan", "--timeout", "2", "-", stdin=read)
    finally:
        os.close(read)
        os.close(write)
    assert_sound(run)
    assert run.code == 1
    assert any(code == "limit" and "standard input" in m for code, m in run.errors)


def test_standard_input_that_never_ends_is_cut_at_the_size_cap() -> None:
    with open("/dev/zero", "rb") as zero:
        run = run_cli("scan", "--max-file-size", "4", "-", stdin=zero.fileno())
    assert_sound(run)
    assert run.code == 1
    assert ("limit", f"input over the cap of {4 << 20} bytes") in run.errors


def test_a_fifo_planted_as_a_backup_file_is_an_error_not_a_hang(tmp_path: Path) -> None:
    from spywall.samples.ios import BackupSpec, file_id, write_backup

    root = write_backup(tmp_path / "b", BackupSpec(planted=False))
    fid = file_id("HomeDomain", "Library/SMS/sms.db")
    db = root / fid[:2] / fid
    db.unlink()
    os.mkfifo(db)
    run = run_cli("check-ios", str(root))  # (opening it for reading would block)
    assert_sound(run)
    assert any(m.startswith("module sms:") for _, m in run.errors), run.errors


def test_manifest_db_symlink_out_of_the_backup_is_refused(tmp_path: Path) -> None:
    from spywall.samples.ios import BackupSpec, write_backup

    root = write_backup(tmp_path / "b", BackupSpec())
    outside = tmp_path / "elsewhere.db"
    (root / "Manifest.db").rename(outside)
    (root / "Manifest.db").symlink_to(outside)
    run = run_cli("check-ios", str(root))
    assert "Traceback" not in run.stderr
    assert run.code == 2
    assert "symbolic link" in run.stderr
