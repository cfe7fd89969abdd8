"""check-android over generated captures: planted indicators found, clean twins silent,
evidence untouched, one failing module never stops the others."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from spywall.android.check import check_capture
from spywall.cli import main
from spywall.iocs import IocIndex
from spywall.limits import Limits
from spywall.report import FindingKind, Report, load_report
from spywall.samples import android as gen

MOUNTS = {("mounts", "android-system-rw-mount", None),
          ("mounts", "android-suspicious-mount-options", None)}
QF_EXPECTED = {
    ("packages", "ioc-app-id", "NoviSpy"), ("packages", "ioc-sha256", "NoviSpy"),
    ("packages", "ioc-app-cert", "NoviSpy"), ("packages", "android-sideloaded-app", None),
    ("processes", "ioc-app-id", "NoviSpy"),
    ("processes", "ioc-process", "Pegasus"),  # a bracketed kernel thread
    ("getprop", "ioc-android-property", "MercenarySpywareCampaign"),
    ("settings", "android-setting-package-verifier-enable", None),
    ("files", "ioc-file-path", "MercenarySpywareCampaign"),
    ("files", "android-tmp-executable", None),
    ("root_binaries", "android-root-binary", None),
    ("sms", "ioc-domain", "Predator"),
    ("browser_history", "ioc-domain", "Predator"),
    ("magisk_modules", "android-magisk-module", None),
    *MOUNTS,
}
BR_EXPECTED = {
    ("dumpstate_getprop", "ioc-android-property", "MercenarySpywareCampaign"),
    ("dumpstate_packages", "ioc-app-id", "NoviSpy"),
    ("dumpstate_packages", "android-sideloaded-app", None),
    ("tombstones", "ioc-app-id", "WyrmSpy_DragonEgg"),
    ("dumpsys_accessibility", "ioc-app-id", "NoviSpy"),
    ("dumpsys_battery_history", "ioc-app-id", "RCSLab"),
    *(("bugreport_processes", "ioc-app-id", "NoviSpy"),
      ("bugreport_processes", "ioc-process", "Pegasus")),
}
# The dumpsys sections beyond those (in the bugreport, the dumpstate text and dumpsys.txt).
DUMPSYS_EXPECTED = {
    ("dumpsys_activities", "ioc-app-id", "NoviSpy"),
    ("dumpsys_appops", "android-risky-appop", None),
    ("dumpsys_appops", "android-shell-appop", None),
    ("dumpsys_appops", "ioc-app-id", "NoviSpy"),
    ("dumpsys_battery_daily", "android-app-downgraded", None),
    ("dumpsys_battery_daily", "android-app-uninstalled", None),
    ("dumpsys_battery_daily", "ioc-app-id", "RCSLab"),
    ("dumpsys_dbinfo", "ioc-app-id", "NoviSpy"),
    ("dumpsys_platform_compat", "ioc-app-id", "RCSLab"),
    ("dumpsys_receivers", "ioc-app-id", "NoviSpy"),
    ("dumpsys_settings", "android-setting-package-verifier-enable", None),
}
BR_EXPECTED |= DUMPSYS_EXPECTED | MOUNTS


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def _qf_dir(tmp: Path, planted: bool) -> Path:
    return gen.write_tree(gen.androidqf_files(planted), tmp / "qf")


def _qf_zip(tmp: Path, planted: bool) -> Path:
    (tmp / "qf.zip").write_bytes(gen.androidqf_zip(planted))
    return tmp / "qf.zip"


def _br_zip(tmp: Path, planted: bool) -> Path:
    (tmp / "br.zip").write_bytes(gen.bugreport_zip(planted))
    return tmp / "br.zip"


def _br_dir(tmp: Path, planted: bool) -> Path:
    return gen.write_tree(gen.bugreport_files(planted), tmp / "br")


def _dumpstate(tmp: Path, planted: bool) -> Path:
    (tmp / "dumpstate.txt").write_text(gen.dumpstate(planted))
    return tmp / "dumpstate.txt"


DTS = {("dumpstate_getprop", "ioc-android-property", "MercenarySpywareCampaign"),
       ("dumpstate_packages", "ioc-app-id", "NoviSpy"),
       ("dumpstate_packages", "android-sideloaded-app", None),
       ("dumpsys_accessibility", "ioc-app-id", "NoviSpy"),
       ("dumpsys_battery_history", "ioc-app-id", "RCSLab"),
       ("bugreport_processes", "ioc-app-id", "NoviSpy"),
       ("bugreport_processes", "ioc-process", "Pegasus")} | DUMPSYS_EXPECTED
CASES: list[tuple[str, Callable[[Path, bool], Path], str, set[tuple[str, str, str | None]]]] = [
    ("androidqf-folder", _qf_dir, "androidqf", QF_EXPECTED | BR_EXPECTED),
    ("androidqf-zip", _qf_zip, "androidqf", QF_EXPECTED | BR_EXPECTED),
    ("bugreport-zip", _br_zip, "bugreport", BR_EXPECTED),
    ("bugreport-folder", _br_dir, "bugreport", BR_EXPECTED),
    ("dumpstate-text", _dumpstate, "dumpstate", DTS),
]


def _got(report: Report) -> set[tuple[str, str, str | None]]:
    return {(f.location.module or "", f.rule, f.indicator.collection if f.indicator else None)
            for f in report.all_findings()}


@pytest.mark.parametrize(("name", "make", "kind", "expected"), CASES, ids=[c[0] for c in CASES])
def test_planted_found_clean_silent(tmp_path: Path, index: IocIndex, name: str,
                                    make: Callable[[Path, bool], Path], kind: str,
                                    expected: set[tuple[str, str, str | None]]) -> None:
    bad = check_capture(make(_mk(tmp_path, "bad"), True), index).report
    assert _got(bad) == expected
    assert bad.subjects[0].format == kind
    assert all(m.status in ("ok", "skipped") for m in bad.modules), bad.modules
    for f in bad.all_findings():
        want = FindingKind.INDICATOR if f.rule.startswith("ioc-") else FindingKind.HEURISTIC
        assert f.kind is want
        assert f.path.startswith(bad.subjects[0].path)
    clean = check_capture(make(_mk(tmp_path, "clean"), False), index).report
    assert clean.all_findings() == []
    assert [m.status for m in clean.modules] == [m.status for m in bad.modules]
    assert clean.device["model"] == "Pixel 6"


def _mk(base: Path, name: str) -> Path:
    (base / name).mkdir()
    return base / name


def _tree_hash(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() + oct(
        p.stat().st_mode) + str(p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_evidence_untouched_and_output_written(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    ev = _qf_dir(_mk(tmp_path, "ev"), True)
    (ev / "apks").mkdir()
    (ev / "apks" / "x.apk").write_bytes(gen.apk("com.example"))
    before = _tree_hash(tmp_path / "ev")
    out = tmp_path / "results"
    rc = main(["check-android", str(ev), "--output", str(out), "-f", "json", "-q"])
    assert rc == 1
    assert _tree_hash(tmp_path / "ev") == before
    rep = load_report(capsys.readouterr().out)
    alerts = json.loads((out / "alerts.json").read_text())
    assert len(alerts) == len(rep.all_findings())
    assert {"aqf_packages.json", "info.json", "timeline.csv", "report.json",
            "aqf_get_prop.json", "tombstones.json", "command.log"} <= {
        p.name for p in out.iterdir()}  # MVT's file names
    assert (out / "aqf_packages_detected.json").exists()
    info = json.loads((out / "info.json").read_text())
    assert any(h["file_path"].endswith("/packages.json") for h in info["hashes"])
    # refusing to write results inside the evidence
    assert main(["check-android", str(ev), "--output", str(ev / "out"), "-q"]) == 2
    assert not (ev / "out").exists()


def test_apk_hash_matched_with_custom_iocs(tmp_path: Path) -> None:
    ev = _qf_dir(_mk(tmp_path, "ev"), False)
    data = gen.apk("com.evil.dropper")
    (ev / "apks").mkdir()
    (ev / "apks" / "dropper.apk").write_bytes(data)
    bundle = {"type": "bundle", "objects": [
        {"type": "malware", "id": "malware--1", "name": "Dropper"},
        {"type": "indicator", "id": "indicator--1",
         "pattern": f"[file:hashes.sha256 = '{hashlib.sha256(data).hexdigest()}']"}]}
    (tmp_path / "d.stix2").write_text(json.dumps(bundle))
    rep = check_capture(ev, IocIndex.load([tmp_path / "d.stix2"])).report
    assert _got(rep) == {("apks", "ioc-sha256", "Dropper")}


def test_broken_module_does_not_stop_others(tmp_path: Path, index: IocIndex) -> None:
    files = gen.androidqf_files(True)
    files["packages.json"] = b'[{"name": "com.x", "files": [' * 10
    files["ps.txt"] = b"garbage without header\n1 2 3\n"
    files["bugreport.zip"] = b"PK\x03\x04 not really a zip"
    rep = check_capture(gen.write_tree(files, _mk(tmp_path, "ev")), index).report
    status = {m.name: m.status for m in rep.modules}
    assert status["packages"] == "error"
    assert status["processes"] == "schema-unknown"
    assert status["dumpstate_packages"] == "error"
    assert status["getprop"] == status["files"] == "ok"
    assert ("getprop", "ioc-android-property", "MercenarySpywareCampaign") in _got(rep)


def test_zip_caps_hold(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("getprop.txt", b"[sys.brand.note]: [1]\n")
        zf.writestr("files.json", b"[" + b" " * (40 << 20) + b"]")
    rep = check_capture(path, index, limits=Limits(max_stream_bytes=8 << 20)).report
    status = {m.name: (m.status, m.message) for m in rep.modules}
    assert status["files"][0] == "error"
    assert "cap" in status["files"][1]
    assert status["getprop"][0] == "ok"


@pytest.mark.parametrize("content", [None, b"just some text\n", b"PK\x05\x06" + b"\0" * 18])
def test_not_a_capture_is_input_error(tmp_path: Path, content: bytes | None) -> None:
    target = tmp_path / "x"
    if content is None:
        target.mkdir()
        (target / "readme.txt").write_text("hello")
    else:
        target.write_bytes(content)
    rc = main(["check-android", str(target), "-q", "-f", "json"])
    # a folder or zip that is no capture, and a text file in which no module finds
    # anything (not a dumpstate), are input errors, never "nothing found"
    assert rc == 2


def test_symlink_outside_not_followed(tmp_path: Path, index: IocIndex) -> None:
    secret = tmp_path / "outside.json"
    secret.write_text(json.dumps([{"path": gen.CAMPAIGN_PATH, "mode": "-rwxr-xr-x"}]))
    ev = _qf_dir(_mk(tmp_path, "ev"), False)
    (ev / "files.json").unlink()
    (ev / "files.json").symlink_to(secret)
    rep = check_capture(ev, index).report
    assert {m.name: m.status for m in rep.modules}["files"] == "skipped"
    assert rep.all_findings() == []


def test_dumpsys_txt_used_without_bugreport(tmp_path: Path, index: IocIndex) -> None:
    files = gen.androidqf_files(False, with_bugreport=False)
    text = gen.dumpstate(True)
    files["dumpsys.txt"] = text[text.index("DUMP OF SERVICE"):].encode()  # no properties
    rep = check_capture(gen.write_tree(files, _mk(tmp_path, "ev")), index).report
    assert _got(rep) == {("dumpstate_packages", "ioc-app-id", "NoviSpy"),
                         ("dumpstate_packages", "android-sideloaded-app", None),
                         ("dumpsys_accessibility", "ioc-app-id", "NoviSpy"),
                         ("dumpsys_battery_history", "ioc-app-id", "RCSLab")
                         } | DUMPSYS_EXPECTED  # (the process table is no dumpsys section)
    assert {f.path for f in rep.all_findings()} == {str(tmp_path / "ev" / "dumpsys.txt")}
    status = {m.name: m.status for m in rep.modules}
    assert status["tombstones"] == status["dumpstate_getprop"] == "skipped"


def test_outdated_patch_reported_once(tmp_path: Path, index: IocIndex) -> None:
    files = gen.androidqf_files(False)
    old = gen.recent_patch()
    files["getprop.txt"] = files["getprop.txt"].replace(old.encode(), b"2021-03-01")
    rep = check_capture(gen.write_tree(files, _mk(tmp_path, "ev")), index).report
    found = [f for f in rep.all_findings() if f.rule == "android-outdated-patch"]
    assert len(found) == 1
    assert found[0].detail["security_patch"] == "2021-03-01"
    assert found[0].kind is FindingKind.HEURISTIC


def test_zip_finding_paths_name_the_member(tmp_path: Path, index: IocIndex) -> None:
    rep = check_capture(_qf_zip(tmp_path, True), index).report
    paths = {f.path for f in rep.all_findings()}
    uuid = "6f1c2f0e-0000-4000-8000-000000000001"
    assert f"{tmp_path / 'qf.zip'}!/{uuid}/packages.json" in paths
    assert f"{tmp_path / 'qf.zip'}!/{uuid}/bugreport.zip!/FS/data/tombstones/tombstone_00" in paths


def test_encrypted_backup_needs_its_password(tmp_path: Path, index: IocIndex) -> None:
    files = gen.androidqf_files(True, with_bugreport=False)
    files["backup.ab"] = gen.backup_ab(True, encrypted=True, password="pw 1")
    ev = gen.write_tree(files, _mk(tmp_path, "ev"))
    rep = check_capture(ev, index).report
    run = next(m for m in rep.modules if m.name == "sms")
    assert run.status == "error"  # unreadable without it: said, never "nothing found"
    assert "give its password" in run.message
    assert {f.rule for f in rep.all_findings() if f.location.module == "sms"} == {
        "incomplete-examination"}  # not read: never clean
    rep = check_capture(ev, index, password="pw 1").report
    assert {(f.rule, f.indicator.collection if f.indicator else None)
            for f in rep.all_findings() if f.location.module == "sms"} == {
        ("ioc-domain", "Predator")}
    rep = check_capture(ev, index, password="nope").report
    run = next(m for m in rep.modules if m.name == "sms")
    assert (run.status, run.message.startswith("WrongPassword: wrong backup password")) == (
        "error", True)


def test_lone_encrypted_adb_backup_cli(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "backup.ab"
    path.write_bytes(gen.backup_ab(True, encrypted=True, password="pw"))
    assert main(["check-android", str(path), "-p", "pw", "-f", "json", "-q"]) == 1
    rep = load_report(capsys.readouterr().out)
    assert {f.indicator.matched for f in rep.all_findings() if f.indicator} == {
        f"https://{gen.PREDATOR_DOMAIN}/a1b2c3", "https://mobnetlink1.com/inv/77"}  # SMS, MMS
    main(["check-android", str(path), "-f", "json", "-q"])
    rep = load_report(capsys.readouterr().out)
    assert [e.message for e in rep.errors if "no module found" in e.message] == []
    assert any("give its password" in e.message for s in rep.subjects for e in s.errors)


def test_module_selection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev = _qf_dir(_mk(tmp_path, "ev"), True)
    rc = main(["check-android", str(ev), "-m", "getprop", "-m", "sms", "-f", "json", "-q"])
    rep = load_report(capsys.readouterr().out)
    assert rc == 1
    assert [m.name for m in rep.modules] == ["getprop", "sms"]
    assert {f.location.module for f in rep.all_findings()} == {"getprop", "sms"}
    assert main(["check-android", str(ev), "-m", "nope", "-q"]) == 2
    assert "modules: packages" in capsys.readouterr().err


def test_lone_adb_backup(tmp_path: Path, index: IocIndex) -> None:
    path = tmp_path / "backup.ab"
    path.write_bytes(gen.backup_ab(True))
    rep = check_capture(path, index).report
    assert rep.subjects[0].format == "backup"
    assert _got(rep) == {("sms", "ioc-domain", "Predator")}
    assert {f.path for f in rep.all_findings()} == {str(path)}
    assert {m.name for m in rep.modules if m.status == "ok"} == {"sms"}
    path.write_bytes(gen.backup_ab(False))
    assert check_capture(path, index).report.all_findings() == []


def test_zip_evidence_untouched(tmp_path: Path, index: IocIndex) -> None:
    path = _qf_zip(tmp_path, True)
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    rep = check_capture(path, index).report
    assert rep.subjects[0].sha256 == before[0]
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qf.zip"]  # nothing written beside it



def test_settings_every_namespace_and_mvt_list(tmp_path: Path, index: IocIndex) -> None:
    files = gen.androidqf_files(False, with_bugreport=False)
    files["settings_secure.txt"] += b"accessibility_enabled=1\n"
    files["settings_config.txt"] = b"adb_install_need_confirm=0\nfoo=bar\n"
    rep = check_capture(gen.write_tree(files, _mk(tmp_path, "ev")), index)
    got = {(f.rule, f.detail["value"]) for f in rep.report.all_findings()}
    assert got == {("android-setting-accessibility-enabled", "1"),
                   ("android-setting-adb-install-need-confirm", "0")}
    recs = rep.ctx.records["settings"]
    assert {r.data["namespace"] for r in recs} == {"global", "secure", "system", "config"}
    run = next(m for m in rep.report.modules if m.name == "settings")
    assert (run.records, run.message) == (len(recs), "4 settings file(s)")


@pytest.mark.parametrize(("name", "body", "module"), [
    ("packages.json", b"[1, 2", "packages"),          # cut short: malformed
    ("packages.json", b'{"packages": 3}', "packages"),  # an unknown form
    ("ps.txt", b"no header here\n", "processes"),
])
def test_unread_artifact_is_never_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        name: str, body: bytes, module: str) -> None:
    """A clean capture with one unreadable artifact exits 1 (an ``incomplete-examination``
    finding of that module); ``--allow-incomplete`` gives 0; the artifact removed is no
    data (0)."""
    ev = _qf_dir(_mk(tmp_path, "ev"), False)
    (ev / name).write_bytes(body)
    assert main(["check-android", str(ev), "-f", "json", "-q"]) == 1
    rep = load_report(capsys.readouterr().out)
    assert [(f.rule, f.location.module) for f in rep.all_findings()] == [
        ("incomplete-examination", module)]
    assert main(["check-android", str(ev), "-f", "json", "-q", "--allow-incomplete"]) == 0
    capsys.readouterr()
    (ev / name).unlink()
    assert main(["check-android", str(ev), "-f", "json", "-q"]) == 0
