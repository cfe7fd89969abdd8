"""Android Intrusion Logging in androidqf captures (``intrusion_logs/``): DNS, connect
and security events matched as MVT's intrusion-log modules match them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from spywall.android import intrusion_logs as il
from spywall.android.check import MODULES, check_capture
from spywall.errors import InputError
from spywall.iocs import IocIndex
from spywall.samples import android as gen
from spywall.samples import android_il

ONLY = tuple(m for m in MODULES if m.name in ("dns_event", "connect_event", "security_event"))


@pytest.fixture(scope="module")
def index() -> IocIndex:
    return IocIndex.load()


def _capture(tmp_path: Path, planted: bool, *, zipped: bool = False,
             extra: dict[str, bytes] | None = None) -> Path:
    files = gen.androidqf_files(False, with_bugreport=False)
    files.update(android_il.exports(planted))
    files.update(extra or {})
    if zipped:
        path = tmp_path / "qf.zip"
        path.write_bytes(gen.zip_files({f"uuid/{k}": v for k, v in files.items()}))
        return path
    return gen.write_tree(files, tmp_path / "qf")


def _found(rep: Any) -> set[tuple[str, str, str, str | None]]:
    return {(f.location.module or "", f.rule, f.severity.value,
             f.indicator.collection if f.indicator else None) for f in rep.all_findings()}


@pytest.mark.parametrize("zipped", [False, True])
def test_planted_events_as_mvt(tmp_path: Path, index: IocIndex, zipped: bool) -> None:
    """MVT 2026.10 (check-androidqf, run by hand on this capture) alerts on: the Predator
    domain looked up, the NoviSpy address and app connecting, RCS Lab's app, the file
    pushed to the campaign path (critical) and the CA installed (medium). spywall also
    matches the NoviSpy address among the DNS answers, and RCS Lab's app both where it
    was installed and where it started."""
    out = check_capture(_capture(tmp_path, True, zipped=zipped), index, modules=ONLY)  # type: ignore[arg-type]
    assert _found(out.report) == {
        ("dns_event", "ioc-domain", "critical", "Predator"),
        ("dns_event", "ioc-ipv4", "critical", "NoviSpy"),
        ("connect_event", "ioc-ipv4", "critical", "NoviSpy"),
        ("connect_event", "ioc-app-id", "critical", "NoviSpy"),
        ("security_event", "ioc-app-id", "critical", "RCSLab"),
        ("security_event", "ioc-file-path", "critical", "MercenarySpywareCampaign"),
        ("security_event", "android-il-cert-authority-installed", "medium", None),
    }
    runs = {m.name: (m.status, m.records) for m in out.report.modules}
    # MVT's counts on the same files: 2 DNS, 3 connect, 7 security events
    assert runs == {"dns_event": ("ok", 2), "connect_event": ("ok", 3),
                    "security_event": ("ok", 7)}
    assert "1 duplicate event(s) dropped; 1 line(s) not JSON" in out.report.modules[0].message
    dns = out.ctx.records["dns_event"][1]
    assert (dns.timestamp, dns.data["hostname"], dns.data["package_name"]) == (
        "2024-01-14T23:00:00Z", f"cdn.{gen.PREDATOR_DOMAIN}", "com.android.chrome")
    sec = {r.event: r for r in out.ctx.records["security_event"]}
    assert sec["os_startup"].data["os_startup.verified_boot_state"] == "green"  # the zip
    assert sec["package_installed"].timestamp == "2024-01-14T22:58:20Z"  # nanoseconds


def test_clean_capture_and_none(tmp_path: Path, index: IocIndex) -> None:
    out = check_capture(_capture(tmp_path, False), index, modules=ONLY)  # type: ignore[arg-type]
    assert _found(out.report) == set()
    assert [m.status for m in out.report.modules] == ["ok", "ok", "ok"]
    files = gen.androidqf_files(False, with_bugreport=False)
    out = check_capture(gen.write_tree(files, tmp_path / "none"), index, modules=ONLY)  # type: ignore[arg-type]
    assert [m.status for m in out.report.modules] == ["skipped"] * 3


def test_heuristics_and_odd_events(tmp_path: Path, index: IocIndex) -> None:
    lines = [
        {"security_event": {"event_id": 1, "event_time": 1, "cert_validation_failure":
                            "Unable to build a chain"}},
        {"security_event": {"event_id": 2, "event_time": 2, "crypto_self_test_completed": 0}},
        {"security_event": {"event_id": 3, "event_time": 3, "crypto_self_test_completed": 1}},
        {"security_event": {"event_id": 4, "event_time": 4, "cert_authority_installed":
                            {"success": False, "subject": "CN=x"}}},
        {"security_event": {"event_id": 5, "event_time": 5,
                            "adb_shell_cmd": {"command": f"am start {gen.RCS_APP}/.Main"}}},
        {"security_event": {"event_id": 6, "event_time": 6, "wipe_failure": {}}},
        {"dns_event": "not an object"}, [1, 2], {"connect_event": {"ip_address": 7}},
    ]
    text = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    out = check_capture(_capture(tmp_path, False, extra={"intrusion_logs/x.txt": text}),
                        index, modules=ONLY)  # type: ignore[arg-type]
    rules = sorted(f.rule for f in out.report.all_findings())
    assert rules == ["android-il-cert-validation-failure",
                     "android-il-crypto-self-test-completed", "android-il-wipe-failure"]
    # a command names an app as one of its words, not as the whole text (MVT's form)
    cmd = tmp_path / "c"
    line = json.dumps({"security_event": {"event_time": 9, "adb_shell_cmd": {
        "command": f"pm path {gen.RCS_APP}"}}}).encode()
    out = check_capture(_capture(cmd, False, extra={"intrusion_logs/y.txt": line}), index,
                        modules=ONLY)  # type: ignore[arg-type]
    assert ("security_event", "ioc-app-id", "critical", "RCSLab") in _found(out.report)


def test_addresses() -> None:
    assert [il.address(a) for a in ("/1.2.3.4", "h.example/1.2.3.4", "ip6-localhost/::1",
                                    "2a00::1")] == ["1.2.3.4", "1.2.3.4", "::1", "2a00::1"]


def test_caps(tmp_path: Path, index: IocIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(il, "MAX_EVENTS", 3)
    out = check_capture(_capture(tmp_path, True), index, modules=ONLY)  # type: ignore[arg-type]
    assert "limit" in {e.code for e in out.report.subjects[0].errors}
    assert "incomplete-examination" in {f.rule for f in out.report.all_findings()}
    nested = tmp_path / "n"
    inner = gen.zip_files({"a.zip": b"PK\x05\x06" + b"\0" * 18})
    out = check_capture(_capture(nested, False, extra={"intrusion_logs/e.zip": inner}), index,
                        modules=ONLY)  # type: ignore[arg-type]
    assert any(e.path.endswith("intrusion_logs/e.zip") and e.code == "malformed"
               for e in out.report.subjects[0].errors)
    monkeypatch.setattr(il, "MAX_EVENTS", 2_000_000)
    monkeypatch.setattr(il, "MAX_ARCHIVES", 1)  # an export archive's members past the cap
    many = gen.zip_files({"a.txt": b"", "b.txt": b""})
    out = check_capture(_capture(tmp_path / "m", False, extra={"intrusion_logs/m.zip": many}),
                        index, modules=ONLY)  # type: ignore[arg-type]
    assert any(e.path.endswith("intrusion_logs/m.zip") and e.code == "limit"
               for e in out.report.subjects[0].errors)
    assert "incomplete-examination" in {f.rule for f in out.report.all_findings()}


@pytest.mark.parametrize("zipped", [False, True])
def test_exports_alone(tmp_path: Path, index: IocIndex, zipped: bool) -> None:
    """The phone's ``Download/Intrusion Logging`` folder given alone, as MVT's
    ``check-intrusion-logs`` takes it (MVT 2026.10 on this folder: the same alerts as
    inside the androidqf capture); a folder of other text is still refused."""
    files = {k.removeprefix("intrusion_logs/"): v for k, v in android_il.exports(True).items()}
    if zipped:
        path = tmp_path / "Intrusion Logging.zip"
        path.write_bytes(gen.zip_files(files))
    else:
        path = gen.write_tree(files, tmp_path / "Intrusion Logging")
    out = check_capture(path, index)
    assert out.report.subjects[0].format == "intrusion"
    assert {m.name for m in out.report.modules if m.status == "ok"} == {
        "dns_event", "connect_event", "security_event"}
    assert ("security_event", "ioc-file-path", "critical", "MercenarySpywareCampaign") in _found(
        out.report)
    assert len(out.report.all_findings()) == 8
    other = gen.write_tree({"notes.txt": b"{\"a\": 1}\n", "b.txt": b"hello\n"}, tmp_path / "o")
    with pytest.raises(InputError, match="neither an androidqf capture nor a bugreport"):
        check_capture(other, index)
