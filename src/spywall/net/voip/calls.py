"""Call tracking from SIP and the zero-click behavioural detectors.

A ``Call`` is keyed by Call-ID. Its state moves offered (INVITE) -> ringing (1xx other
than 100) -> answered (2xx to the INVITE) -> ended (BYE); a call that gets a final
non-2xx response or a CANCEL before any 2xx is failed. The callee's addresses are the
INVITE's destination, the source of responses to it and the addresses in the callee's SDP.

Zero-click: RTP/RTCP/SRTCP whose destination is a callee address of a call that is
offered or ringing is recorded; if the call never gets a 2xx and the callee side sent no
RTP of its own (early media), each source that did so is reported
(voip-zero-click-media), and a source doing it to many callees within a window is a
campaign (voip-zero-click-campaign).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from spywall.net.voip.sdp import Session
from spywall.net.voip.sip import SipMessage

if TYPE_CHECKING:
    from spywall.net.packet import Datagram
    from spywall.net.voip.demux import Flow

CAMPAIGN_MIN_CALLEES = 3
"""Distinct callees one source must send pre-answer media to within the window. One
unanswered call with early media can be a misconfigured gateway; the same source doing it
to three different people is the 2019 campaign's shape (about 1,400 targets in 12 days,
about five an hour)."""
CAMPAIGN_WINDOW = 3600.0
"""Seconds within which those callees must fall (one hour holds several campaign targets
at the 2019 rate while keeping unrelated calls of a busy gateway apart)."""
MAX_CALLS = 100_000
"""Calls tracked; INVITEs for new Call-IDs beyond this are ignored (bounded memory)."""
MAX_SOURCES = 256
"""Distinct sources of pre-answer media remembered per call (spoofed floods stay bounded)."""
MAX_ENDPOINTS = 400_000
"""Media addresses learned from SDP; later ones are not learned (bounded memory)."""
HOLD_ADDRESSES = frozenset({"0.0.0.0", "::"})  # noqa: S104 - SDP hold (RFC 3264 8.4), not a bind
OFFERED, RINGING, ANSWERED, ENDED, FAILED = "offered", "ringing", "answered", "ended", "failed"


class PreAnswer(msgspec.Struct):
    """Media one source sent to a callee before any answer: the first packet and a count."""

    d: Datagram
    kind: str
    packets: int = 1


class Call(msgspec.Struct, eq=False):
    call_id: str
    caller: str | None
    callee: str | None
    first_frame: int
    started: float
    state: str = OFFERED
    last_frame: int = 0
    answered: bool = False
    early_media: bool = False
    caller_ips: set[str] = msgspec.field(default_factory=set)
    callee_ips: set[str] = msgspec.field(default_factory=set)
    packets: int = 0
    anomalies: int = 0
    flows: list[Flow] = msgspec.field(default_factory=list)
    pre_answer: dict[str, PreAnswer] = msgspec.field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return self.state in (OFFERED, RINGING)


class Endpoint(msgspec.Struct, frozen=True):
    """A media address learned from SDP."""

    call: Call
    secure: bool


def norm_addr(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


def _uri(value: str | None) -> str | None:
    if not value:
        return None
    v = value.split("<", 1)[1].split(">", 1)[0] if "<" in value else value.split(";", 1)[0]
    return v.strip()[:256] or None


class CallTable:
    """Every call seen, the media endpoints learned from SDP, and pre-answer media."""

    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}
        self.endpoints: dict[tuple[str, int], Endpoint] = {}
        self.pending: dict[str, list[Call]] = {}   # callee address -> unanswered calls
        self.parties: set[str] = set()
        self.generation = 0

    def on_sip(self, msg: SipMessage, d: Datagram, sdp: Session | None) -> Call | None:
        """Update the call ``msg`` belongs to; the call, or None if it is not tracked."""
        cid = msg.call_id
        if not cid:
            return None
        call = self.calls.get(cid)
        if call is None:
            if msg.method != "INVITE" or len(self.calls) >= MAX_CALLS:
                return None
            call = Call(cid[:256], _uri(msg.header("from")), _uri(msg.header("to")),
                        d.frame, d.ts)
            call.caller_ips.add(d.src)
            self.calls[cid] = call
            self._add_callee(call, d.dst)
        call.packets += 1
        call.last_frame = d.frame
        before = len(self.parties) + len(self.endpoints)
        self.parties.update((d.src, d.dst))
        if msg.method is not None:
            self._request(call, msg)
        elif msg.cseq_method == "INVITE" and msg.status is not None:
            self._add_callee(call, d.src)
            self._response(call, msg.status)
        if sdp is not None:
            self._learn(call, sdp, callee_side=d.src in call.callee_ips)
        if len(self.parties) + len(self.endpoints) != before:
            self.generation += 1
        return call

    def _request(self, call: Call, msg: SipMessage) -> None:
        if msg.method == "BYE":
            self._set(call, ENDED)
        elif msg.method == "CANCEL" and not call.answered:
            self._set(call, FAILED)

    def _response(self, call: Call, status: int) -> None:
        if 200 <= status < 300:
            call.answered = True
            if call.state in (OFFERED, RINGING):
                self._set(call, ANSWERED)
        elif 100 < status < 200 and call.state == OFFERED:
            call.state = RINGING
        elif status >= 300 and not call.answered and call.pending:
            self._set(call, FAILED)

    def _set(self, call: Call, state: str) -> None:
        call.state = state
        if not call.pending:
            for ip in call.callee_ips:
                waiting = self.pending.get(ip)
                if waiting and call in waiting:
                    waiting.remove(call)
                    if not waiting:
                        del self.pending[ip]

    def _add_callee(self, call: Call, ip: str) -> None:
        if ip in call.caller_ips or ip in call.callee_ips:
            return
        call.callee_ips.add(ip)
        if call.pending:
            self.pending.setdefault(ip, []).append(call)

    def _learn(self, call: Call, sdp: Session, *, callee_side: bool) -> None:
        for m in sdp.media:
            if m.port == 0:
                continue
            for addr, port in ((m.conn, m.port), (m.rtcp_addr, m.rtcp_port)):
                if addr and addr not in HOLD_ADDRESSES and len(self.endpoints) < MAX_ENDPOINTS:
                    ip = norm_addr(addr)
                    self.endpoints[(ip, port)] = Endpoint(call, m.secure)
                    self.parties.add(ip)
                    if callee_side:
                        self._add_callee(call, ip)

    def pre_answer_media(self, d: Datagram, kind: str, flow: Flow) -> None:
        """Record media ``d`` (on ``flow``) to or from a pending callee address. A flow to
        the callee that no SDP explained joins the call's media list.

        RTP from the callee side marks the call as having early media (an announcement or
        ringback from a gateway): such a call is a media session both ways, not the one-sided
        shape of the zero-click attack. RTCP from the callee does not count (a stack under
        attack may still send receiver reports)."""
        if kind == "rtp":
            for call in self.pending.get(d.src, ()):
                if d.dst not in call.callee_ips:
                    call.early_media = True
        for call in self.pending.get(d.dst, ()):
            if d.src in call.callee_ips:
                continue
            seen = call.pre_answer.get(d.src)
            if flow.call is None:
                flow.call = call
                call.flows.append(flow)
            if seen is None:
                if len(call.pre_answer) < MAX_SOURCES:
                    call.pre_answer[d.src] = PreAnswer(d, kind)
            else:
                seen.packets += 1

    def zero_click(self, report: Callable[[str, str, dict[str, str | int | float | bool | None],
                                          Datagram, str, Call], None]) -> None:
        """Report unanswered calls that got media, then campaigns, through ``report``."""
        by_source: dict[str, list[tuple[float, str, PreAnswer, Call]]] = {}
        for call in self.calls.values():
            if call.answered or call.early_media:
                continue
            for src, pre in call.pre_answer.items():
                report("voip-zero-click-media",
                       f"{pre.packets} {pre.kind} packet(s) from {src} to callee "
                       f"{call.callee or pre.d.dst} of call {call.call_id} before any "
                       f"answer (the call was never answered; final state {call.state})",
                       {"call_id": call.call_id, "packets": pre.packets, "state": call.state,
                        "callee": call.callee}, pre.d, pre.kind, call)
                by_source.setdefault(src, []).append(
                    (pre.d.ts, call.callee or pre.d.dst, pre, call))
        for src, hits in by_source.items():
            hits.sort(key=lambda h: h[0])
            counts: dict[str, int] = {}
            lo = 0
            for ts, callee, pre, call in hits:
                counts[callee] = counts.get(callee, 0) + 1
                while ts - hits[lo][0] > CAMPAIGN_WINDOW:
                    old = hits[lo][1]
                    counts[old] -= 1
                    if not counts[old]:
                        del counts[old]
                    lo += 1
                if len(counts) >= CAMPAIGN_MIN_CALLEES:
                    report("voip-zero-click-campaign",
                           f"{src} sent media to {len(counts)} distinct unanswered callees "
                           f"within {CAMPAIGN_WINDOW:g} s",
                           {"source": src, "callees": len(counts),
                            "window_seconds": CAMPAIGN_WINDOW,
                            "total_callees": len({h[1] for h in hits})}, pre.d, pre.kind, call)
                    break
