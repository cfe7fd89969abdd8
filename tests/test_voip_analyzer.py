"""VoipAnalyzer fed Datagrams from packet scripts: calls, flows, demux, zero-click, IOCs."""

from __future__ import annotations

import pytest

from spywall.iocs import Indicator, IocIndex
from spywall.net.packet import Datagram
from spywall.net.voip import zeroclick
from spywall.net.voip.analyzer import MAX_PER_FLOW, VoipAnalyzer
from spywall.report import CallSummary, Finding, FindingKind
from spywall.samples import voip as v

CALLER, CALLEE = ("192.0.2.10", 5060), ("198.51.100.20", 5060)


def dialog(n: int = 0, callee_ip: str = CALLEE[0]) -> v.Dialog:
    return v.Dialog(f"call-{n}@atlanta.example", "alice@atlanta.example",
                    f"bob{n}@biloxi.example", CALLER, (callee_ip, 5060))


def run(script: v.Script, iocs: IocIndex | None = None
        ) -> tuple[list[CallSummary], list[Finding]]:
    an = VoipAnalyzer(iocs, "test.pcap")
    out: list[Finding] = []
    for i, e in enumerate(script.events, 1):
        if not e.payload:
            continue
        d = Datagram(i, e.ts, e.src, e.dst, e.sport, e.dport, e.transport, e.payload)
        out += an.udp(d) if e.transport == "udp" else an.tcp(d)
    summaries, late = an.finish()
    return summaries, out + late


@pytest.mark.parametrize(("secure", "tcp"), [(False, False), (True, False), (False, True)])
def test_clean_call(secure: bool, tcp: bool) -> None:
    s = v.Script()
    v.clean_call(s, 1_600_000_000.0, dialog(), secure=secure, tcp=tcp, rtp_packets=20)
    summaries, findings = run(s)
    assert findings == []
    (c,) = summaries
    assert (c.call_id, c.caller, c.callee, c.state) == \
        ("call-0@atlanta.example", "sip:alice@atlanta.example", "sip:bob0@biloxi.example",
         "ended")
    assert (c.started or "").startswith("2020-09-13T12:26:40")
    flows = {(m.sport, m.dport): m for m in c.media}
    assert flows[(49170, 30000)].packets == 21   # 20 RTP + the STUN check
    assert flows[(49170, 30000)].protocol == ("stun+srtp" if secure else "stun+rtp")
    assert flows[(30001, 49171)].protocol == ("srtcp" if secure else "rtcp")
    assert c.anomalies == 0
    assert c.packets == 7 + sum(m.packets for m in c.media)   # SIP messages + media


def test_call_states() -> None:
    s = v.Script()
    d = dialog()
    s.udp(1.0, CALLER, CALLEE, d.request("INVITE", body=v.sdp(CALLER[0], 49170)))
    assert run(s)[0][0].state == "offered"
    s.udp(1.1, CALLEE, CALLER, d.response(180, "Ringing"))
    assert run(s)[0][0].state == "ringing"
    s.udp(1.2, CALLEE, CALLER, d.response(200, "OK"))
    assert run(s)[0][0].state == "answered"
    s.udp(1.3, CALLER, CALLEE, d.request("BYE", cseq=2, to_tag=True))
    assert run(s)[0][0].state == "ended"
    rejected = v.Script()
    rejected.udp(1.0, CALLER, CALLEE, d.request("INVITE"))
    rejected.udp(1.1, CALLEE, CALLER, d.response(486, "Busy Here"))
    assert run(rejected)[0][0].state == "failed"


def test_zero_click_media() -> None:
    s = v.Script()
    frames = v.zero_click_call(s, 100.0, dialog())
    summaries, findings = run(s)
    assert summaries[0].state == "failed"
    by_rule: dict[str, list[Finding]] = {}
    for f in findings:
        by_rule.setdefault(f.rule, []).append(f)
    assert set(by_rule) == {"voip-rtcp-length", "voip-rtcp-oversize", "voip-zero-click-media"}
    assert [f.location.frame for f in by_rule["voip-rtcp-length"]] == frames
    length = by_rule["voip-rtcp-length"][0]
    assert length.kind == FindingKind.EXPLOIT
    assert "CVE-2019-3568" in length.cves
    assert length.location.protocol == "rtcp"
    (zc,) = by_rule["voip-zero-click-media"]
    assert zc.location.frame == frames[0]
    assert zc.detail["packets"] == len(frames)
    assert summaries[0].anomalies == 2 * len(frames) + 1


