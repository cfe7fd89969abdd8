"""The zero-click pattern on real deployment shapes (samples.deployments), with and without
SIP, and on none of their clean twins; calls, legs and states cross-checked with tshark."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.net.packet import Datagram
from spywall.net.pipeline import CaptureResult, Pipeline
from spywall.net.voip import calls as calls_mod
from spywall.net.voip.analyzer import MAX_PER_FLOW, VoipAnalyzer
from spywall.net.voip.calls import CALLEE, CALLER, CallTable
from spywall.net.voip.sdp import parse_sdp
from spywall.net.voip.sip import parse_sip
from spywall.samples.deployments import SHAPES, T0, Built, trunk
from spywall.samples.siplegs import Stream, offer

TSHARK = shutil.which("tshark")
NAMES = sorted(SHAPES)
ZERO_CLICK = ("voip-zero-click-", "voip-rtcp-unsolicited", "voip-unsolicited-")


def run(b: Built) -> CaptureResult:
    return Pipeline("shape.pcap", None, VoipAnalyzer).run(io.BytesIO(b.script.capture().pcap()))


@pytest.mark.parametrize("name", NAMES)
def test_attack_is_reported(name: str) -> None:
    shape = SHAPES[name]
    built = shape.build(True)
    res = run(built)
    assert res.errors == []
    assert {f.rule for f in res.findings} == set(shape.expected), shape.note
    assert built.attack_frames
    for f in res.findings:
        assert f.location.frame in built.attack_frames, (f.rule, f.message)
        assert f.detail["signalling"] == ("sip" if built.sip else "none")
        assert "CVE-2019-3568" in f.cves
    per_target = [f.location.frame or 0 for f in res.findings if "campaign" not in f.rule]
    if per_target:
        assert min(per_target) == built.attack_frames[0]


@pytest.mark.parametrize("name", NAMES)
def test_clean_twin_is_quiet(name: str) -> None:
    res = run(SHAPES[name].build(False))
    assert res.errors == []
    assert res.findings == [], SHAPES[name].note


@pytest.mark.parametrize("name", NAMES)
def test_twins_differ_in_the_attack_only_on_the_media_side(name: str) -> None:
    """The SIP calls of both twins are the same calls, the attack ones never answered."""
    attack, clean = run(SHAPES[name].build(True)), run(SHAPES[name].build(False))
    assert sorted(c.call_id for c in attack.calls) == sorted(c.call_id for c in clean.calls)
    assert SHAPES[name].build(True).sip == bool(attack.calls) or name == "one-way-stream"


def test_trunk_sides_come_from_the_dialog() -> None:
    """The issue's capture: the gateway's media address is on the caller's side, the
    proxy on both, the phone and its SDP address on the callee's."""
    table = CallTable()
    built = trunk(True)
    for i, e in enumerate(built.script.events, 1):
        if e.sport == 5060:
            msg = parse_sip(e.payload)
            sdp = parse_sdp(msg.body)[0] if msg.body else None
            table.on_sip(msg, Datagram(i, e.ts, e.src, e.dst, e.sport, e.dport, "udp",
                                       e.payload), sdp)
    (call,) = table.calls.values()
    assert call.sig == {"203.0.113.5": CALLER, "10.0.0.2": CALLER | CALLEE,
                        "10.0.1.20": CALLEE}
    assert call.media == {("203.0.113.50", 16384): CALLER, ("10.0.1.20", 11000): CALLEE}
    assert call.legs == [("203.0.113.5", "10.0.0.2"), ("10.0.0.2", "10.0.1.20")]
    assert call.state == calls_mod.FAILED
    assert call.cancelled


def test_candidates_are_endpoints() -> None:
    body = offer("10.9.0.5", (Stream("audio", 50000, (("10.9.0.5", 50000, "host"),
                                                      ("198.51.100.99", 49152, "relay"))),),
                 bundle=True)
    session, found = parse_sdp(body + b"a=candidate:9 1 TCP 1 192.0.2.1 9 typ host\r\n"
                               b"a=candidate:bad\r\n")
    assert found == []
    assert session.media[0].candidates == (("10.9.0.5", 50000), ("198.51.100.99", 49152))


def test_callee_reinvite_and_callee_bye_keep_sides() -> None:
    """A re-INVITE and a BYE from the callee travel callee -> caller: the callee's new
    SDP is the callee's, and the caller's answer in the 200 is the caller's."""
    res = run(SHAPES["prack-update"].build(False))
    (c,) = res.calls
    assert c.state == "ended"
    assert c.legs == ["203.0.113.5 -> 10.0.1.22"]
    ports = {(m.sport, m.dport) for m in c.media}
    assert {(17002, 11002), (11002, 17002)} <= ports


