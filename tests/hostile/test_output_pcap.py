"""``spywall pcap`` with a hostile capture name and SIP Call-ID and caller (a SIP header
cannot hold a line break; everything else is there): reported, shown escaped, exact in
JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from output_hostile import MARKUP, RAW, assert_safe, assert_shown_escaped, hostile_path, run

from spywall.samples.captures import CAMPAIGN_HOSTS, CAMPAIGN_IPS, T0, court_record_bundle
from spywall.samples.voip import Dialog, Script, zero_click_call

Cap = pytest.CaptureFixture[str]
MP = pytest.MonkeyPatch
HEADER = MARKUP + "".join(RAW)  # what one SIP header line can carry
CALL_ID = f"zc{HEADER}@caller"


def _evidence(tmp_path: Path) -> tuple[Path, Path]:
    s = Script()
    d = Dialog(CALL_ID, f"attacker{HEADER}@{CAMPAIGN_HOSTS[0]}", "victim@192.168.1.20",
               (CAMPAIGN_IPS[0], 5060), ("192.168.1.20", 5060))
    zero_click_call(s, T0 + 1, d)
    cap = hostile_path(tmp_path, ".pcap")
    cap.write_bytes(s.capture().pcap())
    iocs = tmp_path / "court.stix2"
    iocs.write_bytes(court_record_bundle())
    return cap, iocs


def test_table_and_log_lines_are_safe(tmp_path: Path, capsys: Cap, monkeypatch: MP) -> None:
    cap, iocs = _evidence(tmp_path)
    code, out, err = run(capsys, monkeypatch, ["pcap", str(cap), "--iocs", str(iocs),
                                               "-f", "table"])
    assert code == 1
    assert_safe(out)
    assert_safe(err)
    assert_shown_escaped(out)
    assert_shown_escaped(err)
    for rule in ("ioc-ip", "voip-rtcp-length", "voip-zero-click-media"):
        assert rule in out
    assert "zc[/x][bold green]CLEAN" in out  # the Call-ID, its markup shown as text
    assert "\\x1b]8;;https:evil.example\\x07" in out


def test_json_keeps_the_exact_call_id(tmp_path: Path, capsys: Cap, monkeypatch: MP) -> None:
    cap, iocs = _evidence(tmp_path)
    code, out, _ = run(capsys, monkeypatch, ["pcap", str(cap), "--iocs", str(iocs),
                                             "-f", "json"])
    assert code == 1
    report = json.loads(out)
    assert [c["call_id"] for c in report["calls"]] == [CALL_ID]
    assert report["subjects"][0]["path"] == str(cap)
