"""check-ios on the layouts real evidence comes in: a backup without Manifest.plist, the
parent folder of several backups, files Manifest.db lists but the folder lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from spywall.errors import InputError
from spywall.iocs import IocIndex
from spywall.ios.check import check_backup, check_path
from spywall.samples.ios import PLANTED, BackupSpec, write_backup


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load(())


def _modules(out: object) -> dict[str, tuple[str, str]]:
    report = out.report  # type: ignore[attr-defined]
    return {m.name: (m.status, m.message) for m in report.modules}


def test_backup_without_manifest_plist_is_read(tmp_path: Path, index: IocIndex) -> None:
    root = write_backup(tmp_path / "b", BackupSpec(manifest_plist=False))
    assert not (root / "Manifest.plist").exists()
    out = check_path(root, index, index.sources)
    found = {f.indicator.matched for f in out.report.all_findings() if f.indicator}
    assert PLANTED["sms_domain"] in " ".join(found)
    assert PLANTED["datausage_process"] in found
    assert not out.report.errors


def test_encrypted_backup_without_manifest_plist_says_why(tmp_path: Path,
                                                          index: IocIndex) -> None:
    root = write_backup(tmp_path / "e", BackupSpec(password="pw", manifest_plist=False))
    with pytest.raises(InputError, match=r"Manifest\.plist.*key bag.*missing"):
        check_path(root, index, index.sources, password="pw")


def test_parent_of_backups_lists_them(tmp_path: Path, index: IocIndex) -> None:
    parent = tmp_path / "MobileSync" / "Backup"
    write_backup(parent / "00008110-00000000000001E", BackupSpec(planted=False))
    write_backup(parent / "00008030-000000000000002A", BackupSpec(planted=False))
    (parent / "not-a-backup").mkdir()
    with pytest.raises(InputError) as err:
        check_path(parent, index, index.sources)
    text = str(err.value)
    assert "holds 2 backup(s)" in text
    assert "00008110-00000000000001E (Test iPhone, iOS 26.1, last backup 2023-06-02" in text
    assert "00008030-000000000000002A" in text
    assert "not-a-backup" not in text


def test_empty_folder_is_neither(tmp_path: Path, index: IocIndex) -> None:
    with pytest.raises(InputError, match="neither an iOS backup"):
        check_path(tmp_path, index, index.sources)


def test_listed_but_unstored_artifacts_are_no_data(tmp_path: Path, index: IocIndex) -> None:
    """A module whose artifact is listed in Manifest.db but not stored says no data
    (skipped), not "error"; the attachment that is missing is counted, not an error."""
    spec = BackupSpec(unstored=("Library/SMS/sms.db", "Library/Databases/DataUsage.sqlite",
                                "Library/TCC/TCC.db"))
    root = write_backup(tmp_path / "u", spec)
    out = check_backup(root, index, index.sources)
    mods = _modules(out)
    for name in ("sms", "sms_attachments", "datausage", "tcc"):
        status, message = mods[name]
        assert status == "skipped", (name, mods[name])
        assert message.startswith("no data:")
        assert "not in the backup" in message
    assert mods["safari_history"][0] == "ok"
    assert not out.report.errors


def test_unstored_wal_is_the_database_as_it_is(tmp_path: Path, index: IocIndex) -> None:
    root = write_backup(tmp_path / "w", BackupSpec(wal=True,
                                                   unstored=("Library/SMS/sms.db-wal",)))
    mods = _modules(check_backup(root, index, index.sources))
    assert mods["sms"] == ("ok", "")  # the messages were in the log: none, no error


def test_unstored_attachment_is_counted(tmp_path: Path, index: IocIndex) -> None:
    att = "Library/SMS/Attachments/a1/01/ATT-1/IMG_0001.jpg"
    clean = write_backup(tmp_path / "c", BackupSpec(planted=False, unstored=(att,)))
    mods = _modules(check_backup(clean, index, index.sources))
    assert mods["sms_attachments"] == ("ok", "1 attachment(s) not in the evidence")


def test_module_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spywall.cli import main
    from spywall.report import load_report

    root = write_backup(tmp_path / "b", BackupSpec())
    rc = main(["check-ios", str(root), "-m", "sms", "-m", "chrome_history", "-q",
               "-f", "json", "-j", "1"])
    rep = load_report(capsys.readouterr().out)
    assert rc == 1
    assert [m.name for m in rep.modules] == ["sms", "chrome_history"]
    assert {f.location.module for f in rep.all_findings()} == {"sms", "chrome_history"}
    rc = main(["check-ios", str(root), "-m", "nope", "-q", "-f", "json"])
    assert rc != 0
    assert "unknown module(s) nope; modules: backup_info, manifest" in capsys.readouterr().err
