"""Call tracking from SIP: dialogs, legs, sides, and what reached a callee before an answer.

A ``Call`` is keyed by Call-ID. Its state moves offered (INVITE) -> ringing (1xx other
than 100) -> answered (2xx to an INVITE) -> ended (BYE); a call that gets a CANCEL before
any 2xx, a final non-2xx response on its way to the caller (one Via left), or one from
every fork, is failed.

Sides come from the dialog, never from which addresses appear where (RFC 3261 12, 16):
the From tags of INVITEs without a To tag are the caller's tags, so a request whose From
tag is one of them travels caller -> callee (INVITE, ACK, CANCEL, PRACK, caller re-INVITE
or UPDATE) and any other request travels callee -> caller (the callee's BYE, UPDATE or
re-INVITE); a response travels against its request. A proxy or B2BUA keeping the Call-ID
therefore shows up on both sides (callee of one leg, caller of the next) and counts as an
intermediary; a B2BUA giving each leg a new Call-ID makes one call per leg. SDP (in the
INVITE, 18x, 2xx, UPDATE, PRACK or ACK) belongs to the side that sent it: its media
addresses, RTCP addresses and ICE candidates (host, server-reflexive, TURN relay) are that
side's endpoints, so a media gateway or SBC anchoring the caller's media at its own address
is on the caller's side, wherever its signalling address is.

A callee target is an endpoint only the callee side announced, or an address that only
ever signalled as the callee. ``pre_answer_media`` records RTP/RTCP/SRTCP sent to a
target of an unanswered call from anything that is not the callee side, and marks a call
whose callee side sent RTP of its own before an answer (early media: a two-way session,
not the one-sided zero-click shape). ``zeroclick`` turns the records into findings.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import msgspec

from spywall.net.voip.rtcp import SrtcpLayout
from spywall.net.voip.sdp import Session
from spywall.net.voip.sip import SipMessage

if TYPE_CHECKING:
    from spywall.net.packet import Datagram
    from spywall.net.voip.demux import Flow

MAX_CALLS = 100_000
"""Calls tracked; INVITEs for new Call-IDs beyond this are ignored (bounded memory)."""
MAX_SOURCES = 256
"""Distinct sources of pre-answer media remembered per call (spoofed floods stay bounded)."""
MAX_ENDPOINTS = 400_000
"""Media addresses learned from SDP; later ones are not learned (bounded memory). The same
budget bounds the per-call side tables (signalling addresses and media endpoints) of all
calls together."""
MAX_PER_CALL = 64
"""Signalling addresses, tags, forks and media endpoints remembered per call (a call crosses
a handful of proxies and announces a few candidates per stream)."""
MAX_PENDING_PER_ADDRESS = 64
"""Unanswered calls one callee address stays pending for; an INVITE flood to one phone
drops the oldest (each packet to a pending address visits its calls)."""
RING_TIMEOUT = 300.0
"""Seconds after its last SIP message during which a ringing call still claims media to its
callee. RFC 3261 16.6 has proxies give up on an unanswered INVITE after Timer C (more than
3 minutes); a call whose end the capture missed must not claim the phone's later calls."""
HOLD_ADDRESSES = frozenset({"0.0.0.0", "::"})  # noqa: S104 - SDP hold (RFC 3264 8.4), not a bind
OFFERED, RINGING, ANSWERED, ENDED, FAILED = "offered", "ringing", "answered", "ended", "failed"
CALLER, CALLEE = 1, 2
"""Side bits: an address or endpoint seen on both sides (a proxy, a B2BUA) has both."""


class PreAnswer(msgspec.Struct):
    """Media one source sent to a callee before any answer: the first packet and a count."""

    d: Datagram
    kind: str
    packets: int = 1
    rtcp: int = 0
    target: str = "signalling"   # how the callee address was known: "sdp" or "signalling"
    addresses: set[str] = msgspec.field(default_factory=set)   # callee addresses it reached


