"""check-ios end to end on generated backups: planted, clean twin, WAL, encrypted."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from spywall.cli import exit_status, main
from spywall.errors import InputError
from spywall.iocs import IocIndex
from spywall.ios.backup import open_backup
from spywall.ios.check import MODULES, Outcome, check_backup
from spywall.report import Finding
from spywall.samples.ios import PLANTED, BackupSpec, write_backup


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load(())


@pytest.fixture(scope="module")
def backups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ios")
    specs = {"planted": BackupSpec(), "clean": BackupSpec(planted=False),
             "wal": BackupSpec(wal=True), "encrypted": BackupSpec(password="s3cret pass")}
    return {name: write_backup(root / name, spec) for name, spec in specs.items()}


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run(backups: dict[str, Path], index: IocIndex, name: str) -> Outcome:
    pw = "s3cret pass" if name == "encrypted" else None
    return check_backup(backups[name], index, index.sources, password=pw)


def by_module(findings: list[Finding]) -> set[tuple[str, str, str]]:
    return {(f.location.module or "", f.rule,
             f.indicator.collection if f.indicator else "") for f in findings}


# (module, rule, collection) that the planted backup must produce.
EXPECTED = {
    ("manifest", "ioc-file-name", "Pegasus"),
    ("configuration_profiles", "ioc-config-profile", "Predator"),
    ("sms", "ioc-domain", "Pegasus"),
    ("sms", "ioc-email", "Pegasus"),
    ("sms_attachments", "appended-archive", ""),
    ("sms_attachments", "ios-sms-attachment-in-tmp", ""),
    ("whatsapp", "ioc-domain", "Pegasus"),
    ("whatsapp", "appended-archive", ""),
    ("messaging_attachments", "appended-archive", ""),
    ("safari_history", "ioc-domain", "OperationTriangulation"),
    ("safari_history", "ios-fast-cross-domain-redirect", ""),
    ("webkit_resource_load_statistics", "ioc-domain", "Pegasus"),
    ("webkit_session_resource_log", "ioc-domain", "OperationTriangulation"),
    ("webkit_session_resource_log", "ios-webkit-suspicious-redirect", ""),
    ("datausage", "ioc-process", "Pegasus"),
    ("datausage", "ioc-process", "OperationTriangulation"),
    ("datausage", "triangulation-backupagent-network", ""),
    ("datausage", "ios-datausage-orphan-usage", ""),
    ("os_analytics_ad_daily", "ioc-process", "Pegasus"),
    ("os_analytics_ad_daily", "ioc-process", "OperationTriangulation"),
    ("os_analytics_ad_daily", "triangulation-backupagent-network", ""),
    ("id_status_cache", "ioc-email", "Pegasus"),
    ("tcc", "ioc-process", "Pegasus"),
    ("locationd_clients", "ioc-process", "Pegasus"),
    ("calendar", "ioc-email", "Pegasus"),
    ("backup_info", "ios-outdated", ""),
    ("triangulation_window", "triangulation-event-window", ""),
    ("chrome_history", "ioc-domain", "Pegasus"),
    ("firefox_history", "ioc-domain", "Pegasus"),
    ("shortcuts", "ioc-domain", "Pegasus"),
    ("chrome_favicon", "ioc-domain", "Pegasus"),
    ("profile_events", "ioc-config-profile", "Predator"),
    ("profile_events", "ioc-process", "Pegasus"),
    ("applications", "ios-app-not-from-app-store", ""),
    ("safari_favicon", "ioc-domain", "Predator"),
    ("global_preferences", "ios-lockdown-mode-off", ""),
    ("sms", "ios-apple-threat-notification", ""),
    ("datausage", "ios-datausage-missing-process", ""),
    ("calls", "ioc-email", "Pegasus"),
    ("contacts", "ioc-email", "Pegasus"),
    ("interactionc", "ioc-email", "Pegasus"),
    ("firefox_favicon", "ioc-domain", "Pegasus"),
}


def test_planted_values_are_published_indicators(index: IocIndex) -> None:
    kinds = {"domain": "domain", "process": "process", "email": "email",
             "file_name": "file_name", "profile": "config_profile"}
    for key, value in PLANTED.items():
        kind = next(k for suffix, k in kinds.items() if key.endswith(suffix))
        assert index.match(kind, value), f"{key}={value} not in the bundled sets"


@pytest.mark.parametrize("name", ["planted", "wal", "encrypted"])
def test_planted_backup_finds_everything(backups: dict[str, Path], index: IocIndex,
                                         name: str) -> None:
    out = run(backups, index, name)
    found = by_module(out.report.all_findings())
    assert found >= EXPECTED, EXPECTED - found
    assert found <= EXPECTED, found - EXPECTED  # nothing unexpected either
    statuses = {m.name: m.status for m in out.report.modules}
    assert set(statuses) == {m.name for m in MODULES}
    # (apps' caches are not in iTunes/Finder backups: cache_files reads dumps)
    assert {k for k, v in statuses.items() if v != "ok"} == {"cache_files"}
    assert out.report.device["ios_version"] == "16.5"
    assert out.report.device["encrypted"] is (name == "encrypted")
    subject = out.report.subjects[0]
    manifest = (backups[name] / "Manifest.db").read_bytes()
    assert subject.sha256 == hashlib.sha256(manifest).hexdigest()
    assert subject.path == str(backups[name])


def test_clean_twin_raises_nothing(backups: dict[str, Path], index: IocIndex) -> None:
    out = run(backups, index, "clean")
    # (its Lockdown Mode is on: information, as MVT says it, not a finding of the verdict)
    assert [f.rule for f in out.report.all_findings()] == ["ios-lockdown-mode-on"]
    assert exit_status(out.report.finalize()) == 0
    assert out.report.summary.errors == 0
    ok = [m.name for m in out.report.modules if m.status == "ok"]
    assert len(ok) >= len(MODULES) - 2  # profiles and app caches have nothing to read


def test_triangulation_rule_is_critical_and_names_itself(backups: dict[str, Path],
                                                         index: IocIndex) -> None:
    out = run(backups, index, "planted")
    rule = [f for f in out.report.all_findings()
            if f.rule == "triangulation-backupagent-network"]
    assert {f.severity.value for f in rule} == {"critical"}
    assert all(f.kind.value == "indicator" and not f.cves and f.references for f in rule)


def test_attachment_findings_carry_chat_and_sender(backups: dict[str, Path],
                                                   index: IocIndex) -> None:
    out = run(backups, index, "planted")
    att = {f.detail["app"]: f for f in out.report.all_findings()
           if f.rule == "appended-archive"}
    assert att["iMessage"].detail["sender"] == "+447700900123"
    assert att["iMessage"].detail["chat"] == "+447700900123"
    assert att["iMessage"].path.endswith(
        "!/MediaDomain/Library/SMS/Attachments/a1/01/ATT-1/IMG_0001.jpg")
    assert att["WhatsApp"].detail["chat"] == "Alex"
    assert att["WhatsApp"].path.startswith(str(backups["planted"]) + "!/AppDomainGroup-")


def test_wal_content_is_read(backups: dict[str, Path], index: IocIndex) -> None:
    with open_backup(backups["wal"]) as b:
        assert b.get("HomeDomain", "Library/SMS/sms.db-wal") is not None
    out = run(backups, index, "wal")
    sms = [f for f in out.report.all_findings() if f.location.module == "sms"]
    assert sms, "the messages live only in sms.db's write-ahead log"


@pytest.mark.parametrize("name", ["planted", "wal", "encrypted"])
def test_evidence_is_unchanged(backups: dict[str, Path], index: IocIndex, name: str,
                               tmp_path: Path) -> None:
    before = tree_hashes(backups[name])
    out = run(backups, index, name)
    assert out.report.all_findings()
    assert tree_hashes(backups[name]) == before


def test_errors(backups: dict[str, Path], index: IocIndex, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="wrong backup password"):
        check_backup(backups["encrypted"], index, password="nope")
    with pytest.raises(InputError, match="encrypted"):
        check_backup(backups["encrypted"], index)
    with pytest.raises(InputError, match="not an iOS backup"):
        check_backup(tmp_path, index)
    with pytest.raises(InputError, match="not a folder"):
        check_backup(tmp_path / "missing", index)


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> Iterator[object]:
    rc = main(args)
    yield rc
    yield json.loads(capsys.readouterr().out)


def test_cli_and_mvt_output(backups: dict[str, Path], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPYWALL_BACKUP_PASSWORD", "s3cret pass")
    rc, report = _cli(["check-ios", str(backups["encrypted"]), "-q", "-f", "json",
                       "--output", str(tmp_path / "out")], capsys)
    assert rc == 1
    assert isinstance(report, dict)
    assert report["command"] == "check-ios"
    alerts = json.loads((tmp_path / "out/alerts.json").read_text())
    assert any(a["level"] == "CRITICAL" and a["module"] == "datausage" for a in alerts)
    info = json.loads((tmp_path / "out/info.json").read_text())
    assert any(h["file_path"].endswith("Manifest.db") for h in info["hashes"])
    assert any("sms.db" in h["file_path"] for h in info["hashes"])
    assert (tmp_path / "out/sms_detected.json").exists()
    assert (tmp_path / "out/timeline.csv").read_text().startswith('"UTC Timestamp"')
    rc, _ = _cli(["check-ios", str(backups["clean"]), "-q", "-f", "json"], capsys)
    assert rc == 0
    monkeypatch.delenv("SPYWALL_BACKUP_PASSWORD")
    rc, lean = _cli(["check-ios", str(backups["planted"]), "-q", "-f", "json",
                     "--no-attachments"], capsys)
    assert rc == 1
    assert isinstance(lean, dict)
    rules = {f["rule"] for s in lean["subjects"] for f in s["findings"]}
    assert "appended-archive" not in rules
    assert "triangulation-backupagent-network" in rules


def test_without_timeline_the_findings_are_the_same(backups: dict[str, Path],
                                                    index: IocIndex) -> None:
    full = check_backup(backups["planted"], index)
    lean = check_backup(backups["planted"], index, timeline=False)
    assert by_module(lean.report.all_findings()) == by_module(full.report.all_findings())
    assert len(lean.report.all_findings()) == len(full.report.all_findings())
    assert sum(map(len, lean.ctx.records.values())) < sum(map(len, full.ctx.records.values()))


def test_password_sources(backups: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    import getpass
    import sys

    from spywall.commands import check_ios

    asked: list[str] = []
    monkeypatch.delenv(check_ios.PASSWORD_ENV, raising=False)
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or "typed")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    ns = argparse.Namespace(password=None, backup=str(backups["encrypted"]))
    assert check_ios._password(ns) == "typed"
    assert asked == ["Backup password: "]
    assert check_ios._password(argparse.Namespace(password=None,
                                                  backup=str(backups["clean"]))) is None
    monkeypatch.setenv(check_ios.PASSWORD_ENV, "from-env")
    assert check_ios._password(ns) == "from-env"
    assert check_ios._password(argparse.Namespace(password="flag", backup="x")) == "flag"


def test_backup_decrypted_elsewhere_needs_no_password(backups: dict[str, Path], index: IocIndex,
                                                      tmp_path: Path) -> None:
    import plistlib
    import shutil

    copy = tmp_path / "decrypted"
    shutil.copytree(backups["planted"], copy)
    manifest = plistlib.loads((copy / "Manifest.plist").read_bytes())
    manifest["IsEncrypted"] = True  # what a copy decrypted by another tool may still say
    (copy / "Manifest.plist").write_bytes(plistlib.dumps(manifest))
    out = check_backup(copy, index)
    assert out.report.device["encrypted"] is False
    assert by_module(out.report.all_findings()) >= EXPECTED


def test_output_inside_the_backup_is_refused(tmp_path: Path) -> None:
    from spywall.cli import main

    backup = tmp_path / "backup"
    backup.mkdir()
    assert main(["check-ios", str(backup), "--output", str(backup / "results"), "-q"]) == 2
    assert not (backup / "results").exists()


@pytest.mark.parametrize("planted", [True, False])
def test_other_messengers_attachments_are_scanned(tmp_path: Path, planted: bool) -> None:
    from spywall.iocs import IocIndex
    from spywall.ios.check import check_backup
    from spywall.samples.ios import BackupSpec, write_backup

    root = write_backup(tmp_path / "b", BackupSpec(planted=planted, other_messengers=True))
    index = IocIndex.load()
    report = check_backup(root, index, index.sources).report
    run = {m.name: m for m in report.modules}["messaging_attachments"]
    assert (run.status, run.records) == ("ok", 2)
    found = [f for f in report.all_findings() if f.location.module == "messaging_attachments"]
    if planted:
        (f,) = found
        assert f.rule == "appended-archive"
        assert f.detail["app"] == "Signal"
        assert f.path.endswith("Attachments/3F/3F2A9C.jpg")
    else:
        assert found == []


def test_messaging_attachments_skipped_without_those_apps(tmp_path: Path) -> None:
    from spywall.iocs import IocIndex
    from spywall.ios.check import check_backup
    from spywall.samples.ios import BackupSpec, write_backup

    index = IocIndex.load()
    spec = BackupSpec(other_messengers=False)
    report = check_backup(write_backup(tmp_path / "b", spec), index, index.sources).report
    assert {m.name: m.status for m in report.modules}["messaging_attachments"] == "skipped"
