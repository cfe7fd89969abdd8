"""Every VoIP decoder against the builders: each crafted anomaly gives exactly its rule,
each benign structure gives none."""

from __future__ import annotations

import struct

import pytest

from spywall.errors import FormatError
from spywall.net.voip import demux, rtcp, rtp, sdp, sip, srtcp, stun
from spywall.net.voip.rules import RULES, Anomaly
from spywall.samples import voip as v


def anomalies(carrier: str, p: bytes) -> list[Anomaly]:
    if carrier == "rtcp":
        return rtcp.check_rtcp(p)
    if carrier == "srtcp":
        return rtcp.check_srtcp(p)
    if carrier == "srtcp-unknown":
        return srtcp.judge_unsettled(p, list(srtcp.CANDIDATES))
    if carrier.startswith("rtp"):
        a = rtp.check_rtp(p)
        return [a] if a else []
    if carrier == "stun":
        return list(stun.parse_stun(p).anomalies)
    if carrier == "turn":
        return stun.check_channel_data(p)[1]
    msg = sip.parse_sip(p)
    return list(msg.anomalies) + (sdp.parse_sdp(msg.body)[1] if msg.body else [])


@pytest.mark.parametrize("name", sorted(v.CRAFTED))
def test_crafted_gives_its_rule(name: str) -> None:
    c = v.CRAFTED[name]
    assert {a.rule for a in anomalies(c.carrier, c.build())} == {c.rule}, c.note


def test_every_decoder_rule_has_a_crafted_sample() -> None:
    behavioural = {"voip-zero-click-media", "voip-zero-click-campaign", "voip-ioc-host",
                   "voip-rtcp-unsolicited", "voip-unsolicited-campaign"}
    assert set(RULES) - behavioural == {c.rule for c in v.CRAFTED.values()}


BENIGN_RTCP = {
    "sr+sdes": v.compound(1),
    "sr+sdes+bye+xr": v.sr(1) + v.sdes(1) + v.bye(1, b"bye now") + v.xr(1),
    "rr+app": v.rtcp_part(201, 1, struct.pack(">I", 7) + v.report_block(9)) +
    v.rtcp_part(204, 3, struct.pack(">I4s", 7, b"TEST") + b"data"),
    "bye-no-reason": v.rtcp_part(201, 0, bytes(4)) + v.bye(5),
    "padded": v.compound(3) + struct.pack(">BBHI", 0xA0, 201, 2, 3) + b"\x00\x00\x00\x04",
    "every-type": b"".join(v.rtcp_part(pt, 0, bytes(max(info[1] - 4, 4)))
                           for pt, info in rtcp.RTCP_TYPES.items() if pt not in (202, 203, 207)),
}


@pytest.mark.parametrize("name", sorted(BENIGN_RTCP))
def test_benign_rtcp(name: str) -> None:
    assert rtcp.check_rtcp(BENIGN_RTCP[name]) == []


@pytest.mark.parametrize(("tag", "encrypt"), [(10, True), (10, False), (4, True), (4, False)])
def test_srtcp_trailer(tag: int, encrypt: bool) -> None:
    p = v.srtcp(v.compound(9) + v.bye(9), 77, tag_len=tag, encrypt=encrypt)
    assert rtcp.check_srtcp(p) == []
    assert rtcp.srtcp_fits(p) == tag
    assert rtcp.check_rtcp(p), "with the trailer it is not plain RTCP"


def test_srtcp_cleartext_compound_must_walk_to_the_trailer() -> None:
    bad = v.srtcp(v.sr(1) + v.sdes(1, item_length=90), 1, encrypt=False)
    assert rtcp.srtcp_fits(bad) is None
    assert [a.rule for a in rtcp.check_srtcp(bad)] == ["voip-srtcp-length"]


def test_rtcp_length_detail_numbers() -> None:
    (a,) = rtcp.check_rtcp(v.sr(1)[:20])
    assert a.detail["declared"] == 28
    assert a.detail["actual"] == 20


