"""The zero-click detectors: media to a callee who never answered, with or without SIP.

With SIP (``sip_findings``): every source that sent RTP/RTCP/SRTCP to a callee target of a
call that never got a 2xx and whose callee side sent no RTP of its own (see ``calls``) is
``voip-zero-click-media``; one source doing it to ``CAMPAIGN_MIN_CALLEES`` callees within
``CAMPAIGN_WINDOW`` is ``voip-zero-click-campaign``.

Without SIP (``media_findings``; WhatsApp's signalling is not SIP and most captures hold
only media): a flow no SIP call explains is *unsolicited* when its first RTCP/SRTCP came
before the source sent any RTP of its own (on the flow or on the RTP port below it) and
before the destination sent RTP back (on the reverse flow or the RTP port below it; STUN
checks do not count, an endpoint answers those while it rings), and no RTP flow between the
same two addresses started before it (RTCP on a port of its own, ``a=rtcp``). RFC 3550 6.2-6.3 has a
sender send RTP before its first SR and a receiver send RR only about what it received, so
such RTCP answers nothing. When, in addition, the destination
never sent RTP to the source in the whole capture, ``BURST_MIN`` such compounds within
``BURST_WINDOW`` seconds are ``voip-rtcp-unsolicited`` (no RTCP timer of RFC 3550 6.2 sends
a burst), and one source doing any of this to ``CAMPAIGN_MIN_CALLEES`` destinations within
``CAMPAIGN_WINDOW`` is ``voip-unsolicited-campaign``. Findings say which kind of evidence
they rest on in ``detail["signalling"]`` (``sip`` or ``none``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import msgspec

from spywall.net.voip import demux
from spywall.report import Scalar

if TYPE_CHECKING:
    from spywall.net.packet import Datagram
    from spywall.net.voip.calls import Call
    from spywall.net.voip.demux import Flow

CAMPAIGN_MIN_CALLEES = 3
"""Distinct callees one source must send pre-answer media to within the window. One
unanswered call with early media can be a misconfigured gateway; the same source doing it
to three different people is the 2019 campaign's shape (about 1,400 targets in 12 days,
about five an hour)."""
CAMPAIGN_WINDOW = 3600.0
"""Seconds within which those callees must fall (one hour holds several campaign targets
at the 2019 rate while keeping unrelated calls of a busy gateway apart)."""
BURST_MIN = 3
"""Unsolicited RTCP compounds on one flow that make a burst."""
BURST_WINDOW = 2.0
"""Seconds within which they must fall. RFC 3550 6.2 spaces a member's RTCP at least 2.5 s
apart at the start of a session (half the 5 s minimum) and randomises the rest; three
compounds in 2 s before the peer sent anything is no RTCP timer's output."""

Report = Callable[[str, str, dict[str, Scalar], "Datagram", str, "Call | None"], None]


class Unsolicited(msgspec.Struct):
    """RTCP on one flow before its source sent RTP and before its destination sent anything."""

    first: Datagram
    kind: str
    packets: int = 1
    recent: list[Datagram] = msgspec.field(default_factory=list)   # the last BURST_MIN
    burst: Datagram | None = None                                   # first packet of a burst


def note_rtcp(flow: Flow, d: Datagram, kind: str) -> None:
    """Record one unsolicited RTCP/SRTCP compound on ``flow``."""
    u = flow.unsolicited
    if u is None:
        u = flow.unsolicited = Unsolicited(d, kind)
    else:
        u.packets += 1
    u.recent.append(d)
    if len(u.recent) > BURST_MIN:
        del u.recent[0]
    if u.burst is None and len(u.recent) == BURST_MIN \
            and d.ts - u.recent[0].ts <= BURST_WINDOW:
        u.burst = u.recent[0]


