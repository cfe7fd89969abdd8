"""Adversarial suite: small indicator files and evidence databases that used to cost
gigabytes or most of a minute. Each runs the real CLI under the ceilings of
``hostile_run``; the assertions name the budget that stopped the work, so they fail on
code without it whatever the speed of the machine."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from hostile_run import assert_sound, run_cli

from spywall.iocs.stix import MAX_SLOW_CHARS, MAX_UNSUPPORTED_LISTED, load_bundle


def _bundle(patterns: list[str]) -> str:
    return json.dumps({"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "indicator", "id": f"indicator--{i}", "pattern": p, "pattern_type": "stix"}
        for i, p in enumerate(patterns)]})


def test_deeply_nested_patterns_are_not_given_to_the_parser(tmp_path: Path) -> None:
    nested = "(" * 500 + "[domain-name:value = 'a.example']" + ")" * 500
    path = tmp_path / "nested.json"
    path.write_text(_bundle([nested] * 3000))  # 3 MB: 54 s and 0.9 GB before
    run = run_cli("iocs", "stats", "--iocs", str(path))
    assert_sound(run)
    assert run.report["device"]["unsupported_patterns"] == 3000  # type: ignore[index]
    messages = [e["message"] for e in run.report["errors"]]  # type: ignore[index]
    assert messages
    assert all("nested deeper than 16" in m for m in messages)


def test_complex_patterns_have_a_text_budget(tmp_path: Path) -> None:
    one = ("[" + " OR ".join(f"domain-name:value = 'a{i}.example'" for i in range(20))
           + " OR domain-name:value != 'x.example']")
    path = tmp_path / "slow.json"
    path.write_text(_bundle([one] * 5000))  # 4 MB: 52 s before
    run = run_cli("iocs", "stats", "--iocs", str(path))
    assert_sound(run)
    # each one is reported, none is half-matched
    assert run.report["device"]["unsupported_patterns"] == 5000  # type: ignore[index]
    loaded = load_bundle(path.read_bytes(), "slow.json", "x")
    over = [m for m in loaded.unsupported if "characters in all: not parsed" in m]
    assert loaded.unsupported_total == 5000
    assert len(loaded.unsupported) == MAX_UNSUPPORTED_LISTED  # the first ones listed
    parsed = MAX_SLOW_CHARS // len(one)
    assert parsed <= MAX_UNSUPPORTED_LISTED - len(over) <= parsed + 1


def test_a_manifest_db_view_bomb_is_refused(tmp_path: Path) -> None:
    from spywall.samples.ios import BackupSpec, write_backup

    root = write_backup(tmp_path / "b", BackupSpec())
    db = root / "Manifest.db"
    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute(  # 4 KB of schema that made 2.5 GB of rows in 30 s
        "CREATE VIEW Files AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
        "FROM c LIMIT 2900000) SELECT printf('%040d', i) AS fileID, 'HomeDomain' AS domain, "
        "printf('%.*c', 300, 'a') AS relativePath, 1 AS flags, randomblob(300) AS file "
        "FROM c")
    conn.commit()
    conn.close()
    run = run_cli("check-ios", str(root))
    assert "Traceback" not in run.stderr
    assert run.code == 2
    assert "not authorized" in run.stderr


def test_a_capture_that_drops_data_at_a_cap_is_not_clean(tmp_path: Path) -> None:
    from spywall.samples import pcapwriter as pw

    path = tmp_path / "frags.pcap"
    payload = pw.udp(5060, 5060, b"INVITE sip:x@example.org SIP/2.0\r\n" * 30)
    frags = pw.fragment_ipv4("10.0.0.1", "10.0.0.2", 17, payload, ident=7, size=8)
    assert len(frags) > 64  # the reassembler keeps at most 64 fragments of a datagram
    with path.open("wb") as fh:
        w = pw.PcapWriter(fh)
        for i, f in enumerate(frags):
            w.write(1.0 + i / 1000, pw.frame("eth", f))
    run = run_cli("pcap", "--no-iocs", str(path))
    assert_sound(run)
    assert run.code == 1
    assert "incomplete-examination" in run.rules
    assert any(code == "limit" and "fragments" in m for code, m in run.errors)
    old = run_cli("pcap", "--no-iocs", "--allow-incomplete", str(path))
    assert old.code == 0
    assert "incomplete-examination" not in old.rules


def test_a_device_check_that_hits_a_cap_is_not_clean(tmp_path: Path) -> None:
    from spywall.samples.ios_fs import DumpSpec, write_dump

    root = write_dump(tmp_path / "d", DumpSpec(planted=False, prefix=""))
    deep = root / "private/var/mobile"
    for i in range(60):  # deeper than the dump walk goes
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    run = run_cli("check-ios", str(root))
    assert_sound(run)
    assert run.code == 1
    # the sample phone has Lockdown Mode on: an information-level finding, as MVT's
    assert [r for r in run.rules if r != "ios-lockdown-mode-on"] == ["incomplete-examination"]
    assert any(code == "limit" and "deeper than" in m for code, m in run.errors)