def test_rtcp_oversize_boundary() -> None:
    def app(size: int) -> bytes:
        return v.rtcp_part(204, 0, struct.pack(">I4s", 1, b"SIZE") + bytes(size - 12))
    assert rtcp.check_rtcp(app(rtcp.MAX_RTCP_DATAGRAM)) == []
    assert [a.rule for a in rtcp.check_rtcp(app(rtcp.MAX_RTCP_DATAGRAM + 4))] == \
        ["voip-rtcp-oversize"]


def test_benign_rtp() -> None:
    assert rtp.check_rtp(v.rtp(1, 160, 5)) is None
    assert rtp.check_rtp(v.rtp(1, 160, 5, csrcs=(1, 2, 3), ext=b"\x10abc", padding=3)) is None
    assert rtp.check_rtp(v.rtp(1, 160, 5, b"", padding=1)) is None
    assert rtp.ssrc_seq(v.rtp(513, 0, 0xABCDEF01)) == (0xABCDEF01, 513)


def test_rtp_stream_pacing() -> None:
    pkts = list(v.rtp_stream(3, 5, start=10.0))
    assert [round(t - 10.0, 3) for t, _ in pkts] == [0.0, 0.02, 0.04, 0.06, 0.08]
    assert [rtp.ssrc_seq(p)[1] for _, p in pkts] == [1, 2, 3, 4, 5]


def test_stun_benign_and_fingerprint() -> None:
    for p in (v.binding_request(), v.channel_bind(), v.stun(b"", key=None)):
        msg = stun.parse_stun(p)
        assert msg.anomalies == ()
        assert msg.transaction == b"spywall-txid"
    msg = stun.parse_stun(v.binding_request())
    types = [t for t, _, _ in msg.attributes]
    assert types[-2:] == [stun.MESSAGE_INTEGRITY, stun.FINGERPRINT]
    assert demux.stun_method(stun.parse_stun(v.channel_bind()).msg_type) == 9


def test_stun_not_stun() -> None:
    with pytest.raises(FormatError):
        stun.parse_stun(b"\x00\x01\x00\x00" + bytes(16))


def test_channel_data() -> None:
    inner = v.compound(4)
    data, found = stun.check_channel_data(v.channel_data(0x4001, inner + b"x", pad=False))
    assert found == []
    assert data == inner + b"x"
    assert stun.check_channel_data(v.channel_data(0x4001, inner + b"x"))[1] == []
    bad = stun.check_channel_data(v.channel_data(0x3FFF, inner))[1]
    assert [a.detail.get("channel") for a in bad] == [0x3FFF]
    assert stun.check_channel_data(v.channel_data(0x4001, b"ab") + bytes(8))[1]
    with pytest.raises(FormatError):
        stun.check_channel_data(b"\x40\x01")


def test_sip_dialog_parses() -> None:
    d = v.D
    inv = sip.parse_sip(d.request("INVITE", body=v.sdp("192.0.2.10", 49170)))
    assert (inv.method, inv.uri, inv.call_id, inv.cseq_method) == \
        ("INVITE", "sip:bob@biloxi.example", d.call_id, "INVITE")
    assert ("From", "atlanta.example") in sip.message_hosts(inv)
    ring = sip.parse_sip(d.response(180, "Ringing"))
    assert (ring.status, ring.method, ring.anomalies) == (180, None, ())


def test_sip_compact_and_folded_headers() -> None:
    raw = (b"INVITE sip:b@[2001:db8::1]:5070 SIP/2.0\r\nv: SIP/2.0/UDP h.example:5060"
           b";received=203.0.113.9\r\ni: abc\r\nf: <sip:a@x.example>\r\nt: <sip:b@y.example>\r\n"
           b"Subject: first\r\n  second\r\nl: 0\r\n\r\n")
    msg = sip.parse_sip(raw)
    assert msg.call_id == "abc"
    assert msg.header("subject") == "first second"
    hosts = sip.message_hosts(msg)
    assert ("Request-URI", "2001:db8::1") in hosts
    assert ("Via", "h.example") in hosts
    assert ("Via", "203.0.113.9") in hosts


def test_sip_not_sip() -> None:
    with pytest.raises(FormatError):
        sip.parse_sip(b"HTTP/1.1 200 OK\r\n\r\n")
    assert not sip.looks_like_sip(b"\x80\x00")


