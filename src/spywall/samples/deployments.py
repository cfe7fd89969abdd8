"""The 2019 zero-click call pattern as real deployments carry it, each with a clean twin.

Every shape builds the same call twice: ``attack=True`` adds a burst of RTCP (or SRTCP) from
the caller's side to the callee before any answer and then cancels; ``attack=False`` is the
ordinary version (answered with media both ways, or the legitimate traffic that looks most
like the attack: early media from a gateway, a conference bridge, a dialler's unanswered
calls, a one-way stream). Addresses are documentation and private ranges; SIP per RFC 3261
(proxies, forking, CANCEL), RFC 3262 (100rel/PRACK), RFC 3311 (UPDATE); SDP per RFC 8866
with rtcp-mux (RFC 5761), BUNDLE (RFC 9143), ICE candidates (RFC 8839) and SDES (RFC 4568).
``SHAPES`` maps each name to its builder and what ``spywall pcap`` must report on the attack.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from spywall.samples.siplegs import (
    Hop,
    Leg,
    Path,
    Stream,
    TcpSignalling,
    answer,
    burst,
    callee_bye,
    cancel,
    invite,
    offer,
    request,
    respond,
    two_way,
)
from spywall.samples.voip import (
    Script,
    binding_request,
    channel_bind,
    channel_data,
    compound,
    rtp,
    srtcp,
)

T0 = 1_557_100_000.0   # May 2019
ZC = frozenset({"voip-zero-click-media"})


class Built(msgspec.Struct):
    script: Script
    attack_frames: list[int]
    sip: bool = True


class Shape(msgspec.Struct, frozen=True):
    build: Callable[[bool], Built]
    expected: frozenset[str]      # rules the attack twin must give (the clean twin: none)
    note: str


# ---- shapes with SIP ---------------------------------------------------------------------
def trunk(attack: bool, *, v6: bool = False, tcp: bool = False) -> Built:
    """External caller -> carrier SBC -> office proxy -> desk phone, one Call-ID on both
    legs; the caller's media comes from a media gateway, the phone answers SDP in 180
    Ringing with rtcp-mux (SRTP over IPv6; SIP over TCP with ``tcp``)."""
    if v6:
        sbc, proxy, phone = ("2001:db8:ca::5", 5060), ("2001:db8:f::2", 5060), \
            ("2001:db8:f:1::20", 5060)
        gw = ("2001:db8:ca::50", 16384)
    else:
        sbc, proxy, phone = ("203.0.113.5", 5060), ("10.0.0.2", 5060), ("10.0.1.20", 5060)
        gw = ("203.0.113.50", 16384)
    media = (phone[0], 11000)
    leg = Leg(f"trunk-{'v6' if v6 else 'v4'}-1@carrier.example",
              "sip:+442071234567@carrier.example", "c4r1", "sip:2001@office.example")
    path: Path = [(Hop(leg, (sbc,)), sbc, proxy), (Hop(leg, (proxy, sbc)), proxy, phone)]
    s = TcpSignalling() if tcp else Script()
    invite(s, T0, path, offer(gw[0], (Stream("audio", gw[1]),), secure=v6, mux=True),
           extra=("Record-Route: <sip:proxy.office.example;lr>",))
    respond(s, T0 + 0.2, path, 180, "Ringing", "ph1",
            offer(media[0], (Stream("audio", media[1]),), secure=v6, mux=True, session=2))
    if attack:
        frames = burst(s, T0 + 0.5, gw, media, secure=v6)
        cancel(s, T0 + 3.0, path, "ph1")
        return Built(s, frames)
    answer(s, T0 + 3.0, path, "ph1",
           offer(media[0], (Stream("audio", media[1]),), secure=v6, mux=True, session=2))
    end = two_way(s, T0 + 3.2, gw, media, secure=v6)
    callee_bye(s, end, path, "ph1")
    return Built(s, [])


def early_media(attack: bool) -> Built:
    """An outbound call: desk phone -> office proxy -> carrier SBC; the carrier's media
    gateway answers 183 with SDP and plays an announcement while the phone already sends its
    own audio (early media both ways, RTCP after the RTP), then the caller hangs up. The
    attack twin has no early media, only an RTCP burst towards the gateway's address."""
    phone, proxy, sbc = ("10.0.1.23", 5060), ("10.0.0.2", 5060), ("203.0.113.5", 5060)
    media, gw = ("10.0.1.23", 11010), ("203.0.113.52", 16500)
    leg = Leg("out-1@10.0.1.23", "sip:2005@office.example", "o5",
              "sip:+442079460000@carrier.example")
    path: Path = [(Hop(leg, (phone,)), phone, proxy), (Hop(leg, (proxy, phone)), proxy, sbc)]
    s = Script()
    invite(s, T0, path, offer(media[0], (Stream("audio", media[1]),), mux=True))
    respond(s, T0 + 0.3, path, 183, "Session Progress", "g1",
            offer(gw[0], (Stream("audio", gw[1]),), mux=True, session=2))
    frames = burst(s, T0 + 0.5, media, gw) if attack else []
    if not attack:
        two_way(s, T0 + 0.5, gw, media, n=100)
    cancel(s, T0 + 6.0, path, "g1")
    return Built(s, frames)


