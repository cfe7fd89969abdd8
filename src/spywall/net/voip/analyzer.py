"""``VoipAnalyzer``: the VoIP part of ``spywall pcap``.

The capture layer hands every UDP payload to ``udp`` and every in-order TCP chunk to
``tcp``; ``finish`` returns the call summaries and the findings that need the whole
capture (the zero-click detectors). Per ordinary RTP packet the work is one flow look-up,
a table look-up of the first byte and ``rtp.check_rtp``. TCP directions carrying RTP/RTCP
(RFC 4571) or TURN (STUN, ChannelData) are cut into packets that take the same per-packet
path; SRTCP is checked with the flow's trailer (``srtcp``: from SDP, DTLS or the packets).
"""

from __future__ import annotations

from collections.abc import Callable

from spywall.errors import SpywallError
from spywall.iocs import IocIndex
from spywall.iocs.model import Indicator
from spywall.net.packet import Datagram, iso, location
from spywall.net.voip import demux, dtls, rtcp, srtcp, stun, zeroclick
from spywall.net.voip.calls import Call, CallTable
from spywall.net.voip.demux import DEMUX, IGNORED, MEDIA, SIP, Flow
from spywall.net.voip.rtp import check_rtp
from spywall.net.voip.rules import RULES, Anomaly
from spywall.net.voip.sdp import Session, parse_sdp
from spywall.net.voip.sip import SipStream, looks_like_sip, message_hosts, parse_sip
from spywall.report import CallSummary, Finding, MediaFlow, Scalar

MAX_PER_FLOW = 3
"""Findings of one rule reported per flow; later ones are counted in the last one's
``detail["repeats"]`` (a crafted series of packets is one event, not thousands)."""
MAX_PER_RULE = 2000
"""Findings of one rule reported per capture (a flood from spoofed ports is one story); the
rest are counted in the last one's ``detail["suppressed_in_capture"]``."""
MAX_FLOWS = 200_000
"""UDP flows remembered; beyond this, ignored flows are not cached (bounded memory)."""
MAX_HOSTS = 100_000
"""SIP/SDP hosts remembered as already checked; the memory is cleared when full."""
MAX_STREAMS = 10_000
"""TCP directions followed for SIP at once."""

SIP_PORTS = frozenset({5060})
"""The registered SIP port: flows on it are always treated as signalling (RFC 3261 19.1.2)."""
RULE_PROTOCOLS = frozenset({"rtcp", "srtcp", "rtp", "stun", "turn", "sip", "sdp"})
"""Rule id tokens that name the protocol a finding's location reports."""

Key = tuple[str, int, str, int]
RTP_BIT = 1 << demux.RTP


