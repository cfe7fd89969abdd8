"""Captures as Windows tools leave them: every text artifact with CRLF line ends gives
the findings of the original (androidqf folder and a bugreport zip)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spywall.android.check import check_capture
from spywall.errors import InputError
from spywall.iocs import IocIndex
from spywall.report import Report
from spywall.samples import android as gen

TEXT = (".txt", "mountinfo")


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def _crlf(files: dict[str, bytes]) -> dict[str, bytes]:
    return {
        k: v.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") if k.endswith(TEXT) else v
        for k, v in files.items()
    }


def _found(rep: Report) -> set[tuple[str | None, str, str | None, str | None]]:
    return {
        (f.location.module, f.rule, f.indicator.matched if f.indicator else None, f.location.record)
        for f in rep.all_findings()
    }


def test_androidqf_with_crlf(tmp_path: Path, index: IocIndex) -> None:
    files = gen.androidqf_files(True, with_bugreport=False)
    text = gen.dumpstate(True)
    files["dumpsys.txt"] = text[text.index("DUMP OF SERVICE") :].encode()
    lf = check_capture(gen.write_tree(files, tmp_path / "lf"), index).report
    crlf = check_capture(gen.write_tree(_crlf(files), tmp_path / "crlf"), index).report
    assert _found(crlf) == _found(lf)
    assert len(_found(lf)) > 20
    assert {m.name: m.records for m in crlf.modules} == {m.name: m.records for m in lf.modules}


def test_bugreport_with_crlf(tmp_path: Path, index: IocIndex) -> None:
    files = gen.bugreport_files(True)
    (tmp_path / "lf.zip").write_bytes(gen.zip_files(files))
    (tmp_path / "crlf.zip").write_bytes(gen.zip_files(_crlf(files)))
    lf = check_capture(tmp_path / "lf.zip", index).report
    crlf = check_capture(tmp_path / "crlf.zip", index).report
    assert _found(crlf) == _found(lf)
    assert {m.name: m.records for m in crlf.modules} == {m.name: m.records for m in lf.modules}


def test_vendor_bugreport_without_main_entry(tmp_path: Path, index: IocIndex) -> None:
    """A vendor bugreport zip (Samsung's dumpState_*.log, no main_entry.txt) is a
    bugreport too, as MVT reads it; AOSP's side files are not taken for the dumpstate."""
    files = gen.bugreport_files(True)
    text = files.pop(gen.DUMPSTATE)
    del files["main_entry.txt"]
    files["dumpState_G991BXXU9EWK1_202401151000.log"] = text
    files["dumpstate_board.txt"] = b"------ BOARD ------\n"
    files["dumpstate_log.txt"] = b"dumpstate version 1.0\n"
    (tmp_path / "vendor.zip").write_bytes(gen.zip_files({f"dump/{k}": v for k, v in files.items()}))
    (tmp_path / "aosp.zip").write_bytes(gen.zip_files(gen.bugreport_files(True)))
    vendor = check_capture(tmp_path / "vendor.zip", index).report
    aosp = check_capture(tmp_path / "aosp.zip", index).report
    assert vendor.subjects[0].format == "bugreport"
    strip = {(m, r, i) for m, r, i, _ in _found(aosp)}
    assert {(m, r, i) for m, r, i, _ in _found(vendor)} == strip
    where = {f.path for f in vendor.all_findings() if f.location.module == "dumpsys_appops"}
    assert where == {f"{tmp_path / 'vendor.zip'}!/dump/dumpState_G991BXXU9EWK1_202401151000.log"}


def test_zip_with_backslash_folders(tmp_path: Path, index: IocIndex) -> None:
    """An androidqf zip re-packed by an old Windows tool: folders separated by
    backslashes in the member names."""
    files = gen.androidqf_files(True)
    uuid = "6f1c2f0e-0000-4000-8000-000000000001"
    (tmp_path / "slash.zip").write_bytes(
        gen.zip_files({f"{uuid}/{k}": v for k, v in files.items()})
    )
    (tmp_path / "back.zip").write_bytes(
        gen.zip_files({f"{uuid}\\{k}".replace("/", "\\"): v for k, v in files.items()})
    )
    slash = check_capture(tmp_path / "slash.zip", index).report
    back = check_capture(tmp_path / "back.zip", index).report
    assert back.subjects[0].format == "androidqf"
    assert _found(back) == _found(slash)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", "skipped"),  # the backup was declined on the phone
        (b"ANDROID BACKUP\n5\n1\nnone\n", "ok"),  # a header and nothing in it
        (b"ANDROID BACKUP\n5\n1\nnone\n\x78\x9c garbage", "error"),  # a broken one is said
    ],
)
def test_empty_or_header_only_backup(
    tmp_path: Path, index: IocIndex, body: bytes, status: str
) -> None:
    files = gen.androidqf_files(False, with_bugreport=False)
    files["backup.ab"] = body
    rep = check_capture(gen.write_tree(files, tmp_path / "qf"), index).report
    run = next(m for m in rep.modules if m.name == "sms")
    assert (run.status, run.records) == (status, 0)


def test_folder_of_several_captures_is_refused(tmp_path: Path, index: IocIndex) -> None:
    """A folder holding two androidqf acquisitions (two uuid folders): refused with both
    named, never one of them checked in silence; one acquisition in a sub-folder is fine."""
    root = tmp_path / "cases"
    gen.write_tree(gen.androidqf_files(True, with_bugreport=False), root / "case-a" / "u1")
    rep = check_capture(root, index).report
    assert rep.subjects[0].format == "androidqf"
    gen.write_tree(gen.androidqf_files(False, with_bugreport=False), root / "case-b" / "u2")
    with pytest.raises(InputError, match=r"holds 2 androidqf captures \(case-a/u1, case-b/u2\)"):
        check_capture(root, index)