def b2bua(attack: bool, *, same_call_id: bool = False) -> Built:
    """An SBC acting as B2BUA: new tags (and, unless ``same_call_id``, a new Call-ID) on the
    inner leg, media anchored at the SBC's own media address (one port per leg), SDP answer
    in 183 Session Progress, RTCP on port+1 (no mux)."""
    pbx, pbx_media = ("198.51.100.30", 5060), ("198.51.100.31", 20000)
    sbc, anchor = ("192.0.2.1", 5060), "192.0.2.2"
    phone, media = ("10.0.1.21", 5060), ("10.0.1.21", 12000)
    outer = Leg("ext-77@198.51.100.30", "sip:+15551230001@pbx.example", "x1",
                "sip:+442070002002@sbc.office.example")
    inner = Leg(outer.call_id if same_call_id else "b2b-0001@192.0.2.1",
                "sip:+15551230001@sbc.office.example", "s1", "sip:2002@10.0.1.21")
    p1: Path = [(Hop(outer, (pbx,)), pbx, sbc)]
    p2: Path = [(Hop(inner, (sbc,)), sbc, phone)]
    s = Script()
    invite(s, T0, p1, offer(pbx_media[0], (Stream("audio", pbx_media[1]),)))
    invite(s, T0 + 0.05, p2, offer(anchor, (Stream("audio", 40002),)))
    respond(s, T0 + 0.2, p2, 183, "Session Progress", "ph2",
            offer(media[0], (Stream("audio", media[1]),), session=2))
    respond(s, T0 + 0.22, p1, 183, "Session Progress", "sb1",
            offer(anchor, (Stream("audio", 40000),), session=3))
    if attack:
        frames = burst(s, T0 + 0.5, (pbx_media[0], pbx_media[1] + 1), (anchor, 40001))
        frames += burst(s, T0 + 0.51, (anchor, 40003), (media[0], media[1] + 1))
        frames.sort()
        cancel(s, T0 + 3.0, p1, "sb1")
        cancel(s, T0 + 3.05, p2, "ph2")
        return Built(s, frames)
    answer(s, T0 + 3.0, p2, "ph2", offer(media[0], (Stream("audio", media[1]),), session=2))
    answer(s, T0 + 3.05, p1, "sb1", offer(anchor, (Stream("audio", 40000),), session=3))
    two_way(s, T0 + 3.2, pbx_media, (anchor, 40000), mux=False)
    end = two_way(s, T0 + 3.2, (anchor, 40002), media, mux=False, ssrcs=(0x3333, 0x4444))
    callee_bye(s, end, p2, "ph2")
    callee_bye(s, end + 0.05, p1, "sb1")
    return Built(s, [])