class Call(msgspec.Struct, eq=False):
    call_id: str
    caller: str | None
    callee: str | None
    first_frame: int
    started: float
    state: str = OFFERED
    last_frame: int = 0
    last_ts: float = 0.0
    answered: bool = False
    cancelled: bool = False
    early_media: bool = False
    caller_tags: set[str] = msgspec.field(default_factory=set)
    forks: dict[str, str] = msgspec.field(default_factory=dict)      # To tag -> state
    sig: dict[str, int] = msgspec.field(default_factory=dict)        # address -> side bits
    media: dict[tuple[str, int], int] = msgspec.field(default_factory=dict)  # endpoint -> bits
    media_ips: dict[str, int] = msgspec.field(default_factory=dict)  # their addresses -> bits
    targets: set[str] = msgspec.field(default_factory=set)          # callee-only addresses
    legs: list[tuple[str, str]] = msgspec.field(default_factory=list)  # initial INVITE hops
    packets: int = 0
    anomalies: int = 0
    flows: list[Flow] = msgspec.field(default_factory=list)
    pre_answer: dict[str, PreAnswer] = msgspec.field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return self.state in (OFFERED, RINGING)

    def side(self, ip: str, port: int) -> int:
        """Side bits of a media endpoint: learned from SDP, else its address's (from
        signalling and from every endpoint announced at it)."""
        bits = self.media.get((ip, port))
        if bits is not None:
            return bits
        return self.sig.get(ip, 0) | self.media_ips.get(ip, 0)

    def peer_side(self, ip: str, port: int) -> int:
        """Side bits of the other end of a packet: the endpoint's, else the address's from
        signalling only. A TURN server's address is announced as a relay candidate but
        relays from its own port (ChannelData from 3478), so its address says nothing."""
        bits = self.media.get((ip, port))
        return bits if bits is not None else self.sig.get(ip, 0)


class Endpoint(msgspec.Struct, frozen=True):
    """A media address learned from SDP."""

    call: Call
    secure: bool
    layouts: tuple[SrtcpLayout, ...] = ()   # SRTCP trailers its SDP's a=crypto lines allow


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


def tag(value: str | None) -> str | None:
    """The ``tag`` parameter of a From/To header value (after the URI), or None."""
    if not value:
        return None
    params = value.rsplit(">", 1)[1] if ">" in value else value
    for p in params.split(";")[1:]:
        name, _, val = p.partition("=")
        if name.strip().lower() == "tag":
            return val.strip()[:128] or None
    return None


