"""End to end: pcaps written by samples.pcapwriter, run through the capture pipeline with
the VoIP analyzer; and a cross-check of the RTCP length findings against tshark."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from spywall.iocs import IocIndex
from spywall.net.pipeline import CaptureResult, Pipeline
from spywall.net.voip.analyzer import VoipAnalyzer
from spywall.samples import voip as v

CALLER, CALLEE = ("192.0.2.10", 5060), ("198.51.100.20", 5060)
NSO = ("104.223.76.220", 5060)


def dialog(n: int, caller: tuple[str, int] = CALLER, user: str = "alice@atlanta.example",
           callee: tuple[str, int] = CALLEE) -> v.Dialog:
    return v.Dialog(f"e2e-{n}@x", user, f"bob{n}@biloxi.example", caller, callee)


def run(data: bytes, iocs: IocIndex | None = None) -> CaptureResult:
    return Pipeline("e2e.pcap", iocs, VoipAnalyzer).run(io.BytesIO(data))


def voip(res: CaptureResult) -> list[tuple[str, int | None]]:
    return sorted((f.rule, f.location.frame) for f in res.findings
                  if f.rule.startswith("voip-"))


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_clean_calls(fmt: str) -> None:
    s = v.Script()
    v.clean_call(s, 1000.0, dialog(1), rtp_packets=25)
    v.clean_call(s, 1100.0, dialog(2, ("192.0.2.11", 5062)), tcp=True, media=(49200, 30200),
                 rtp_packets=25)
    v.clean_call(s, 1200.0, dialog(3, ("192.0.2.12", 5060)), secure=True,
                 media=(49300, 30300), rtp_packets=25)
    cap = s.capture()
    res = run(cap.pcap() if fmt == "pcap" else cap.pcapng())
    assert res.errors == []
    assert res.findings == []
    assert res.frames == len(s.events)
    by_id = {c.call_id: c for c in res.calls}
    assert sorted(by_id) == ["e2e-1@x", "e2e-2@x", "e2e-3@x"]
    for c in by_id.values():
        assert c.state == "ended"
        assert c.caller == "sip:alice@atlanta.example"
        secure = c.call_id == "e2e-3@x"
        assert sorted(m.protocol for m in c.media) == (
            ["srtcp", "srtcp", "stun+srtp", "stun+srtp"] if secure else
            ["rtcp", "rtcp", "stun+rtp", "stun+rtp"])
        assert sum(m.packets for m in c.media) == 2 * 25 + 2 + 2
    assert by_id["e2e-1@x"].first_frame == 1
    # the TCP call starts at the segment completing the INVITE: handshake, then 2 segments
    assert by_id["e2e-2@x"].first_frame == len([e for e in s.events if e.ts < 1100.0]) + 5


def stix_bundle(path: Path) -> Path:
    """A small STIX 2.1 bundle with the 2019 infrastructure from the court record."""
    when = {"spec_version": "2.1", "created": "2019-05-13T00:00:00Z",
            "modified": "2019-05-13T00:00:00Z"}

    def ident(kind: str, n: int) -> str:
        return f"{kind}--{n:08d}-0000-4000-8000-000000000000"

    malware = {"type": "malware", "id": ident("malware", 1), "name": "Pegasus",
               "is_family": True, **when}
    inds = [{"type": "indicator", "id": ident("indicator", n), "pattern": pattern,
             "pattern_type": "stix", "valid_from": "2019-05-13T00:00:00Z", **when}
            for n, pattern in enumerate(["[ipv4-addr:value = '104.223.76.220']",
                                         "[domain-name:value = 'nsogroup.com']"], 1)]
    rels = [{"type": "relationship", "id": ident("relationship", n),
             "relationship_type": "indicates", "source_ref": i["id"],
             "target_ref": malware["id"], **when} for n, i in enumerate(inds, 1)]
    path.write_text(json.dumps({"type": "bundle", "id": ident("bundle", 1),
                                "objects": [malware, *inds, *rels]}))
    return path


def test_zero_click_capture(tmp_path: Path) -> None:
    iocs = IocIndex.load([stix_bundle(tmp_path / "wa2019.stix2")])
    s = v.Script()
    v.clean_call(s, 500.0, dialog(0), rtp_packets=10)     # an ordinary call first
    start = len(s.events)
    frames = v.zero_click_call(s, 900.0, dialog(1, NSO, "wis@sip.nsogroup.com"))
    res = run(s.capture().pcap(), iocs)
    assert res.errors == []
    got = voip(res)
    assert [f for r, f in got if r == "voip-rtcp-length"] == frames
    assert [f for r, f in got if r == "voip-rtcp-oversize"] == frames
    assert ("voip-zero-click-media", frames[0]) in got
    iocs_hit = {(f.rule, f.indicator.matched, f.location.frame) for f in res.findings
                if f.indicator is not None}
    assert ("voip-ioc-host", "sip.nsogroup.com", start + 1) in iocs_hit
    assert ("ioc-ip", "104.223.76.220", start + 1) in iocs_hit     # the capture layer's own
    states = {c.call_id: c.state for c in res.calls}
    assert states == {"e2e-0@x": "ended", "e2e-1@x": "failed"}


def test_tcp_sip_content_length_mismatch_over_udp_only() -> None:
    s = v.Script()
    d = dialog(5)
    s.udp(1.0, CALLER, CALLEE, d.request("INVITE", body=v.sdp(CALLER[0], 49170),
                                         content_length=10))
    assert voip(run(s.capture().pcap())) == [("voip-sip-content-length", 1)]


TSHARK = shutil.which("tshark")


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_rtcp_length_agrees_with_tshark(tmp_path: Path) -> None:
    """Every frame tshark 4.x reports an RTCP length problem in (the expert info
    rtcp.length_check.bad, or a malformed-packet exception inside the RTCP dissector, with
    heuristic RTCP on) has a voip-rtcp-* finding. spywall is stricter the other way: bytes
    after the last part are a finding here, tshark ignores them."""
    s = v.Script()
    a, b = ("203.0.113.1", 40001), ("203.0.113.2", 41001)
    crafted = [v.sr(1)[:20], v.compound(1) + b"\x00" * 4, v.rtcp_part(201, 0, bytes(4), length=9),
               v.sr(1) + v.sdes(1, item_length=200), v.rtcp_part(201, 0, bytes(4), length=0) +
               v.sdes(1), v.sr(1) + v.xr(1, block_words=40), v.sr(1, blocks=(1,), count=5),
               v.sr(1) + v.bye(1, b"x", reason_length=99)]
    # An INVITE first makes b a call party, so flows to it report from their first packet;
    # one source port per packet keeps the per-flow cap out of the way.
    s.udp(0.5, (a[0], 5060), (b[0], 5060), dialog(9).request("INVITE"))
    s.udp(0.6, a, b, v.compound(1))
    for i, p in enumerate([*crafted, v.compound(1)]):
        s.udp(1.0 + i, (a[0], a[1] + 2 * i), b, p)
    f = tmp_path / "rtcp.pcap"
    f.write_bytes(s.capture().pcap())
    assert TSHARK is not None
    proc = subprocess.run([TSHARK, "-r", str(f), "-o", "rtcp.heuristic_rtcp:TRUE", "-T",
                           "fields", "-e", "frame.number", "-Y",
                           "rtcp.length_check.bad || (rtcp && _ws.malformed)"],
                          capture_output=True, text=True, timeout=60, check=True)
    theirs = {int(x) for x in proc.stdout.split()}
    assert len(theirs) >= 5, proc.stdout
    ours = {fr for r, fr in voip(run(f.read_bytes())) if r.startswith("voip-rtcp-")}
    assert theirs <= ours
    assert ours == set(range(3, 3 + len(crafted)))


def test_spywall_pcap_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command end to end: exit status, JSON report with calls and frame numbers."""
    from spywall.cli import main
    from spywall.report import load_report

    clean, attack = v.Script(), v.Script()
    v.clean_call(clean, 10.0, dialog(1), rtp_packets=10)
    frames = v.zero_click_call(attack, 20.0, dialog(2, NSO, "wis@sip.nsogroup.com"))
    (tmp_path / "clean.pcap").write_bytes(clean.capture().pcap())
    (tmp_path / "attack.pcapng").write_bytes(attack.capture().pcapng())
    iocs = str(stix_bundle(tmp_path / "wa2019.stix2"))

    assert main(["pcap", "--iocs", iocs, "--quiet", "--format", "json",
                 str(tmp_path / "clean.pcap")]) == 0
    report = load_report(capsys.readouterr().out)
    assert [c.state for c in report.calls] == ["ended"]
    assert report.summary.findings == 0

    assert main(["pcap", "--iocs", iocs, "--quiet", "--format", "json",
                 str(tmp_path / "attack.pcapng")]) == 1
    report = load_report(capsys.readouterr().out)
    rules = {(f.rule, f.location.frame) for f in report.all_findings()}
    assert ("voip-zero-click-media", frames[0]) in rules
    assert ("voip-rtcp-length", frames[0]) in rules
    assert ("voip-ioc-host", 1) in rules
    (call,) = report.calls
    assert (call.state, call.callee, call.anomalies) == \
        ("failed", "sip:bob2@biloxi.example", 2 * len(frames) + 1 + 2)  # + domain and address