def forked(attack: bool) -> Built:
    """A proxy forks one INVITE to two desk phones; both ring with SDP in 180 (two To tags).
    Attack: RTCP to both, then CANCEL. Clean: one answers, the proxy cancels the other."""
    sbc, proxy, gw = ("203.0.113.5", 5060), ("10.0.0.2", 5060), ("203.0.113.50", 16390)
    phones = [("10.0.1.30", 5060), ("10.0.1.31", 5060)]
    leg = Leg("fork-1@carrier.example", "sip:+442071234567@carrier.example", "c4r2",
              "sip:sales@office.example")
    body = offer(gw[0], (Stream("audio", gw[1]),), mux=True)
    s = Script()
    up: Path = [(Hop(leg, (sbc,)), sbc, proxy)]
    invite(s, T0, up, body)
    paths: list[Path] = []
    for n, ph in enumerate(phones):
        paths.append([*up, (Hop(leg, (proxy, sbc)), proxy, ph)])
        invite(s, T0 + 0.03 + n * 0.01, paths[-1][1:], body)
        respond(s, T0 + 0.2 + n * 0.05, paths[-1], 180, "Ringing", f"fk{n}",
                offer(ph[0], (Stream("audio", 13000),), mux=True, session=10 + n))
    if attack:
        frames = sorted(burst(s, T0 + 0.5, gw, (phones[0][0], 13000), 3)
                        + burst(s, T0 + 0.52, gw, (phones[1][0], 13000), 3))
        request(s, T0 + 3.0, up, "CANCEL", tag=None)
        for n, p in enumerate(paths):
            cancel(s, T0 + 3.05 + n * 0.01, p[1:], f"fk{n}")
        respond(s, T0 + 3.2, up, 487, "Request Terminated", "fk0")
        request(s, T0 + 3.25, up, "ACK", tag="fk0", ok=False)
        return Built(s, frames)
    answer(s, T0 + 3.0, paths[0], "fk0", offer(phones[0][0], (Stream("audio", 13000),),
                                                 mux=True, session=10))
    cancel(s, T0 + 3.1, paths[1][1:], "fk1")
    end = two_way(s, T0 + 3.3, gw, (phones[0][0], 13000))
    callee_bye(s, end, paths[0], "fk0")
    return Built(s, [])


def prack_update(attack: bool) -> Built:
    """Late offer: an INVITE without SDP, the phone's offer in a reliable 183 (100rel), the
    caller's answer in PRACK, then a caller UPDATE moving its media to another gateway port.
    Clean: answered, then the phone's re-INVITE moves its own media."""
    sbc, phone, gw = ("203.0.113.5", 5060), ("10.0.1.22", 5060), "203.0.113.51"
    media = ("10.0.1.22", 11000)
    leg = Leg("late-1@carrier.example", "sip:+442071234568@carrier.example", "c4r3",
              "sip:2003@office.example")
    path: Path = [(Hop(leg, (sbc,)), sbc, phone)]
    s = Script()
    invite(s, T0, path, b"", extra=("Supported: 100rel",))
    respond(s, T0 + 0.2, path, 183, "Session Progress", "ph3",
            offer(media[0], (Stream("audio", media[1]),), mux=True, session=3),
            extra=("Require: 100rel", "RSeq: 1"))
    request(s, T0 + 0.3, path, "PRACK", tag="ph3", cseq=2, extra=("RAck: 1 1 INVITE",),
            body=offer(gw, (Stream("audio", 17000),), mux=True))
    request(s, T0 + 0.4, path, "UPDATE", tag="ph3", cseq=3,
            body=offer(gw, (Stream("audio", 17002),), mux=True, session=2))
    if attack:
        frames = burst(s, T0 + 0.6, (gw, 17002), media)
        cancel(s, T0 + 3.0, path, "ph3")
        return Built(s, frames)
    answer(s, T0 + 3.0, path, "ph3", b"")
    two_way(s, T0 + 3.1, (gw, 17002), media)
    hop = path[0][0]
    moved = offer(media[0], (Stream("audio", 11002),), mux=True, session=4)
    s.udp(T0 + 4.0, phone, sbc, hop.callee_request("INVITE", to_tag="ph3", cseq=1, body=moved,
                                                   vias=(phone,)))
    s.udp(T0 + 4.05, sbc, phone, hop.callee_response(
        200, "OK", to_tag="ph3", cseq=1, method="INVITE", vias=(phone,),
        body=offer(gw, (Stream("audio", 17002),), mux=True, session=3)))
    end = two_way(s, T0 + 4.1, (gw, 17002), (media[0], 11002), ssrcs=(0x5555, 0x6666))
    request(s, end, path, "BYE", tag="ph3", cseq=4)
    return Built(s, [])