def _early(d: v.Dialog) -> v.Script:
    """INVITE and a 183 Session Progress with the callee's SDP (early media may follow)."""
    s = v.Script()
    s.udp(1.0, CALLER, CALLEE, d.request("INVITE", body=v.sdp(CALLER[0], 49170)))
    s.udp(1.1, CALLEE, CALLER, d.response(183, "Session Progress",
                                          body=v.sdp(CALLEE[0], 30000)))
    return s


def test_answered_call_with_early_media_is_not_zero_click() -> None:
    d = dialog()
    s = _early(d)
    for ts, p in v.rtp_stream(7, 5, start=1.2):
        s.udp(ts, (CALLER[0], 49170), (CALLEE[0], 30000), p)
    s.udp(2.0, CALLEE, CALLER, d.response(200, "OK", body=v.sdp(CALLEE[0], 30000)))
    assert run(s)[1] == []


def test_campaign() -> None:
    s = v.Script()
    frames = [v.zero_click_call(s, 100.0 + n * 60, dialog(n, f"198.51.100.{20 + n}"),
                                rtcp_packets=1)[0] for n in range(zeroclick.CAMPAIGN_MIN_CALLEES)]
    _, findings = run(s)
    zc = [f for f in findings if f.rule.startswith("voip-zero-click")]
    assert sorted(f.rule for f in zc) == ["voip-zero-click-campaign"] + \
        ["voip-zero-click-media"] * zeroclick.CAMPAIGN_MIN_CALLEES
    (camp,) = (f for f in zc if f.rule == "voip-zero-click-campaign")
    assert camp.severity == "critical"
    assert camp.detail["callees"] == zeroclick.CAMPAIGN_MIN_CALLEES
    assert camp.location.frame == frames[-1]


def test_campaign_needs_the_window() -> None:
    s = v.Script()
    for n in range(zeroclick.CAMPAIGN_MIN_CALLEES):
        v.zero_click_call(s, 100.0 + n * (zeroclick.CAMPAIGN_WINDOW + 1),
                          dialog(n, f"198.51.100.{20 + n}"), rtcp_packets=1)
    rules = [f.rule for f in run(s)[1]]
    assert "voip-zero-click-campaign" not in rules
    assert rules.count("voip-zero-click-media") == zeroclick.CAMPAIGN_MIN_CALLEES


def test_ioc_hosts() -> None:
    iocs = IocIndex()
    iocs.add([Indicator("domain", "nsogroup.com", "domain-name:value", "Pegasus", "t.stix2"),
              Indicator("ipv4", "104.223.76.220", "ipv4-addr:value", "Pegasus", "t.stix2")])
    d = v.Dialog("x@y", "wis@sip.nsogroup.com", "victim@biloxi.example",
                 ("104.223.76.220", 5060), CALLEE)
    s = v.Script()
    s.udp(5.0, d.caller_addr, CALLEE, d.request("INVITE", body=v.sdp("104.223.76.220", 40000)))
    s.udp(5.1, CALLEE, d.caller_addr, d.response(180, "Ringing"))
    _, findings = run(s, iocs)
    hits = {(f.indicator.matched if f.indicator else None, f.location.frame) for f in findings}
    assert hits == {("sip.nsogroup.com", 1), ("104.223.76.220", 1)}
    assert all(f.kind == FindingKind.INDICATOR and f.rule == "voip-ioc-host" for f in findings)
    assert run(s, IocIndex())[1] == []


def test_repeats_are_capped() -> None:
    s = v.Script()
    d = dialog()
    s.udp(1.0, CALLER, CALLEE, d.request("INVITE", body=v.sdp(CALLER[0], 49170)))
    s.udp(1.2, CALLEE, CALLER, d.response(200, "OK", body=v.sdp(CALLEE[0], 30000)))
    for i in range(10):
        s.udp(2 + i, (CALLER[0], 49171), (CALLEE[0], 30001), v.sr(1)[:20])
    findings = run(s)[1]
    assert len(findings) == MAX_PER_FLOW
    assert findings[-1].detail["repeats"] == 10 - MAX_PER_FLOW


def test_unconfirmed_flow_holds_back_then_reports() -> None:
    an = VoipAnalyzer(None, "t")
    a, b = ("203.0.113.1", 40000), ("203.0.113.2", 41000)
    bad = v.sr(0x77)[:20]

    def dg(frame: int, p: bytes) -> Datagram:
        return Datagram(frame, 1.0 + frame, a[0], b[0], a[1], b[1], "udp", p)

    assert an.udp(dg(1, bad)) == []           # unknown flow, one packet: held back
    out = an.udp(dg(2, bad))                  # same SSRC again: confirmed, both reported
    assert [f.location.frame for f in out] == [1, 2]