def test_sip_stream_framing() -> None:
    d = v.D
    a = d.request("INVITE", body=v.sdp("192.0.2.10", 49170))
    b = d.response(180, "Ringing")
    st = sip.SipStream()
    assert st.feed(a[:50]) == ([], [])
    msgs, found = st.feed(a[50:] + b"\r\n\r\n" + b[:10])
    assert msgs == [a]
    assert found == []
    assert st.feed(b[10:]) == ([b], [])
    junk = sip.SipStream()
    assert junk.feed(b"GET / HTTP/1.1\r\n") == ([], [])
    assert junk.dead


def test_sip_stream_bounds() -> None:
    st = sip.SipStream()
    msgs, found = st.feed(b"INVITE sip:x SIP/2.0\r\n" + b"X: y\r\n" * 12000)
    assert msgs == []
    assert [a.rule for a in found] == ["voip-sip-oversize"]
    assert st.dead
    st = sip.SipStream()
    _, found = st.feed(b"INVITE sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n")
    assert [a.rule for a in found] == ["voip-sip-content-length"]


def test_sip_header_count() -> None:
    raw = b"OPTIONS sip:x SIP/2.0\r\n" + b"X-A: 1\r\n" * 300 + b"Content-Length: 0\r\n\r\n"
    assert [a.rule for a in sip.parse_sip(raw).anomalies] == ["voip-sip-oversize"]


def test_sdp_media_learning() -> None:
    s, found = sdp.parse_sdp(v.sdp("192.0.2.1", 5004, mux=True, secure=True))
    assert found == []
    (m,) = s.media
    assert (m.port, m.rtcp_port, m.mux, m.secure, m.conn) == (5004, 5004, True, True, "192.0.2.1")
    body = (b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
            b"m=audio 5004 RTP/AVP 0\r\na=rtcp:6000 IN IP4 192.0.2.9\r\nm=video 0 RTP/AVP 96\r\n")
    s, found = sdp.parse_sdp(body)
    assert found == []
    assert [(m.rtcp_port, m.rtcp_addr) for m in s.media] == \
        [(6000, "192.0.2.9"), (1, "192.0.2.1")]


@pytest.mark.parametrize("body", [
    b"o=- 1 1 IN IP4 h\r\n",                       # no v=
    b"v=0\r\nc=IN IP4 300.1.1.1\r\n",              # bad address
    b"v=0\r\nc=IN IP5 192.0.2.1\r\n",
    b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n",
    b"v=0\r\nm=audio 5004/x RTP/AVP 0\r\n",
])
def test_sdp_malformed(body: bytes) -> None:
    assert {a.rule for a in sdp.parse_sdp(body)[1]} == {"voip-sdp-malformed"}


@pytest.mark.parametrize("line", [b"m=audio 80 RTP/AVP 0", b"m=audio 5004/100 RTP/AVP 0"])
def test_sdp_absurd_ports(line: bytes) -> None:
    assert {a.rule for a in sdp.parse_sdp(b"v=0\r\n" + line + b"\r\n")[1]} == {"voip-sdp-absurd"}


def test_sdp_placeholder_port_is_fine() -> None:
    assert sdp.parse_sdp(b"v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")[1] == []


def test_demux_table() -> None:
    assert [demux.classify(bytes([b, 0])) for b in (0, 3, 17, 22, 64, 128, 200)] == \
        [demux.STUN, demux.STUN, demux.ZRTP, demux.DTLS, demux.TURN, demux.RTP, demux.OTHER]
    assert demux.classify(bytes([0x80, 200])) == demux.RTCP
    assert demux.classify(bytes([0x80, 96])) == demux.RTP


def test_xr_fixed_block_lengths() -> None:
    ok = v.rtcp_part(207, 0, struct.pack(">I", 1) + struct.pack(">BBH", 6, 0, 9) + bytes(36))
    assert rtcp.check_rtcp(ok) == []
    bad = v.rtcp_part(207, 0, struct.pack(">I", 1) + struct.pack(">BBH", 4, 0, 3) + bytes(12))
    assert [(a.rule, a.detail["block_length"]) for a in rtcp.check_rtcp(bad)] == \
        [("voip-rtcp-xr-block", 3)]