def ice_turn(attack: bool) -> Built:
    """A WebRTC-style caller behind a gateway: BUNDLE audio+video on one port, rtcp-mux,
    ICE candidates (host, server-reflexive, TURN relay) on both sides. The media runs from
    the caller's TURN relay address to the phone's server-reflexive (NAT) address, neither
    of which is a signalling address."""
    gwsig, phone = ("198.51.100.40", 5060), ("10.0.1.40", 5060)
    relay, nat = ("198.51.100.99", 49152), ("203.0.113.200", 33000)
    leg = Leg("webrtc-1@gw.example", "sip:agent7@gw.example", "w1", "sip:2004@office.example")
    path: Path = [(Hop(leg, (gwsig,)), gwsig, phone)]
    caller_sdp = offer("10.9.0.5", (Stream("audio", 50000, (
        ("10.9.0.5", 50000, "host"), ("198.51.100.60", 62000, "srflx"),
        (relay[0], relay[1], "relay"))), Stream("video", 50000)), bundle=True)
    callee_sdp = offer(phone[0], (Stream("audio", 13000, (
        (phone[0], 13000, "host"), (nat[0], nat[1], "srflx"))), Stream("video", 13000)),
        bundle=True, session=2)
    s = Script()
    invite(s, T0, path, caller_sdp)
    respond(s, T0 + 0.2, path, 180, "Ringing", "ph4", callee_sdp)
    s.udp(T0 + 0.3, relay, nat, binding_request())   # ICE checks answer while ringing
    s.udp(T0 + 0.31, nat, relay, binding_request(b"caller:callee"))
    if attack:
        frames = burst(s, T0 + 0.5, relay, nat)
        cancel(s, T0 + 3.0, path, "ph4")
        return Built(s, frames)
    answer(s, T0 + 3.0, path, "ph4", callee_sdp)
    end = two_way(s, T0 + 3.1, relay, nat)
    request(s, end, path, "BYE", tag="ph4", cseq=2)
    return Built(s, [])


def turn_channel(attack: bool) -> Built:
    """The phone reaches media through its own TURN server: its SDP (in 180) puts the
    default address on the relay candidate, the server relays to it as ChannelData from
    port 3478 (RFC 8656 12). The RTCP burst hits the relayed address and arrives wrapped."""
    sbc, phone, gw = ("203.0.113.5", 5060), ("10.0.1.41", 5060), ("203.0.113.53", 16600)
    host, turn, relayed = ("10.0.1.41", 50000), ("198.51.100.120", 3478), \
        ("198.51.100.120", 50100)
    leg = Leg("relay-1@carrier.example", "sip:+442071234569@carrier.example", "c4r6",
              "sip:2006@office.example")
    path: Path = [(Hop(leg, (sbc,)), sbc, phone)]
    callee_sdp = offer(relayed[0], (Stream("audio", relayed[1], (
        (host[0], host[1], "host"), (relayed[0], relayed[1], "relay"))),), mux=True, session=2)
    s = Script()
    s.udp(T0 - 1.0, host, turn, channel_bind())
    invite(s, T0, path, offer(gw[0], (Stream("audio", gw[1]),), mux=True))
    respond(s, T0 + 0.2, path, 180, "Ringing", "ph6", callee_sdp)
    if attack:
        frames: list[int] = []
        for i in range(6):
            pkt = compound(0x2019C0DE)
            frames.append(s.udp(T0 + 0.5 + i * 0.05, gw, relayed, pkt))
            frames.append(s.udp(T0 + 0.5 + i * 0.05 + 0.001, turn, host,
                                channel_data(0x4001, pkt)))
        cancel(s, T0 + 3.0, path, "ph6")
        return Built(s, frames)
    answer(s, T0 + 3.0, path, "ph6", callee_sdp)
    for i in range(25):
        t = T0 + 3.1 + i * 0.02
        s.udp(t, gw, relayed, rtp(i + 1, i * 160, 0x1111))
        s.udp(t + 0.001, turn, host, channel_data(0x4001, rtp(i + 1, i * 160, 0x1111)))
        s.udp(t + 0.005, host, turn, channel_data(0x4001, rtp(i + 1, i * 160, 0x2222)))
        s.udp(t + 0.006, relayed, gw, rtp(i + 1, i * 160, 0x2222))
    request(s, T0 + 4.0, path, "BYE", tag="ph6", cseq=2)
    return Built(s, [])