def test_random_udp_is_quiet() -> None:
    import random

    rnd = random.Random(7)
    an = VoipAnalyzer(None, "t")
    for i in range(3000):
        p = rnd.randbytes(rnd.randrange(1, 300))
        d = Datagram(i + 1, float(i), "10.0.0.1", "10.0.0.2", 40000 + i % 7, 50000, "udp", p)
        assert an.udp(d) == []
    assert an.finish() == ([], [])


def test_turn_relayed_rtcp_is_checked() -> None:
    an = VoipAnalyzer(None, "t")
    a, srv = ("203.0.113.5", 50000), ("198.51.100.99", 3478)
    d1 = Datagram(1, 1.0, a[0], srv[0], a[1], srv[1], "udp", v.channel_bind())
    assert an.udp(d1) == []
    relayed = v.channel_data(0x4001, v.sr(3)[:20] + bytes(4))
    out = an.udp(Datagram(2, 1.1, srv[0], a[0], srv[1], a[1], "udp", relayed))
    assert [f.rule for f in out] == ["voip-rtcp-length"]
    ok = an.udp(Datagram(3, 1.2, srv[0], a[0], srv[1], a[1], "udp",
                         v.channel_data(0x4001, v.compound(3))))
    assert ok == []


def test_sip_over_tcp_content_length_and_oversize() -> None:
    an = VoipAnalyzer(None, "t")
    big = b"INVITE sip:x@y SIP/2.0\r\n" + b"X-Pad: " + b"a" * 70000
    out = an.tcp(Datagram(1, 1.0, "192.0.2.1", "192.0.2.2", 40000, 5060, "tcp", big))
    assert [f.rule for f in out] == ["voip-sip-oversize"]
    assert out[0].location.protocol == "sip"


def _answered(secure: bool, callee_ip: str = CALLEE[0], caller_ip: str = CALLER[0]
              ) -> v.Script:
    d = v.Dialog("m@x", "alice@atlanta.example", "bob@biloxi.example", (caller_ip, 5060),
                 (callee_ip, 5060))
    s = v.Script()
    s.udp(1.0, d.caller_addr, d.callee_addr,
          d.request("INVITE", body=v.sdp(caller_ip, 49170, secure=secure)))
    s.udp(1.2, d.callee_addr, d.caller_addr,
          d.response(200, "OK", body=v.sdp(callee_ip, 30000, secure=secure)))
    return s


def test_srtcp_on_a_secure_flow() -> None:
    s = _answered(secure=True)
    good = s.udp(2.0, (CALLER[0], 49171), (CALLEE[0], 30001), v.srtcp(v.compound(1), 1))
    bad = s.udp(2.1, (CALLER[0], 49171), (CALLEE[0], 30001),
                v.srtcp(v.rtcp_part(200, 0, v.sr(1)[4:], length=200), 2))
    findings = run(s)[1]
    assert [(f.rule, f.location.frame, f.location.protocol) for f in findings] == \
        [("voip-srtcp-length", bad, "srtcp")]
    assert good == bad - 1


def test_srtcp_shape_on_a_plain_flow_is_a_length_problem() -> None:
    s = _answered(secure=False)
    frame = s.udp(2.0, (CALLER[0], 49171), (CALLEE[0], 30001), v.srtcp(v.compound(1), 1))
    assert [(f.rule, f.location.frame) for f in run(s)[1]] == [("voip-rtcp-length", frame)]


def test_ipv6_call_media_is_learned() -> None:
    caller, callee = "2001:db8::10", "2001:db8:0:0::20"
    s = _answered(False, callee_ip=callee, caller_ip=caller)
    for ts, p in v.rtp_stream(5, 3, start=2.0):
        s.udp(ts, ("2001:db8::10", 49170), ("2001:db8::20", 30000), p)
    summaries, findings = run(s)
    assert findings == []
    assert [(m.dst, m.packets, m.protocol) for m in summaries[0].media] == \
        [("2001:db8::20", 3, "rtp")]


def test_zero_click_through_a_turn_relay() -> None:
    s = v.Script()
    d = dialog()
    relay = ("198.51.100.99", 3478)
    s.udp(1.0, CALLER, CALLEE, d.request("INVITE", body=v.sdp(CALLER[0], 49170)))
    s.udp(1.1, CALLEE, CALLER, d.response(180, "Ringing"))
    frame = s.udp(1.2, relay, (CALLEE[0], 50000), v.channel_data(0x4001, v.compound(9)))
    s.udp(2.0, CALLER, CALLEE, d.request("CANCEL"))
    (zc,) = run(s)[1]
    assert (zc.rule, zc.location.frame, zc.location.protocol) == \
        ("voip-zero-click-media", frame, "turn")