def test_unsolicited_needs_a_burst_or_many_targets() -> None:
    """Two unsolicited compounds to one phone: neither a burst nor a campaign."""
    built = SHAPES["media-only-campaign"].build(True)
    keep = {e.dst for e in built.script.events[:2]}
    built.script.events = [e for e in built.script.events if e.dst in keep]
    assert run(built).findings == []


def test_rtp_back_explains_the_rtcp() -> None:
    """The media-only attack with the phone sending RTP back first is an ordinary call."""
    from spywall.samples.voip import Event, rtp

    built = SHAPES["media-only"].build(True)
    check = built.script.events[0]   # relay -> phone; the phone's RTP goes the other way
    built.script.events.insert(2, Event(check.ts + 0.1, "udp", check.dst, check.dport,
                                        check.src, check.sport, rtp(1, 0, 0x77)))
    assert run(built).findings == []


# ---- tshark --------------------------------------------------------------------------
SIP_SHAPES = [n for n in NAMES if SHAPES[n].build(False).sip and n != "one-way-stream"]


def _tshark(path: Path, *args: str) -> str:
    assert TSHARK is not None
    return subprocess.run([TSHARK, "-r", str(path), *args], capture_output=True, text=True,
                          timeout=120, check=True).stdout


class _Seen(msgspec.Struct):
    n: int = 0
    legs: list[str] = msgspec.field(default_factory=list)
    codes: list[int] = msgspec.field(default_factory=list)
    methods: set[str] = msgspec.field(default_factory=set)


def _tshark_calls(path: Path) -> dict[str, tuple[int, list[str], str]]:
    """Per Call-ID from tshark's SIP decoding: messages, INVITE hops (no To tag), and the
    state by RFC 3261: a 2xx to INVITE answers, BYE ends, CANCEL or a final >= 300
    without a 2xx fails."""
    out = _tshark(path, "-Y", "sip", "-T", "fields", "-E", "separator=|", "-e", "ip.src",
                  "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "sip.Call-ID",
                  "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.CSeq.method",
                  "-e", "sip.to.tag")
    seen: dict[str, _Seen] = {}
    for line in out.splitlines():
        s4, s6, d4, d6, cid, method, status, cseq, to_tag = line.split("|")
        c = seen.setdefault(cid, _Seen())
        c.n += 1
        c.methods.add(method)
        hop = f"{s4 or s6} -> {d4 or d6}"
        if method == "INVITE" and not to_tag and hop not in c.legs:
            c.legs.append(hop)
        if status and cseq == "INVITE":
            c.codes.append(int(status))
    result: dict[str, tuple[int, list[str], str]] = {}
    for cid, c in seen.items():
        answered = any(200 <= x < 300 for x in c.codes)
        state = ("ended" if "BYE" in c.methods else "answered" if answered else
                 "failed" if "CANCEL" in c.methods or any(x >= 300 for x in c.codes) else
                 "ringing" if any(100 < x < 200 for x in c.codes) else "offered")
        result[cid] = (c.n, c.legs, state)
    return result


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (make system-deps)")
@pytest.mark.parametrize("attack", [True, False], ids=["attack", "clean"])
@pytest.mark.parametrize("name", SIP_SHAPES)
def test_calls_agree_with_tshark(name: str, attack: bool, tmp_path: Path) -> None:
    built = SHAPES[name].build(attack)
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(built.script.capture().pcap())
    ours = {c.call_id: (c.packets - sum(m.packets for m in c.media), c.legs, c.state)
            for c in Pipeline(str(path), None, VoipAnalyzer).run(io.BytesIO(
                path.read_bytes())).calls}
    assert ours == _tshark_calls(path)
    stat = _tshark(path, "-q", "-z", "sip,stat")
    total = re.search(r"Number of SIP messages: (\d+)", stat)
    assert total is not None, stat
    assert int(total.group(1)) == sum(n for n, _, _ in ours.values())