class VoipAnalyzer:
    """Stateful analyzer of one capture."""

    def __init__(self, iocs: IocIndex | None, path: str) -> None:
        self.iocs = iocs
        self.path = path
        self.calls = CallTable()
        self.flows: dict[Key, Flow] = {}
        self.streams: dict[Key, SipStream] = {}
        self.counts: dict[tuple[str, Key], int] = {}
        self.capped: dict[tuple[str, Key], Finding] = {}
        self.per_rule: dict[str, int] = {}
        self.rule_suppressed: dict[str, int] = {}
        self.last_of_rule: dict[str, Finding] = {}
        self.ioc_cache: dict[str, list[Indicator]] = {}   # host -> hits (reported once)
        self.turn_ends: set[tuple[str, int]] = set()
        self.tcp_kinds = demux.TcpKinds()
        self.tcp_media = demux.TcpMediaFramer()
        self.dtls_layouts: dict[Key, rtcp.SrtcpLayout] = {}
        self.problems: list[str] = []   # framing problems for the capture's error list
        self.held_bytes = 0   # SRTCP held by all flows while their trailers are told
        self.handlers: tuple[Callable[[Flow, Datagram, bytes], list[Anomaly]], ...] = (
            _nothing, self._stun, self._dtls, self._dtls, self._turn, self._rtp, self._rtcp,
            self._rtcp)

    # ---- entry points -------------------------------------------------------------
    def udp(self, d: Datagram) -> list[Finding]:
        p = d.payload
        if not p:
            return []
        key = (d.src, d.sport, d.dst, d.dport)
        flow = self.flows.get(key)
        if flow is None or flow.gen != self.calls.generation:
            flow = self._classify(d, key)
        cls = flow.cls
        if cls == IGNORED:
            return []
        if cls == SIP:
            return self._sip(d, p, stream=False)
        return self._media(flow, d, p)

    def _media(self, flow: Flow, d: Datagram, p: bytes) -> list[Finding]:
        """One media-flow packet: a UDP payload or a packet framed out of a TCP stream."""
        flow.packets += 1
        flow.last_frame = d.frame
        b0 = p[0]
        # Fast path: plain RTP (no padding, extension or CSRCs) on a confirmed flow.
        if 128 <= b0 < 192 and not b0 & 0x3F and flow.confirmed and len(p) >= 12 \
                and not 192 <= p[1] <= 223:
            flow.seen |= RTP_BIT
            pending = self.calls.pending
            if pending and (d.dst in pending or d.src in pending):
                self.calls.pre_answer_media(d, "rtp", flow, rtp=True)
            return [] if not flow.pending else self._flow_findings(flow, d, [], "rtp")
        kind = demux.FIRST_BYTE[b0]
        if kind == demux.RTP and len(p) > 1 and 192 <= p[1] <= 223:
            kind = demux.RTCP
        if kind == demux.TURN and not flow.turn and not demux.looks_like_channel_data(p):
            return self._sip(d, p, stream=False) if looks_like_sip(p) else []
        pending = self.calls.pending
        if kind >= demux.TURN and pending and (d.dst in pending or d.src in pending):
            inner = demux.classify(p[4:]) if kind == demux.TURN and len(p) > 5 else kind
            self.calls.pre_answer_media(d, demux.KIND_NAMES[kind], flow,
                                        rtp=inner == demux.RTP)
        found = self.handlers[kind](flow, d, p)
        if not found and not flow.pending:
            return []
        return self._flow_findings(flow, d, found, demux.KIND_NAMES[kind])

    def tcp(self, d: Datagram) -> list[Finding]:
        """In-order bytes of one TCP direction: SIP, RTP/RTCP framed by RFC 4571 or TURN
        over TCP (``demux.sniff_tcp`` decides from the first bytes, whatever segments they
        came in); framed packets take the UDP path's per-packet checks."""
        key = (d.src, d.sport, d.dst, d.dport)
        if d.start:   # a new connection on these addresses and ports, or after a gap
            self.tcp_kinds.forget(key)
            self.tcp_media.close(key)
            self.streams.pop(key, None)
        kind, data = self.tcp_kinds.feed(key, d.payload, turn_port=d.sport in demux.TURN_PORTS
                                         or d.dport in demux.TURN_PORTS)
        if kind == demux.TCP_SIP:
            stream = self.streams.get(key)
            if stream is None:
                if len(self.streams) >= MAX_STREAMS:
                    return []
                stream = self.streams[key] = SipStream()
            msgs, anomalies = stream.feed(data)
            out = self._emit(key, anomalies, d, "sip", None)
            for m in msgs:
                out += self._sip(d, m, stream=True)
            return out
        if kind not in (demux.TCP_RFC4571, demux.TCP_TURN) or d.sport in demux.TCP_DNS_PORTS \
                or d.dport in demux.TCP_DNS_PORTS:
            return []   # DNS over TCP also starts with a 2-byte length (pipeline reads it)
        turn = kind == demux.TCP_TURN
        frames, problems = self.tcp_media.feed(key, data, turn=turn)
        self.problems += problems
        out = []
        for frame in frames:
            if not frame:
                continue
            fd = Datagram(d.frame, d.ts, d.src, d.dst, d.sport, d.dport, "tcp", frame)
            flow = self.flows.get(key)
            if flow is None or flow.gen != self.calls.generation or flow.cls in (SIP, IGNORED):
                flow = self._classify(fd, key, framed=True)
            flow.turn = flow.turn or turn
            out += self._media(flow, fd, frame)
        return out

    def finish(self) -> tuple[list[CallSummary], list[Finding]]:
        out: list[Finding] = []

        def report(rule: str, message: str, detail: dict[str, Scalar], d: Datagram,
                   protocol: str, call: Call | None) -> None:
            out.extend(self._emit((d.src, d.sport, d.dst, d.dport),
                                  [Anomaly(rule, message, detail)], d, protocol, call))

        for flow in self.flows.values():
            shape = flow.shape
            if shape is not None and shape.held:
                for hd, hp in shape.held:
                    self.held_bytes -= len(hp)
                    if flow.confirmed:
                        out.extend(self._emit(flow.key, self._unsettled(flow, shape, hp), hd,
                                              "rtcp" if shape.maybe else "srtcp", flow.call))
                shape.held = []
        zeroclick.sip_findings(self.calls.calls.values(), report)
        zeroclick.media_findings(self.flows.values(), report)
        for key, finding in self.capped.items():
            finding.detail["repeats"] = self.counts[key] - MAX_PER_FLOW
        for rule, n in self.rule_suppressed.items():
            self.last_of_rule[rule].detail["suppressed_in_capture"] = n
        return [self._summary(c) for c in self.calls.calls.values()], out

    # ---- flows ----------------------------------------------------------------------
    def _classify(self, d: Datagram, key: Key, *, framed: bool = False) -> Flow:
        """Classify (or, after SDP taught something new, re-classify) the flow of ``d``;
        ``framed``: a packet framed out of a TCP stream, media whatever its ports (a UDP
        flow with the same addresses and ports, very unlikely, shares the flow)."""
        flow = self.flows.get(key)
        if flow is None:
            flow = Flow(key, DEMUX, 0, first_frame=d.frame)
            if len(self.flows) < MAX_FLOWS:
                self.flows[key] = flow
        flow.gen = self.calls.generation
        if flow.cls == SIP and not framed:
            return flow
        ep = (self.calls.endpoints.get((d.dst, d.dport))
              or self.calls.endpoints.get((d.src, d.sport)))
        if not framed and (looks_like_sip(d.payload) or (ep is None and (
                d.sport in SIP_PORTS or d.dport in SIP_PORTS))):
            flow.cls = SIP
        elif ep is not None:
            flow.cls, flow.confirmed = MEDIA, True
            if flow.secure is None or not flow.seen >> demux.DTLS & 1:
                flow.secure = ep.secure
            if flow.layout_from != "dtls" and ep.layouts:
                flow.layouts, flow.layout_from = ep.layouts, "sdp"
            if flow.call is not ep.call:
                flow.call = ep.call
                ep.call.flows.append(flow)
        elif flow.cls == MEDIA:
            pass
        elif not framed and (min(d.sport, d.dport) < 1024 or d.sport in demux.IGNORED_PORTS
              or d.dport in demux.IGNORED_PORTS):
            flow.cls = IGNORED
        else:
            flow.cls = DEMUX
            flow.confirmed = flow.confirmed or d.dst in self.calls.pending
        flow.turn = flow.turn or (d.src, d.sport) in self.turn_ends \
            or (d.dst, d.dport) in self.turn_ends or d.sport in demux.TURN_PORTS \
            or d.dport in demux.TURN_PORTS
        return flow

    @staticmethod
    def _confirm(flow: Flow, ssrc: bytes, seq: int) -> None:
        """Confirm an unlearned flow on the second packet of one RTP/RTCP source.

        RTP: same SSRC and a sequence number 1..MAX_SEQ_STEP ahead. RTCP (``seq`` -1): same
        sender SSRC, both compounds starting with SR or RR (RFC 3550 6.1)."""
        if ssrc and flow.ssrc == ssrc and (0 < (seq - flow.seq) & 0xFFFF <= demux.MAX_SEQ_STEP
                                  if seq >= 0 else flow.seq < 0):
            flow.confirmed = True
        flow.ssrc, flow.seq = ssrc, seq

    def _flow_findings(self, flow: Flow, d: Datagram, found: list[Anomaly],
                       protocol: str) -> list[Finding]:
        if not flow.confirmed:
            room = demux.MAX_PENDING - len(flow.pending)
            flow.pending.extend((a, d, protocol) for a in found[:max(room, 0)])
            return []
        out: list[Finding] = []
        for a, pd, proto in flow.pending:
            out += self._emit(flow.key, [a], pd, proto, flow.call)
        flow.pending = []
        return out + self._emit(flow.key, found, d, protocol, flow.call)

    # ---- per-kind handlers (index = demux kind) -------------------------------------
    def _rtp(self, flow: Flow, d: Datagram, p: bytes) -> list[Anomaly]:
        flow.seen |= 1 << demux.RTP
        if not flow.confirmed and len(p) >= 12:
            self._confirm(flow, p[8:12], (p[2] << 8) | p[3])
        a = check_rtp(p, padding=flow.secure is False)
        return [a] if a is not None else []

    def _rtcp(self, flow: Flow, d: Datagram, p: bytes) -> list[Anomaly]:
        if not flow.confirmed and len(p) >= 8:
            self._confirm(flow, p[4:8] if p[1] in (200, 201) else b"", -1)   # b"": reset
        if flow.secure:
            flow.seen |= 1 << demux.SRTCP
            found = self._srtcp(flow, d, p)
            kind = "srtcp"
        else:
            found = rtcp.check_rtcp(p)
            kind = "rtcp"
            if not found:
                if flow.secure is None and len(flow.early_plain) < srtcp.MAX_HELD and \
                        self.held_bytes + len(p) <= srtcp.MAX_HELD_BYTES:
                    flow.early_plain.append((d, p))   # (an SRTCP packet whose first
                    self.held_bytes += len(p)         # header overstates by exactly its
                    # trailer reads as plain RTCP; kept within the capture's held budget)
                flow.plain = True
            elif flow.secure is None and (not flow.plain or len(flow.early_plain)
                                          < srtcp.MAX_HELD) \
                    and found[-1].rule != "voip-rtcp-oversize" and (flow.shape is not None or any(
                        rtcp.fits_layout(p, c) for c in srtcp.CANDIDATES)):
                # Not plain RTCP, perhaps SRTCP (no keying, and no more valid plain
                # compounds on the flow than an SRTCP one overstated by its trailer makes):
                # held while the packets' SRTCP index tells the trailer, judged as
                # plain RTCP if it never does (Shape.maybe, _unsettled).
                shape = flow.shape
                if shape is None:
                    shape = flow.shape = srtcp.Shape(list(srtcp.CANDIDATES), maybe=True)
                found = self._srtcp(flow, d, p)
                kind = "rtcp" if shape.maybe else "srtcp"
            flow.seen |= 1 << demux.KIND_NAMES.index(kind)
        if not flow.explained:
            self._unsolicited(flow, d, kind)
        return found

    def _srtcp(self, flow: Flow, d: Datagram, p: bytes) -> list[Anomaly]:
        """SRTCP checked with the flow's trailer: from its keying (SDP, DTLS) when that
        names one layout, else told from the packets (``srtcp.Shape``); packets held while
        it is being told come out with their own frames through ``flow.pending``."""
        layouts, source = flow.layouts, flow.layout_from
        dl = self.dtls_layouts.get(flow.key) if source != "dtls" else None
        if dl is not None:
            layouts, source = flow.layouts, flow.layout_from = (dl,), "dtls"
        if len(layouts) == 1:
            return srtcp.judge(p, layouts[0], source)
        shape = flow.shape
        if shape is None:
            shape = flow.shape = srtcp.Shape(list(layouts or srtcp.CANDIDATES))
        shape.observe(p)
        if shape.maybe and shape.narrowed():   # an SRTCP index climbs: the flow is secure
            shape.maybe, flow.secure = False, True
        layout = shape.settled()
        if layout is None:
            if len(shape.held) < srtcp.MAX_HELD and \
                    self.held_bytes + len(p) <= srtcp.MAX_HELD_BYTES:
                shape.held.append((d, p))
                self.held_bytes += len(p)
                return []
            return self._unsettled(flow, shape, p)
        for hd, hp in shape.held:
            flow.pending += [(a, hd, "srtcp") for a in srtcp.judge(hp, layout, "shape")]
            self.held_bytes -= len(hp)
        shape.held = []
        for hd, hp in flow.early_plain:   # SRTCP after all: what read as plain is judged
            flow.pending += [(a, hd, "srtcp") for a in srtcp.judge(hp, layout, "shape")]
            self.held_bytes -= len(hp)
        flow.early_plain = []
        return srtcp.judge(p, layout, "shape")

    @staticmethod
    def _unsettled(flow: Flow, shape: srtcp.Shape, p: bytes) -> list[Anomaly]:
        """A packet judged before its flow's trailer was told: as SRTCP with the candidates
        left; on a flow only perhaps SRTCP (``Shape.maybe``) as plain RTCP, unless it is
        the flow's one such packet, no valid plain compound came, and an RFC 3711 default
        trailer fits it (one packet cannot tell SRTCP from broken RTCP: the old reading)."""
        if not shape.maybe:
            return srtcp.judge_unsettled(p, shape.likely(), narrowed=shape.narrowed())
        if shape.packets == 1 and not flow.plain and rtcp.srtcp_fits(p) is not None:
            return rtcp.oversize(p)
        return rtcp.check_rtcp(p)

    def _unsolicited(self, flow: Flow, d: Datagram, kind: str) -> None:
        """Note RTCP that came before its source sent RTP (on this flow or the RTP port
        below) and before its destination sent RTP back (zeroclick.media_findings)."""
        flows = self.flows
        for delta in (0, 1):
            own = flows.get((d.src, d.sport - delta, d.dst, d.dport - delta))
            back = flows.get((d.dst, d.dport - delta, d.src, d.sport - delta))
            if (own is not None and own.seen & RTP_BIT) or (back is not None
                                                             and back.seen & RTP_BIT):
                flow.explained = True   # later RTCP answers media; earlier stays on record
                return
        zeroclick.note_rtcp(flow, d, kind)

    def _stun(self, flow: Flow, d: Datagram, p: bytes) -> list[Anomaly]:
        try:
            msg = stun.parse_stun(p)
        except SpywallError:
            return []
        flow.seen |= 1 << demux.STUN
        flow.confirmed = True
        if demux.stun_method(msg.msg_type) in demux.TURN_METHODS:
            self.turn_ends.update(((d.src, d.sport), (d.dst, d.dport)))
            flow.turn = True
            back = self.flows.get((d.dst, d.dport, d.src, d.sport))
            if back is not None:
                back.turn = True
        return list(msg.anomalies)

    def _dtls(self, flow: Flow, d: Datagram, p: bytes) -> list[Anomaly]:
        """DTLS (DTLS-SRTP) or ZRTP on a flow: its RTCP will be SRTCP, with the trailer of
        the protection profile a DTLS 1.2 ServerHello picks (both directions)."""
        flow.seen |= 1 << demux.FIRST_BYTE[p[0]]
        flow.secure = True
        picked = dtls.srtp_profile(p) if p[0] == dtls.HANDSHAKE else None
        layout = rtcp.layout_from_dtls_profile(*picked) if picked is not None else None
        if layout is not None and len(self.dtls_layouts) < MAX_FLOWS:
            back = (d.dst, d.dport, d.src, d.sport)
            self.dtls_layouts[flow.key] = self.dtls_layouts[back] = layout
        return []

    def _turn(self, flow: Flow, d: Datagram, p: bytes) -> list[Anomaly]:
        flow.seen |= 1 << demux.TURN
        # ChannelData on a flow that carried TURN or uses its port confirms it; ChannelData
        # told only by its shape (the allocation not in the capture, another port) does not
        flow.confirmed = flow.confirmed or flow.turn
        try:
            inner, found = stun.check_channel_data(p)
        except SpywallError:
            return []
        if inner:
            kind = demux.classify(inner)
            if kind in (demux.RTP, demux.RTCP, demux.DTLS):
                found += self.handlers[kind](flow, d, inner)
        return found

    # ---- SIP ------------------------------------------------------------------------
    def _sip(self, d: Datagram, data: bytes, *, stream: bool) -> list[Finding]:
        try:
            msg = parse_sip(data, stream=stream)
        except SpywallError:
            return []
        found = list(msg.anomalies)
        session: Session | None = None
        ctype = (msg.header("content-type") or "").lower()
        if msg.body and ("sdp" in ctype or (not ctype and msg.body.startswith(b"v="))):
            session, sdp_found = parse_sdp(msg.body)
            found += sdp_found
        call = self.calls.on_sip(msg, d, session)
        key = (d.src, d.sport, d.dst, d.dport)
        out = self._emit(key, found, d, "sip", call)
        hosts = message_hosts(msg) + [("SDP c=", h) for h in (session.hosts if session else ())]
        return out + self._ioc(hosts, d, call)

    def _ioc(self, hosts: list[tuple[str, str]], d: Datagram, call: Call | None) -> list[Finding]:
        if self.iocs is None:
            return []
        out: list[Finding] = []
        for where, host in hosts:
            if host in self.ioc_cache:
                continue
            if len(self.ioc_cache) >= MAX_HOSTS:
                self.ioc_cache.clear()
            hits = self.ioc_cache[host] = self.iocs.match_host(host)
            if call is not None and hits:
                call.anomalies += len(hits)
            rule = RULES["voip-ioc-host"]
            out += [self.iocs.finding(
                ind, host, path=self.path, rule=rule.id, title=rule.title,
                message=f"{where} host {host} matches {ind.collection} indicator {ind.value}",
                location=location(d, "sip")) for ind in hits]
        return out

    # ---- findings -------------------------------------------------------------------
    def _emit(self, key: Key, found: list[Anomaly], d: Datagram, protocol: str,
              call: Call | None) -> list[Finding]:
        out: list[Finding] = []
        for a in found:
            ck = (a.rule, key)
            if call is not None:
                call.anomalies += 1
            n = self.counts.get(ck, 0) + 1
            if n > MAX_PER_FLOW or len(self.counts) >= MAX_FLOWS:
                if ck in self.counts:
                    self.counts[ck] = n
                continue
            self.counts[ck] = n
            if self.per_rule.get(a.rule, 0) >= MAX_PER_RULE:
                self.rule_suppressed[a.rule] = self.rule_suppressed.get(a.rule, 0) + 1
                continue
            self.per_rule[a.rule] = self.per_rule.get(a.rule, 0) + 1
            rule = RULES[a.rule]
            token = a.rule.split("-")[1]
            proto = token if token in RULE_PROTOCOLS else protocol
            f = Finding(rule=rule.id, title=rule.title, kind=rule.kind, severity=rule.severity,
                        message=a.message, path=self.path, cves=list(rule.cves),
                        references=list(rule.references), location=location(d, proto),
                        detail=dict(a.detail))
            if n == MAX_PER_FLOW:
                self.capped[ck] = f
            self.last_of_rule[a.rule] = f
            out.append(f)
        return out

    def _summary(self, c: Call) -> CallSummary:
        media = [MediaFlow(src=f.key[0], sport=f.key[1], dst=f.key[2], dport=f.key[3],
                           protocol=f.protocol(), packets=f.packets, first_frame=f.first_frame,
                           last_frame=f.last_frame) for f in c.flows if f.packets]
        return CallSummary(call_id=c.call_id, caller=c.caller, callee=c.callee, state=c.state,
                           legs=[f"{src} -> {dst}" for src, dst in c.legs],
                           first_frame=c.first_frame,
                           last_frame=max([c.last_frame, *(m.last_frame for m in media)]),
                           started=iso(c.started), media=media,
                           packets=c.packets + sum(m.packets for m in media),
                           anomalies=c.anomalies)


def _nothing(flow: Flow, d: Datagram, p: bytes) -> list[Anomaly]:
    return []