def sip_findings(calls: Iterable[Call], report: Report) -> None:
    """Report unanswered calls that got media, then campaigns, through ``report``."""
    by_source: dict[str, list[tuple[float, str, Datagram, str, Call | None]]] = {}
    for call in calls:
        if call.answered or call.early_media:
            continue
        for src, pre in call.pre_answer.items():
            report("voip-zero-click-media",
                   f"{pre.packets} media packet(s) ({pre.rtcp} RTCP/SRTCP, first {pre.kind}) "
                   f"from {src} to callee {call.callee or pre.d.dst} of call {call.call_id} "
                   f"before any answer (the call was never answered; final state "
                   f"{call.state}; the callee address is known from {pre.target})",
                   {"call_id": call.call_id, "packets": pre.packets, "rtcp_packets": pre.rtcp,
                    "state": call.state, "callee": call.callee, "signalling": "sip",
                    "callee_addresses": ", ".join(sorted(pre.addresses)),
                    "callee_address_from": pre.target}, pre.d, pre.kind, call)
            by_source.setdefault(src, []).append(
                (pre.d.ts, call.callee or pre.d.dst, pre.d, pre.kind, call))
    _campaigns(by_source, report, "voip-zero-click-campaign", "sip",
               "sent media to {n} distinct unanswered callees")


def media_findings(flows: Iterable[Flow], report: Report) -> None:
    """Report unsolicited RTCP on flows no SIP call explains (see the module docstring)."""
    flows = list(flows)
    first_rtp: dict[tuple[str, str], int] = {}   # (src, dst) address pair -> first RTP flow
    for f in flows:   # (flows that sent unsolicited RTCP first do not explain themselves)
        if f.seen >> demux.RTP & 1 and f.unsolicited is None:
            pair = (f.key[0], f.key[2])
            first_rtp[pair] = min(first_rtp.get(pair, f.first_frame), f.first_frame)
    rtp_back = {(f.key[0], f.key[2]) for f in flows if f.seen >> demux.RTP & 1}
    by_source: dict[str, list[tuple[float, str, Datagram, str, Call | None]]] = {}
    for f in flows:
        u = f.unsolicited
        src, sport, dst, dport = f.key
        if u is None or f.call is not None or not f.confirmed or (dst, src) in rtp_back \
                or first_rtp.get((src, dst), u.first.frame) < u.first.frame:
            continue   # RTP came back, or the source's RTP on another port came first
        if u.burst is not None:
            report("voip-rtcp-unsolicited",
                   f"{u.packets} {u.kind} compound(s) from {src}:{sport} to {dst}:{dport} "
                   f"before any RTP from either side, {BURST_MIN} within {BURST_WINDOW:g} s; "
                   f"{dst} never sent RTP back; no SIP signalling explains the flow",
                   {"packets": u.packets, "first_frame": u.first.frame,
                    "burst_frame": u.burst.frame, "destination_sent_rtp": False,
                    "signalling": "none"}, u.burst, u.kind, None)
        by_source.setdefault(src, []).append((u.first.ts, dst, u.first, u.kind, None))
    _campaigns(by_source, report, "voip-unsolicited-campaign", "none",
               "sent unsolicited RTCP to {n} distinct endpoints that never sent RTP back "
               "(no SIP signalling explains the flows)")


def _campaigns(by_source: dict[str, list[tuple[float, str, Datagram, str, Call | None]]],
               report: Report, rule: str, signalling: str, what: str) -> None:
    """One finding per source that reached CAMPAIGN_MIN_CALLEES targets within the window
    (at the hit that reached it)."""
    for src, hits in by_source.items():
        hits.sort(key=lambda h: h[0])
        counts: dict[str, int] = {}
        lo = 0
        for ts, target, d, kind, call in hits:
            counts[target] = counts.get(target, 0) + 1
            while ts - hits[lo][0] > CAMPAIGN_WINDOW:
                old = hits[lo][1]
                counts[old] -= 1
                if not counts[old]:
                    del counts[old]
                lo += 1
            if len(counts) >= CAMPAIGN_MIN_CALLEES:
                report(rule, f"{src} " + what.format(n=len(counts))
                       + f" within {CAMPAIGN_WINDOW:g} s",
                       {"source": src, "callees": len(counts),
                        "window_seconds": CAMPAIGN_WINDOW,
                        "total_callees": len({h[1] for h in hits}), "signalling": signalling},
                       d, kind, call)
                break