class CallTable:
    """Every call seen, the media endpoints learned from SDP, and pre-answer media."""

    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}
        self.endpoints: dict[tuple[str, int], Endpoint] = {}
        self.pending: dict[str, list[Call]] = {}   # callee target address -> unanswered calls
        self.generation = 0
        self.sides = 0   # entries in all calls' sig and media tables (MAX_ENDPOINTS)

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
            self.calls[cid] = call
        call.packets += 1
        call.last_frame, call.last_ts = d.frame, d.ts
        sender = CALLER if self._from_caller(call, msg, d) else CALLEE
        receiver = CALLER + CALLEE - sender
        for ip, bits in ((d.src, sender), (d.dst, receiver)):
            if ip in call.sig:
                call.sig[ip] |= bits
            elif len(call.sig) < MAX_PER_CALL and self.sides < MAX_ENDPOINTS:
                call.sig[ip] = bits
                self.sides += 1
        if msg.method is not None:
            self._request(call, msg, d)
        elif msg.cseq_method == "INVITE" and msg.status is not None:
            to_caller = sum(v.upper().count("SIP/2.0/") for v in msg.all("via")) <= 1
            self._response(call, msg.status, tag(msg.header("to")), to_caller=to_caller)
        if sdp is not None:
            self._learn(call, sdp, sender)
        self._retarget(call)
        return call

    @staticmethod
    def _from_caller(call: Call, msg: SipMessage, d: Datagram) -> bool:
        """Whether ``msg`` travels caller -> callee (see the module docstring)."""
        from_tag = tag(msg.header("from"))
        if msg.method == "INVITE" and tag(msg.header("to")) is None:
            if from_tag and len(call.caller_tags) < MAX_PER_CALL:
                call.caller_tags.add(from_tag)
            return True
        if from_tag and call.caller_tags:
            request_from_caller = from_tag in call.caller_tags
        else:   # no tags (RFC 2543 user agents): by address
            sent_by = d.src if msg.method is not None else d.dst
            request_from_caller = call.sig.get(sent_by, CALLER) != CALLEE
        return request_from_caller if msg.method is not None else not request_from_caller

    def _request(self, call: Call, msg: SipMessage, d: Datagram) -> None:
        hop = (d.src, d.dst)
        if msg.method == "INVITE" and tag(msg.header("to")) is None and hop not in call.legs \
                and len(call.legs) < MAX_PER_CALL:
            call.legs.append(hop)
        if msg.method == "BYE":
            self._set(call, ENDED)
        elif msg.method == "CANCEL" and not call.answered:
            call.cancelled = True
            self._set(call, FAILED)

    def _response(self, call: Call, status: int, fork: str | None, *, to_caller: bool) -> None:
        """``to_caller``: the response has one Via left, so it reaches the UAC that sent
        the INVITE (a proxy's own 408/480 after no answer carries a tag of its own)."""
        if 200 <= status < 300:
            call.answered = True
            if fork is not None and len(call.forks) < MAX_PER_CALL:
                call.forks[fork] = ANSWERED
            if call.state in (OFFERED, RINGING, FAILED):
                self._set(call, ANSWERED)
        elif 100 < status < 200:
            if fork is not None and call.forks.get(fork) is None \
                    and len(call.forks) < MAX_PER_CALL:
                call.forks[fork] = RINGING
            if call.state == OFFERED or (call.state == FAILED and not call.cancelled):
                self._set(call, RINGING)   # FAILED: a proxy forking on after a failure
        elif status >= 300 and not call.answered and call.pending:
            if fork is not None and len(call.forks) < MAX_PER_CALL:
                call.forks[fork] = FAILED
            if to_caller or fork is None or RINGING not in call.forks.values():
                self._set(call, FAILED)   # the caller got it, or every fork has given up

    def _set(self, call: Call, state: str) -> None:
        call.state = state
        self._retarget(call)

    def _learn(self, call: Call, sdp: Session, side: int) -> None:
        for m in sdp.media:
            if m.port == 0:
                continue
            for addr, port in ((m.conn, m.port), (m.rtcp_addr, m.rtcp_port), *m.candidates):
                if not addr or addr in HOLD_ADDRESSES or port in (0, 9):
                    continue
                ep = (norm_addr(addr), port)
                if ep in call.media or (len(call.media) < MAX_PER_CALL
                                        and self.sides < MAX_ENDPOINTS):
                    self.sides += ep not in call.media
                    call.media[ep] = call.media.get(ep, 0) | side
                    call.media_ips[ep[0]] = call.media_ips.get(ep[0], 0) | side
                known = self.endpoints.get(ep)
                if (known is None and len(self.endpoints) < MAX_ENDPOINTS) or (
                        known is not None and (known.call is not call
                                               or known.secure != m.secure
                                               or known.layouts != m.layouts)):
                    self.endpoints[ep] = Endpoint(call, m.secure, m.layouts)
                    self.generation += 1   # flows re-classify on their next packet

    def _retarget(self, call: Call) -> None:
        """Keep ``pending`` in step with the call's callee targets and state."""
        new: set[str] = set()
        if call.pending:
            new = {ip for ip, bits in call.sig.items() if bits == CALLEE}
            new.update(ip for (ip, _), bits in call.media.items()
                       if bits == CALLEE and call.sig.get(ip, 0) != CALLER | CALLEE)
        if new == call.targets:
            return
        for ip in call.targets - new:
            waiting = self.pending.get(ip)
            if waiting and call in waiting:
                waiting.remove(call)
                if not waiting:
                    del self.pending[ip]
        for ip in new - call.targets:
            waiting = self.pending.setdefault(ip, [])
            waiting.append(call)
            if len(waiting) > MAX_PENDING_PER_ADDRESS:
                waiting.pop(0).targets.discard(ip)
        call.targets = new
        self.generation += 1

    def pre_answer_media(self, d: Datagram, kind: str, flow: Flow, *, rtp: bool) -> None:
        """Record media ``d`` (on ``flow``; ``rtp``: it carries RTP, maybe in ChannelData)
        to or from a callee target of an unanswered call. A flow to the callee that no SDP
        explained joins the call's media list.

        RTP from the callee side to anything not on the callee side marks the call as
        having early media (an announcement or ringback from a gateway): such a call is a
        media session both ways, not the one-sided shape of the zero-click attack. RTCP from
        the callee does not count (a stack under attack may still send receiver reports)."""
        if rtp:
            for call in self.pending.get(d.src, ()):
                if d.ts - call.last_ts <= RING_TIMEOUT and call.side(d.src, d.sport) == CALLEE \
                        and not call.peer_side(d.dst, d.dport) & CALLEE:
                    call.early_media = True
        for call in self.pending.get(d.dst, ()):
            if call.side(d.dst, d.dport) != CALLEE or call.peer_side(d.src, d.sport) & CALLEE \
                    or d.ts - call.last_ts > RING_TIMEOUT:
                continue
            seen = call.pre_answer.get(d.src)
            if flow.call is None:
                flow.call = call
                call.flows.append(flow)
            if seen is None:
                if len(call.pre_answer) < MAX_SOURCES:
                    call.pre_answer[d.src] = PreAnswer(
                        d, kind, rtcp=not rtp, addresses={d.dst},
                        target="sdp" if (d.dst, d.dport) in call.media else "signalling")
            else:
                seen.packets += 1
                seen.rtcp += not rtp
                if len(seen.addresses) < MAX_PER_CALL:
                    seen.addresses.add(d.dst)