VOIP_STATES = {"failed": ("CANCELLED", "REJECTED"), "ended": ("COMPLETED",),
               "answered": ("IN CALL",), "ringing": ("RINGING",), "offered": ("CALL SETUP",)}


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (make system-deps)")
@pytest.mark.parametrize("name", SIP_SHAPES)
def test_states_agree_with_tshark_voip_calls(name: str, tmp_path: Path) -> None:
    """The VoIP Calls analysis (``-z voip,calls``): one SIP call per Call-ID, with a
    matching state. Wireshark registers it for its GUI; tshark builds seen so far refuse
    it, so this runs only where tshark accepts it."""
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(SHAPES[name].build(True).script.capture().pcap())
    assert TSHARK is not None
    proc = subprocess.run([TSHARK, "-r", str(path), "-q", "-z", "voip,calls"],
                          capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0 and "Invalid -z argument" in proc.stderr:
        pytest.skip("this tshark refuses -z voip,calls (Wireshark's VoIP Calls is a GUI "
                    "dialog); test_calls_agree_with_tshark checked calls, legs and states "
                    "from tshark's SIP fields and sip,stat instead")
    rows = [ln for ln in proc.stdout.splitlines() if "SIP" in ln]
    ours = Pipeline(str(path), None, VoipAnalyzer).run(io.BytesIO(path.read_bytes())).calls
    assert len(rows) == len(ours), proc.stdout
    for c in ours:
        assert sum(any(s in r for s in VOIP_STATES[c.state]) for r in rows) >= 1, proc.stdout


MEDIA_SHAPES = [n for n in NAMES if not SHAPES[n].build(True).sip]


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (make system-deps)")
@pytest.mark.parametrize("name", MEDIA_SHAPES)
def test_media_only_evidence_agrees_with_tshark(name: str, tmp_path: Path) -> None:
    """With its RTP/RTCP heuristics on, tshark decodes every attack frame as RTCP (a
    sender report first), sees no SIP, and sees no RTP from any attacked endpoint back to
    the source: the facts the media-only findings rest on."""
    built = SHAPES[name].build(True)
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(built.script.capture().pcap())
    ports = sorted({e.dport for i, e in enumerate(built.script.events, 1)
                    if i in built.attack_frames})
    decode = [a for p in ports for a in ("-d", f"udp.port=={p},rtcp")]
    out = _tshark(path, *decode, "-T", "fields", "-E", "separator=|", "-e", "frame.number",
                  "-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst",
                  "-e", "rtcp.pt", "-e", "frame.protocols")
    rows = [ln.split("|") for ln in out.splitlines()]
    rtcp_frames = {int(r[0]) for r in rows if r[5].startswith("200")}
    assert set(built.attack_frames) <= rtcp_frames
    assert not any(":sip" in r[6] for r in rows)
    source = {(r[1] or r[2]) for r in rows if int(r[0]) in built.attack_frames}
    victims = {(r[3] or r[4]) for r in rows if int(r[0]) in built.attack_frames}
    back = [r for r in rows if (r[1] or r[2]) in victims and (r[3] or r[4]) in source]
    assert all(r[6].endswith(":stun") for r in back), back   # ICE checks only, no media
    for f in run(built).findings:
        assert f.location.frame in rtcp_frames


def test_one_direction_capture_with_rtcp_on_its_own_port_is_quiet() -> None:
    """A paging server to three phones seen one way only (a SPAN of one direction), RTCP
    on a port of its own (a=rtcp): its RTP came first, so its RTCP answers nothing wrong."""
    from spywall.samples.voip import Script, compound, rtp

    s = Script()
    for n in range(3):
        src, dst = ("192.0.2.90", 40000), (f"192.168.1.{60 + n}", 40000)
        for i in range(300):
            s.udp(1000.0 + n + i * 0.02, src, dst, rtp(i + 1, i * 160, 0x9000 + n))
        for k in range(2):
            s.udp(1001.0 + n + 5 * k, ("192.0.2.90", 40100), (dst[0], 40100),
                  compound(0x9000 + n))
    assert run(Built(s, [], sip=False)).findings == []
    # without the RTP the same RTCP is unsolicited, to three endpoints: a campaign
    only_rtcp = Script([e for e in s.events if e.sport == 40100])
    assert [f.rule for f in run(Built(only_rtcp, [], sip=False)).findings] == \
        ["voip-unsolicited-campaign"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(NAMES), st.booleans(), st.lists(st.tuples(
    st.integers(0, 10_000), st.integers(0, 4096), st.binary(max_size=8)), max_size=10))
def test_mutated_deployments_never_raise(name: str, attack: bool,
                                         edits: list[tuple[int, int, bytes]]) -> None:
    """Hostile versions of every shape: bytes of random packets overwritten (tags, Via,
    SDP, RTCP): the analyzer reports what it finds and never raises."""
    built = SHAPES[name].build(attack)
    events = built.script.events
    for which, at, junk in edits:
        e = events[which % len(events)]
        p = e.payload
        events[which % len(events)] = msgspec.structs.replace(
            e, payload=p[:at % (len(p) + 1)] + junk + p[at % (len(p) + 1) + len(junk):])
    an = VoipAnalyzer(None, "mutated")
    for i, e in enumerate(events, 1):
        an.udp(Datagram(i, e.ts, e.src, e.dst, e.sport, e.dport, "udp", e.payload))
    an.finish()


def test_proxy_timeout_with_its_own_tag_fails_the_call() -> None:
    """The phone rings (To tag ph), the proxy gives up and answers the caller 480 with a
    tag of its own: the caller got a final response, so the call failed (and media to the
    phone after it is not pre-answer media of a ringing call)."""
    from spywall.samples.siplegs import Hop, Leg, invite
    from spywall.samples.voip import Script, compound

    sbc, proxy, phone = ("203.0.113.5", 5060), ("10.0.0.2", 5060), ("10.0.1.20", 5060)
    leg = Leg("timeout-1@x", "sip:a@carrier.example", "t1", "sip:2001@office.example")
    up, down = Hop(leg, (sbc,)), Hop(leg, (proxy, sbc))
    s = Script()
    invite(s, 1.0, [(up, sbc, proxy), (down, proxy, phone)], b"")
    s.udp(1.2, phone, proxy, down.response(180, "Ringing", to_tag="ph"))
    s.udp(1.21, proxy, sbc, up.response(180, "Ringing", to_tag="ph"))
    inner = s.udp(30.0, phone, proxy, down.response(486, "Busy Here", to_tag="other"))
    s.udp(31.0, proxy, sbc, up.response(480, "Temporarily Unavailable", to_tag="px"))
    s.udp(32.0, ("203.0.113.50", 16384), (phone[0], 11000), compound(1))
    res = run(Built(s, []))
    (c,) = res.calls
    assert c.state == "failed"
    assert res.findings == []
    # up to the 480 the call still rang: the 486 with another tag was one fork's answer
    before = Script(s.events[:inner])
    assert run(Built(before, [])).calls[0].state == "ringing"


def test_rtp_after_the_burst_does_not_erase_it() -> None:
    """The source sending RTP of its own after its RTCP burst explains later RTCP, not the
    burst (an attacker cannot wipe the evidence by following up with media)."""
    from spywall.samples.voip import Event, rtp

    built = SHAPES["media-only"].build(True)
    last = built.script.events[-1]
    built.script.events += [Event(last.ts + 0.1 + i * 0.02, "udp", last.src, last.sport,
                                  last.dst, last.dport, rtp(i + 1, i * 160, 0x55))
                            for i in range(5)]
    assert [f.rule for f in run(built).findings] == ["voip-rtcp-unsolicited"]


def test_a_call_whose_end_was_missed_does_not_claim_later_media() -> None:
    """The capture missed how a ringing call ended; an hour later a paging server streams
    one-way RTP to the same desk phone (no SIP): not pre-answer media of the old call."""
    from spywall.samples.voip import compound, rtp

    old = SHAPES["trunk-proxy"].build(True)
    old.script.events = [e for e in old.script.events if e.sport == 5060
                         and not e.payload.startswith((b"CANCEL", b"SIP/2.0 487",
                                                       b"SIP/2.0 200", b"ACK"))]
    pager, phone = ("10.0.0.9", 40000), ("10.0.1.20", 40000)
    for i in range(100):
        old.script.udp(T0 + 3600.0 + i * 0.02, pager, phone, rtp(i + 1, i * 160, 0x9A9E))
    old.script.udp(T0 + 3602.5, pager, phone, compound(0x9A9E))
    res = run(old)
    assert [c.state for c in res.calls] == ["ringing"]
    assert res.findings == []


def test_an_invite_flood_to_one_phone_stays_bounded() -> None:
    """A thousand ringing calls to one phone: the phone is pending for the newest
    MAX_PENDING_PER_ADDRESS of them only, and the newest call still catches the media."""
    from spywall.samples.siplegs import Hop, Leg, invite
    from spywall.samples.voip import Script, compound

    sbc, phone = ("203.0.113.5", 5060), ("10.0.1.20", 5060)
    s = Script()
    for n in range(1000):
        leg = Leg(f"flood-{n}@x", "sip:a@carrier.example", f"f{n}", "sip:2001@office.example")
        hop = Hop(leg, (sbc,))
        invite(s, 1.0 + n * 0.001, [(hop, sbc, phone)], b"")
        s.udp(1.0 + n * 0.001, phone, sbc, hop.response(180, "Ringing", to_tag=f"t{n}"))
    s.udp(3.0, ("203.0.113.50", 16384), (phone[0], 11000), compound(1))
    an = VoipAnalyzer(None, "flood")
    for i, e in enumerate(s.events, 1):
        an.udp(Datagram(i, e.ts, e.src, e.dst, e.sport, e.dport, "udp", e.payload))
    assert len(an.calls.pending[phone[0]]) == calls_mod.MAX_PENDING_PER_ADDRESS
    _, findings = an.finish()   # one per still-pending call, MAX_PER_FLOW listed
    assert len(findings) == MAX_PER_FLOW
    assert findings[-1].detail["repeats"] == calls_mod.MAX_PENDING_PER_ADDRESS - MAX_PER_FLOW
    assert {f.detail["call_id"] for f in findings} <= {
        f"flood-{n}@x" for n in range(1000 - calls_mod.MAX_PENDING_PER_ADDRESS, 1000)}