def dialler(attack: bool) -> Built:
    """A call-centre dialler places six calls through a carrier SBC: four ring unanswered
    and are cancelled (SDP in 180, no media before answer), two are answered. The attack
    twin adds an RTCP burst to each ringing callee: four zero-click calls and a campaign."""
    dial, sbc, dmedia = ("192.0.2.50", 5060), ("203.0.113.5", 5060), "192.0.2.51"
    s = Script()
    frames: list[int] = []
    for n in range(6):
        t = T0 + n * 30.0
        leg = Leg(f"dial-{n}@dialler.example", "sip:campaign@dialler.example", f"d{n}",
                  f"sip:+4420700030{n:02d}@carrier.example")
        path: Path = [(Hop(leg, (dial,)), dial, sbc)]
        callee = (f"203.0.113.{60 + n}", 18000)
        invite(s, t, path, offer(dmedia, (Stream("audio", 30000 + 2 * n),), mux=True))
        respond(s, t + 0.3, path, 180, "Ringing", f"r{n}",
                offer(callee[0], (Stream("audio", callee[1]),), mux=True, session=2))
        if n % 3 == 2:
            answer(s, t + 5.0, path, f"r{n}", offer(callee[0], (Stream("audio", callee[1]),),
                                                    mux=True, session=2))
            end = two_way(s, t + 5.1, (dmedia, 30000 + 2 * n), callee)
            request(s, end, path, "BYE", tag=f"r{n}", cseq=2)
            continue
        if attack:
            frames += burst(s, t + 0.5, (dmedia, 30000 + 2 * n), callee, 3)
        cancel(s, t + 20.0, path, f"r{n}")
    return Built(s, frames)


def bridge(attack: bool) -> Built:
    """A conference bridge dials out to four participants through a carrier: each answers
    183 with SDP, the carrier plays ringback (early media) while the bridge already sends the
    conference audio; three answer, the fourth is cancelled after ringing. The attack twin
    differs for the fourth: no early media either way, an RTCP burst from the bridge."""
    br, sbc, bmedia = ("192.0.2.70", 5060), ("203.0.113.5", 5060), "192.0.2.71"
    s = Script()
    frames: list[int] = []
    for n in range(4):
        t = T0 + n * 2.0
        leg = Leg(f"conf-9-{n}@bridge.example", "sip:conf9@bridge.example", f"b{n}",
                  f"sip:+4420700040{n:02d}@carrier.example")
        path: Path = [(Hop(leg, (br,)), br, sbc)]
        mine, theirs = (bmedia, 32000 + 2 * n), (f"203.0.113.{80 + n}", 19000)
        invite(s, t, path, offer(mine[0], (Stream("audio", mine[1]),), mux=True))
        respond(s, t + 0.3, path, 183, "Session Progress", f"p{n}",
                offer(theirs[0], (Stream("audio", theirs[1]),), mux=True, session=2))
        if attack and n == 3:
            frames += burst(s, t + 0.5, mine, theirs, 3)
        else:
            two_way(s, t + 0.5, mine, theirs, n=10, ssrcs=(0x7000 + n, 0x7100 + n))
        if n == 3:
            cancel(s, t + 20.0, path, f"p{n}")
            continue
        answer(s, t + 10.0, path, f"p{n}", offer(theirs[0], (Stream("audio", theirs[1]),),
                                                 mux=True, session=2))
        end = two_way(s, t + 10.1, mine, theirs, ssrcs=(0x7200 + n, 0x7300 + n))
        request(s, end, path, "BYE", tag=f"p{n}", cseq=2)
    return Built(s, frames)


# ---- shapes without SIP (media only) ------------------------------------------------------
def media_only(attack: bool, *, v6: bool = False) -> Built:
    """No signalling in the capture (WhatsApp's is not SIP): a relay sends SRTCP to a phone
    that is ringing. The phone answers ICE checks but never sends RTP. Clean: an ordinary
    call through the relay, RTP both ways with RTCP after it."""
    relay, phone = (("2001:db8:77::1", 3480), ("2001:db8:1::20", 45000)) if v6 else \
        (("198.51.100.77", 3480), ("192.168.1.20", 45000))
    s = Script()
    s.udp(T0, relay, phone, binding_request())
    s.udp(T0 + 0.01, phone, relay, binding_request(b"relay:phone"))
    if attack:
        return Built(s, burst(s, T0 + 0.2, relay, phone, secure=True), sip=False)
    two_way(s, T0 + 0.2, relay, phone, secure=True)
    return Built(s, [], sip=False)


