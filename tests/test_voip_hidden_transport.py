"""`spywall pcap` on RTCP carried over TCP (RFC 4571) and in TURN ChannelData (#14).

The CVE-2019-3568 trigger (an SR whose length runs past the compound) rides inside a
call's media: over one TCP connection with a 2-byte length before each packet, cut into
segments at random places, reordered and partly retransmitted; relayed by a TURN server
in ChannelData over UDP (padding optional) and over TCP (padded to 4 bytes, the stream cut
at random places). Each has a clean twin with an ordinary compound in its place. tshark,
decoding the same files (RTP over TCP by decode-as, ChannelData by its STUN dissector,
heuristic RTCP), must see an RTCP length problem in the very frames spywall reports.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.net.pipeline import CaptureResult, Pipeline
from spywall.net.voip.analyzer import VoipAnalyzer
from spywall.samples import hidden_media as h
from spywall.samples import voip as v
from spywall.samples.pcapwriter import Capture

TSHARK = shutil.which("tshark")
T0 = 1_557_000_000.0
CUTS = st.lists(st.integers(0, 1 << 14), max_size=12)


def run(cap: Capture) -> CaptureResult:
    return Pipeline("hidden.pcap", None, VoipAnalyzer).run(io.BytesIO(cap.pcap()))


def rules(res: CaptureResult) -> list[tuple[str, int | None]]:
    assert res.errors == []
    return sorted((f.rule, f.location.frame) for f in res.findings)


def tcp_capture(
    draw: st.DrawFn | None = None,
    *,
    crafted: bool = True,
    answered: bool = True,
    at: int = 1,
    cuts: tuple[int, ...] = (9, 150, 151, 600),
) -> Capture:
    cap = Capture()
    order: list[int] | None = None
    again: list[int] = []
    if draw is not None:
        cuts = tuple(draw(CUTS))
        stream = h.rfc4571(h.media_packets(h.SSRC_A, 12, at=at, crafted=crafted)[0])
        count = len({c % len(stream) for c in cuts} - {0}) + 1
        order = draw(st.permutations(range(count)))
        again = draw(st.lists(st.integers(0, count - 1), max_size=3))
    h.tcp_call(
        cap, T0, cuts=cuts, order=order, again=again, at=at, crafted=crafted, answered=answered
    )
    return cap


# ---- RTP/RTCP over TCP (RFC 4571) -------------------------------------------------------
def test_rfc4571_trigger_and_clean_twin() -> None:
    [(rule, _)] = rules(run(tcp_capture()))
    assert rule == "voip-rtcp-length"
    assert rules(run(tcp_capture(crafted=False))) == []


def test_rfc4571_the_2019_shape() -> None:
    """Unanswered: the trigger reaches the callee before any answer (both detectors)."""
    found = {r for r, _ in rules(run(tcp_capture(answered=False)))}
    assert found == {"voip-rtcp-length", "voip-zero-click-media"}
    assert {r for r, _ in rules(run(tcp_capture(answered=False, crafted=False)))} == {
        "voip-zero-click-media"
    }


@settings(max_examples=40, deadline=None)
@given(st.data(), st.integers(0, 3), st.booleans())
def test_rfc4571_any_split_order_and_place(data: st.DataObject, at: int, crafted: bool) -> None:
    res = run(tcp_capture(data.draw, crafted=crafted, at=at))
    assert [r for r, _ in rules(res)] == (["voip-rtcp-length"] if crafted else [])
    [call] = res.calls
    assert [m.protocol for m in call.media if m.dport == h.MEDIA_B[1]] == ["rtp+rtcp"]


def test_a_first_segment_of_one_byte_still_sniffs() -> None:
    cap = tcp_capture(cuts=(1, 2, 3))
    assert [r for r, _ in rules(run(cap))] == ["voip-rtcp-length"]


def test_sip_over_tcp_in_one_byte_segments() -> None:
    """The first segment used to decide alone whether a stream was SIP: one byte was not
    enough, and the call went unseen."""
    d = v.Dialog(
        "bytes@x",
        "alice@atlanta.example",
        "bob@biloxi.example",
        h.CALLER,
        h.CALLEE,
        transport="TCP",
    )
    invite = d.request("INVITE", body=h.media_sdp(*h.MEDIA_A, "RTP/AVP", [], 1))
    cap = Capture()
    h.handshake(cap, T0, h.CALLER, h.CALLEE)
    cap.tcp_stream(T0 + 0.1, h.CALLER, h.CALLEE, invite, range(1, 40))
    res = run(cap)
    assert [(c.call_id, c.state) for c in res.calls] == [("bytes@x", "offered")]


# ---- TURN ChannelData ---------------------------------------------------------------------
def turn_capture(
    *,
    tcp: bool,
    crafted: bool = True,
    at: int = 1,
    pads: tuple[bool, ...] = (),
    cuts: tuple[int, ...] = (5, 77, 300),
) -> Capture:
    cap = Capture()
    h.turn_call(cap, T0, tcp=tcp, crafted=crafted, at=at, pads=pads, cuts=cuts)
    return cap


@pytest.mark.parametrize("tcp", [False, True])
def test_turn_trigger_and_clean_twin(tcp: bool) -> None:
    [(rule, _)] = rules(run(turn_capture(tcp=tcp)))
    assert rule == "voip-rtcp-length"
    assert rules(run(turn_capture(tcp=tcp, crafted=False))) == []


@pytest.mark.parametrize("crafted", [True, False])
def test_turn_udp_on_another_port_with_no_allocation(crafted: bool) -> None:
    """The capture starts after the Allocate, the server listens on 34780: ChannelData is
    told by its shape, and the flow is confirmed by the RTP source inside it."""
    cap = Capture()
    h.turn_call(
        cap, T0, tcp=False, crafted=crafted, server=("203.0.113.5", 34780), allocate_seen=False
    )
    assert [r for r, _ in rules(run(cap))] == (["voip-rtcp-length"] if crafted else [])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 3), st.booleans(), st.lists(st.booleans(), min_size=1, max_size=5))
def test_turn_udp_any_place_and_padding(at: int, crafted: bool, pads: list[bool]) -> None:
    res = run(turn_capture(tcp=False, crafted=crafted, at=at, pads=tuple(pads)))
    assert [r for r, _ in rules(res)] == (["voip-rtcp-length"] if crafted else [])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 3), st.booleans(), CUTS)
def test_turn_tcp_any_place_and_split(at: int, crafted: bool, cuts: list[int]) -> None:
    res = run(turn_capture(tcp=True, crafted=crafted, at=at, cuts=tuple(cuts)))
    assert [r for r, _ in rules(res)] == (["voip-rtcp-length"] if crafted else [])


# ---- every crafted RTCP/RTP anomaly of the rule set, on every hidden carrier ----------------
MEDIA_CRAFTED = sorted(n for n, c in v.CRAFTED.items() if c.carrier in ("rtcp", "rtp"))


@pytest.mark.parametrize("name", MEDIA_CRAFTED)
@pytest.mark.parametrize("carrier", ["rfc4571", "turn-udp", "turn-tcp"])
def test_every_crafted_media_anomaly(name: str, carrier: str) -> None:
    c = v.CRAFTED[name]
    cap = Capture()
    if carrier == "rfc4571":
        h.tcp_call(cap, T0, cuts=(5, 200, 201, 700), bad=c.build())
    else:
        h.turn_call(cap, T0, tcp=carrier == "turn-tcp", cuts=(3, 90, 400), bad=c.build())
    # RTP padding is checked only where SDP says plain RTP (in SRTP the last octet belongs
    # to the tag); the TURN samples carry no SDP.
    expected = [] if name == "rtp-padding" and carrier != "rfc4571" else [c.rule]
    assert [r for r, _ in rules(run(cap))] == expected, c.note


# ---- tshark as the oracle -----------------------------------------------------------------
def tshark_bad_frames(path: Path, *extra: str) -> set[int]:
    proc = subprocess.run(
        [
            TSHARK or "tshark",
            "-r",
            str(path),
            "-o",
            "rtcp.heuristic_rtcp:TRUE",
            "-o",
            "tcp.desegment_tcp_streams:TRUE",
            "-o",
            "tcp.reassemble_out_of_order:TRUE",
            *extra,
            "-Y",
            "rtcp.length_check.bad || (rtcp && _ws.malformed)",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {int(x) for x in proc.stdout.split()}


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed (apt-get install tshark)")
@pytest.mark.parametrize("crafted", [True, False])
def test_tshark_rfc4571(tmp_path: Path, crafted: bool) -> None:
    path = tmp_path / "rfc4571.pcap"
    cap = tcp_capture(crafted=crafted)
    path.write_bytes(cap.pcap())
    theirs = tshark_bad_frames(path, "-d", f"tcp.port=={h.MEDIA_B[1]},rtp")
    ours = {fr for r, fr in rules(run(cap)) if r.startswith("voip-rtcp-")}
    assert theirs == ours
    assert bool(ours) == crafted


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed (apt-get install tshark)")
@pytest.mark.parametrize("tcp", [False, True])
@pytest.mark.parametrize("crafted", [True, False])
def test_tshark_turn(tmp_path: Path, tcp: bool, crafted: bool) -> None:
    path = tmp_path / "turn.pcap"
    cap = turn_capture(tcp=tcp, crafted=crafted)
    path.write_bytes(cap.pcap())
    theirs = tshark_bad_frames(path)
    ours = {fr for r, fr in rules(run(cap)) if r.startswith("voip-rtcp-")}
    assert theirs == ours
    assert bool(ours) == crafted