def test_rule_table_is_complete() -> None:
    from spywall.net.voip.rules import RULES

    for rule in RULES.values():
        assert rule.id.startswith("voip-")
        assert rule.title
        assert len(rule.description) > 40
        assert rule.references
        if rule.kind == FindingKind.EXPLOIT:
            assert rule.cves


def test_unanswered_call_with_early_media_is_not_zero_click() -> None:
    d = dialog()
    s = _early(d)
    for (ts, a), (_, b) in zip(v.rtp_stream(7, 5, start=1.2), v.rtp_stream(8, 5, start=1.2),
                               strict=True):
        s.udp(ts, (CALLEE[0], 30000), (CALLER[0], 49170), b)   # announcement to the caller
        s.udp(ts, (CALLER[0], 49170), (CALLEE[0], 30000), a)
    s.udp(3.0, CALLER, CALLEE, d.request("CANCEL"))
    assert run(s)[1] == []
    # the same call without the callee's RTP is the zero-click shape
    one_sided = v.Script([e for e in s.events if e.src != CALLEE[0] or e.sport == 5060])
    assert [f.rule for f in run(one_sided)[1]] == ["voip-zero-click-media"]


@pytest.mark.parametrize("secure", [False, True])
def test_rtp_padding_is_checked_on_plain_flows_only(secure: bool) -> None:
    s = _answered(secure=secure)
    crafted = v.CRAFTED["rtp-padding"].build()
    frame = s.udp(2.0, (CALLER[0], 49170), (CALLEE[0], 30000), crafted)
    got = [(f.rule, f.location.frame) for f in run(s)[1]]
    assert got == ([] if secure else [("voip-rtp-header", frame)])


def test_unexplained_flow_to_the_callee_joins_the_call() -> None:
    s = v.Script()
    frames = v.zero_click_call(s, 100.0, dialog(), port=41234, sport=45000)  # not in any SDP
    ((c,), findings) = run(s)
    assert c.anomalies == len(findings) == 2 * len(frames) + 1
    (flow,) = [m for m in c.media if m.dport == 41234]
    assert (flow.packets, flow.first_frame, flow.protocol) == (len(frames), frames[0], "rtcp")


def test_random_udp_to_a_call_party_is_quiet() -> None:
    """A phone's other UDP traffic (not learned from SDP) must not look like broken RTP."""
    import random

    rnd = random.Random(11)
    s = _answered(secure=False)
    for i in range(2000):
        s.udp(3.0 + i / 100, (CALLEE[0], 20000 + i % 5), ("203.0.113.7", 60000),
              rnd.randbytes(rnd.randrange(1, 200)))
    assert run(s)[1] == []


def test_unlearned_rtp_flow_is_confirmed_by_its_sequence() -> None:
    s = _answered(secure=False)
    a, b = (CALLER[0], 44000), (CALLEE[0], 45000)   # ICE-chosen ports, not in the SDP
    s.udp(2.0, a, b, v.rtp(10, 0, 0x99))
    s.udp(2.02, a, b, v.rtp(11, 160, 0x99))
    bad = s.udp(2.04, a, b, v.CRAFTED["rtp-extension"].build())
    assert [(f.rule, f.location.frame) for f in run(s)[1]] == [("voip-rtp-header", bad)]
    far = _answered(secure=False)
    far.udp(2.0, a, b, v.rtp(10, 0, 0x99))
    far.udp(2.02, a, b, v.rtp(5000, 160, 0x99))       # a jump: not one RTP source yet
    far.udp(2.04, a, b, v.CRAFTED["rtp-extension"].build())
    assert run(far)[1] == []


def test_findings_per_rule_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    from spywall.net.voip import analyzer

    monkeypatch.setattr(analyzer, "MAX_PER_RULE", 5)
    s = v.Script()
    d = dialog()
    s.udp(1.0, CALLER, CALLEE, d.request("INVITE"))
    for i in range(12):   # a flood from 12 source ports: 12 flows, one finding each
        s.udp(2 + i, (CALLER[0], 30000 + 2 * i), (CALLEE[0], 40000), v.sr(1)[:20])
    length = [f for f in run(s)[1] if f.rule == "voip-rtcp-length"]
    assert len(length) == 5
    assert length[-1].detail["suppressed_in_capture"] == 7