def media_campaign(attack: bool) -> Built:
    """No signalling: one source sends two SRTCP compounds each to three phones (no burst),
    none of which ever sends RTP back. Clean: a conference bridge sending RTP and RTCP to
    three participants who all send RTP back."""
    src = ("198.51.100.78", 3480)
    s = Script()
    frames: list[int] = []
    for n in range(3):
        phone, t = (f"192.168.1.{30 + n}", 45000), T0 + n * 120.0
        if attack:
            frames += [s.udp(t + i * 1.0, src, phone, srtcp(compound(0x2019B00 + n), i + 1))
                       for i in range(2)]
        else:
            two_way(s, t, src, phone, n=10, ssrcs=(0x8000 + n, 0x8100 + n))
    return Built(s, frames, sip=False)


def one_way_stream(attack: bool) -> Built:
    """Clean only: a paging/announcement stream, RTP one way with an SR every 5 s and
    nothing back (RTP first, RTCP at the RFC 3550 pace). The attack twin is media_only's."""
    if attack:
        return media_only(True)
    src, dst = ("192.0.2.90", 40000), ("192.168.1.50", 40000)
    s = Script()
    for i in range(600):
        s.udp(T0 + i * 0.02, src, dst, rtp(i + 1, i * 160, 0x9999, marker=i == 0))
        if i % 250 == 249:
            s.udp(T0 + i * 0.02 + 0.01, src, dst, compound(0x9999))
    return Built(s, [], sip=False)


SHAPES: dict[str, Shape] = {
    "trunk-proxy": Shape(trunk, ZC, "SIP trunk, proxy, media gateway, SDP in 180, rtcp-mux"),
    "trunk-proxy-ipv6-srtcp": Shape(lambda a: trunk(a, v6=True), ZC,
                                    "the same over IPv6 with SRTP/SRTCP"),
    "trunk-proxy-sip-tcp": Shape(lambda a: trunk(a, tcp=True), ZC,
                                 "the trunk with SIP over TCP"),
    "early-media-gateway": Shape(early_media, ZC, "outbound via proxy and carrier; clean twin "
                                 "has a gateway announcement and early media both ways"),
    "b2bua-anchored": Shape(b2bua, ZC, "B2BUA with a new Call-ID per leg, media anchored "
                            "at the SBC, SDP in 183, RTCP on port+1"),
    "b2bua-anchored-one-call-id": Shape(lambda a: b2bua(a, same_call_id=True), ZC,
                                        "the same B2BUA keeping the Call-ID, new tags"),
    "forked": Shape(forked, ZC, "one INVITE forked to two phones, two 180s with SDP"),
    "prack-update": Shape(prack_update, ZC, "late offer: SDP in reliable 183, PRACK, UPDATE; "
                          "clean twin re-INVITEs"),
    "ice-bundle-turn": Shape(ice_turn, ZC, "BUNDLE, rtcp-mux, ICE candidates, TURN relay"),
    "turn-channel-data": Shape(turn_channel, ZC, "the phone's own TURN relay: relay "
                               "candidate in 180, ChannelData from port 3478"),
    "dialler": Shape(dialler, frozenset({*ZC, "voip-zero-click-campaign"}),
                     "call-centre dialler: many unanswered calls"),
    "conference-bridge": Shape(bridge, ZC,
                               "bridge dialling out; clean twin has early media both ways"),
    "media-only": Shape(media_only, frozenset({"voip-rtcp-unsolicited"}),
                        "no signalling: SRTCP burst from a relay"),
    "media-only-ipv6": Shape(lambda a: media_only(a, v6=True),
                             frozenset({"voip-rtcp-unsolicited"}), "the same over IPv6"),
    "media-only-campaign": Shape(media_campaign, frozenset({"voip-unsolicited-campaign"}),
                                 "no signalling: one source, three phones; clean twin is a "
                                 "conference bridge"),
    "one-way-stream": Shape(one_way_stream, frozenset({"voip-rtcp-unsolicited"}),
                            "clean twin: a one-way announcement stream"),
}
