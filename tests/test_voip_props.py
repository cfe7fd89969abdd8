"""Property tests: every VoIP decoder and the analyzer, on random and mutated bytes, raise
nothing but SpywallError and finish quickly."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spywall.errors import SpywallError
from spywall.net.packet import Datagram
from spywall.net.voip import rtcp, rtp, sdp, sip, stun
from spywall.net.voip.analyzer import VoipAnalyzer
from spywall.samples import voip as v
from spywall.samples.deployments import SHAPES

D = v.D
SEEDS = [c.build() for c in v.CRAFTED.values()] + [
    v.compound(1), v.sr(1) + v.sdes(1) + v.bye(1, b"x") + v.xr(1), v.srtcp(v.compound(2), 3),
    v.rtp(1, 2, 3, csrcs=(4,), ext=b"abcd", padding=2), v.binding_request(), v.channel_bind(),
    v.channel_data(0x4001, v.compound(5)), D.request("INVITE", body=v.sdp("192.0.2.1", 4000)),
    D.response(200, "OK", body=v.sdp("192.0.2.2", 5000)), v.sdp("192.0.2.1", 4000, mux=True),
    # proxied, forked and callee-side messages with BUNDLE/ICE SDP (samples.deployments)
    *(e.payload for e in SHAPES["ice-bundle-turn"].build(True).script.events[:6]),
    *(e.payload for e in SHAPES["prack-update"].build(False).script.events[-12:]),
]


def _sip_stream(p: bytes) -> object:
    st_ = sip.SipStream()
    return st_.feed(p[: len(p) // 2]), st_.feed(p[len(p) // 2 :])


DECODERS: dict[str, Callable[[bytes], object]] = {
    "rtp": rtp.check_rtp,
    "rtcp": rtcp.check_rtcp,
    "srtcp": rtcp.check_srtcp,
    "stun": stun.parse_stun,
    "channel": stun.check_channel_data,
    "sip": sip.parse_sip,
    "sip-stream": _sip_stream,
    "sdp": sdp.parse_sdp,
}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.integers(0, 2))
        if op == 0:
            data[i] = draw(st.integers(0, 255))
        elif op == 1:
            del data[i : i + draw(st.integers(1, 16))]
        else:
            data[i:i] = draw(st.binary(max_size=16))
    return bytes(data)


INPUTS = st.one_of(st.binary(max_size=2048), mutated())
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _call(fn: Callable[[bytes], object], data: bytes) -> None:
    start = time.perf_counter()
    with contextlib.suppress(SpywallError):
        fn(data)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_decoder_only_raises_spywall_errors(name: str) -> None:
    @FAST
    @given(INPUTS)
    def prop(data: bytes) -> None:
        _call(DECODERS[name], data)

    prop()


@FAST
@given(st.lists(st.tuples(INPUTS, st.sampled_from([5060, 3478, 40000, 40001]),
                          st.booleans()), max_size=12))
def test_analyzer_never_raises(packets: list[tuple[bytes, int, bool]]) -> None:
    an = VoipAnalyzer(None, "prop")
    for i, (data, port, tcp) in enumerate(packets, 1):
        d = Datagram(i, float(i), "192.0.2.1", "192.0.2.2", port, port + (i % 2),
                     "tcp" if tcp else "udp", data)
        (an.tcp if tcp else an.udp)(d)
    an.finish()


@settings(max_examples=60, deadline=None)
@example(2530, 3000, 3, False, False, False)   # media on port 5060
@given(st.integers(1024, 32000), st.integers(1024, 32000), st.integers(1, 30), st.booleans(),
       st.booleans(), st.booleans())
def test_any_clean_call_gives_no_finding(pa: int, pb: int, count: int, secure: bool, tcp: bool,
                                         v6: bool) -> None:
    """No false positives on well-formed calls, whatever their ports, size or transport."""
    a, b = ("2001:db8::a", "2001:db8::b") if v6 else ("192.0.2.1", "198.51.100.2")
    d = v.Dialog("prop@x", "alice@atlanta.example", "bob@biloxi.example", (a, 5060), (b, 5060))
    s = v.Script()
    v.clean_call(s, 1.0, d, media=(pa * 2, pb * 2), secure=secure, tcp=tcp, rtp_packets=count)
    an = VoipAnalyzer(None, "prop")
    findings = []
    for i, e in enumerate(s.events, 1):
        if e.payload:
            dg = Datagram(i, e.ts, e.src, e.dst, e.sport, e.dport, e.transport, e.payload)
            findings += an.udp(dg) if e.transport == "udp" else an.tcp(dg)
    calls, late = an.finish()
    assert findings + late == []
    assert [c.state for c in calls] == ["ended"]
    assert sum(m.packets for m in calls[0].media) == 2 * count + 4


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 400), max_size=12))
def test_sip_stream_framing_ignores_segment_boundaries(cuts: list[int]) -> None:
    """However a TCP stream is cut into segments, the same SIP messages come out."""
    msgs = [D.request("INVITE", body=v.sdp("192.0.2.1", 4000)), D.response(100, "Trying"),
            D.response(200, "OK", body=v.sdp("192.0.2.2", 5000)), D.request("ACK")]
    data = b"\r\n\r\n".join(msgs)   # with RFC 5626 keep-alives between them
    stream, out, pos = sip.SipStream(), [], 0
    for n in [*cuts, len(data)]:
        got, found = stream.feed(data[pos : pos + n])
        assert found == []
        out += got
        pos += n
    assert out == msgs
