"""SIP dialogs as real deployments carry them: Via stacks, tags, forks, 100rel, UPDATE.

``samples.voip.Dialog`` is one caller talking straight to one callee. Here a ``Leg`` is one
hop of a dialog (RFC 3261 16: a proxy forwards the request with its own Via on top and the
same Call-ID, From and To; a B2BUA starts a new dialog with a new Call-ID and tags), and
``Hop`` builds each message with the Via stack it has on that hop. ``offer`` builds SDP with
several media sections, rtcp-mux, BUNDLE (RFC 9143), ICE candidates (RFC 8839) and SDES
crypto (RFC 4568), so media addresses can differ from signalling addresses the way media
gateways, SBCs and TURN relays make them differ.
"""

from __future__ import annotations

import zlib

import msgspec

from spywall.samples.voip import Script, compound, rtp, srtcp

Addr = tuple[str, int]


def host(a: Addr) -> str:
    return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"


class TcpSignalling(Script):
    """A ``Script`` that carries SIP (5060 at both ends) over TCP, one connection per pair
    of addresses opened with a handshake on first use; media stays UDP. Trunks often run
    SIP over TCP (RFC 3261 18), so calls must be followed through stream reassembly."""

    opened: set[frozenset[Addr]] = msgspec.field(default_factory=set)

    def udp(self, ts: float, a: Addr, b: Addr, payload: bytes) -> int:
        if a[1] != 5060 or b[1] != 5060:
            return super().udp(ts, a, b, payload)
        pair = frozenset((a, b))
        if pair not in self.opened:
            self.opened.add(pair)
            self.handshake(ts, a, b)
        return self.tcp(ts, a, b, payload)


class Stream(msgspec.Struct, frozen=True):
    """One m= section: kind, port, and the candidates (address, port, type)."""

    kind: str = "audio"
    port: int = 0
    candidates: tuple[tuple[str, int, str], ...] = ()


def offer(ip: str, streams: tuple[Stream, ...], *, secure: bool = False, mux: bool = False,
          bundle: bool = False, session: int = 1) -> bytes:
    """An SDP body: ``c=`` at ``ip``, one m= per stream; with ``bundle`` every stream after
    the first shares the first one's port (RFC 9143 BUNDLE, rtcp-mux implied)."""
    fam = "IP6" if ":" in ip else "IP4"
    lines = ["v=0", f"o=- {session} 1 IN {fam} {ip}", "s=-", f"c=IN {fam} {ip}", "t=0 0"]
    if bundle:
        lines.append("a=group:BUNDLE " + " ".join(str(i) for i in range(len(streams))))
    proto = "RTP/SAVP" if secure else "RTP/AVP"
    for i, st in enumerate(streams):
        port = streams[0].port if bundle else st.port
        fmt = "0 8 101" if st.kind == "audio" else "96"
        lines += [f"m={st.kind} {port} {proto} {fmt}", f"a=mid:{i}"]
        if secure:
            lines.append("a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
                         "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")
        if mux or bundle:
            lines.append("a=rtcp-mux")
        for n, (addr, cport, typ) in enumerate(st.candidates):
            prio = (126 if typ == "host" else 100 if typ == "srflx" else 0) << 24
            lines.append(f"a=candidate:{n + 1} 1 UDP {prio + 255} {addr} {cport} typ {typ}")
    return ("\r\n".join(lines) + "\r\n").encode()


class Leg(msgspec.Struct, frozen=True):
    """The dialog identifiers of one leg: Call-ID, the caller's From and tag, the callee's To."""

    call_id: str
    caller: str       # sip URI
    caller_tag: str
    callee: str


class Hop(msgspec.Struct, frozen=True):
    """Messages of ``leg`` as seen on one hop: ``vias`` are the Via entries a request from
    the caller side carries there, top (nearest hop) first."""

    leg: Leg
    vias: tuple[Addr, ...]

    def _vias(self) -> list[str]:
        return [f"Via: SIP/2.0/UDP {host(a)};branch=z9hG4bK"
                f"{zlib.crc32(f'{self.leg.call_id}{a}'.encode()):08x}" for a in self.vias]

    def request(self, method: str, *, cseq: int = 1, to_tag: str | None = None,
                body: bytes = b"", contact: Addr | None = None, extra: tuple[str, ...] = (),
                cseq_method: str | None = None) -> bytes:
        """A request from the caller side (INVITE, ACK, CANCEL, PRACK, UPDATE, BYE)."""
        leg = self.leg
        to = f"<{leg.callee}>" + (f";tag={to_tag}" if to_tag else "")
        lines = [f"{method} {leg.callee} SIP/2.0", *self._vias(), "Max-Forwards: 69",
                 f"From: <{leg.caller}>;tag={leg.caller_tag}", f"To: {to}",
                 f"Call-ID: {leg.call_id}", f"CSeq: {cseq} {cseq_method or method}"]
        if contact:
            lines.append(f"Contact: <sip:{host(contact)}>")
        return _finish(lines + list(extra), body)

    def response(self, status: int, reason: str, *, to_tag: str | None, cseq: int = 1,
                 method: str = "INVITE", body: bytes = b"", contact: Addr | None = None,
                 extra: tuple[str, ...] = ()) -> bytes:
        """A response to a caller-side request, sent back along this hop."""
        leg = self.leg
        to = f"<{leg.callee}>" + (f";tag={to_tag}" if to_tag else "")
        lines = [f"SIP/2.0 {status} {reason}", *self._vias(),
                 f"From: <{leg.caller}>;tag={leg.caller_tag}", f"To: {to}",
                 f"Call-ID: {leg.call_id}", f"CSeq: {cseq} {method}"]
        if contact:
            lines.append(f"Contact: <sip:{host(contact)}>")
        return _finish(lines + list(extra), body)

    def callee_request(self, method: str, *, to_tag: str, cseq: int, body: bytes = b"",
                       vias: tuple[Addr, ...] = ()) -> bytes:
        """A request from the callee side (its BYE, UPDATE or re-INVITE): From and To swap."""
        leg = self.leg
        via = Hop(leg, vias)._vias()
        lines = [f"{method} {leg.caller} SIP/2.0", *via, "Max-Forwards: 69",
                 f"From: <{leg.callee}>;tag={to_tag}", f"To: <{leg.caller}>;tag={leg.caller_tag}",
                 f"Call-ID: {leg.call_id}", f"CSeq: {cseq} {method}"]
        return _finish(lines, body)

    def callee_response(self, status: int, reason: str, *, to_tag: str, cseq: int,
                        method: str, body: bytes = b"", vias: tuple[Addr, ...] = ()) -> bytes:
        """The caller side's response to a callee-side request."""
        leg = self.leg
        lines = [f"SIP/2.0 {status} {reason}", *Hop(leg, vias)._vias(),
                 f"From: <{leg.callee}>;tag={to_tag}", f"To: <{leg.caller}>;tag={leg.caller_tag}",
                 f"Call-ID: {leg.call_id}", f"CSeq: {cseq} {method}"]
        return _finish(lines, body)


def _finish(lines: list[str], body: bytes) -> bytes:
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ---- media ----------------------------------------------------------------------------
def burst(s: Script, t: float, src: Addr, dst: Addr, n: int = 6, *, secure: bool = False,
          ssrc: int = 0x2019A77C) -> list[int]:
    """``n`` well-formed SR+SDES compounds 50 ms apart (SRTCP when ``secure``)."""
    return [s.udp(t + i * 0.05, src, dst, srtcp(compound(ssrc), i + 1) if secure
                  else compound(ssrc)) for i in range(n)]


def two_way(s: Script, t: float, a: Addr, b: Addr, *, n: int = 25, secure: bool = False,
            mux: bool = True, ssrcs: tuple[int, int] = (0x1111, 0x2222)) -> float:
    """RTP both ways at 20 ms, then one RTCP compound each way; the end time."""
    for i in range(n):
        s.udp(t + i * 0.02, a, b, rtp(i + 1, i * 160, ssrcs[0], marker=i == 0))
        s.udp(t + i * 0.02 + 0.005, b, a, rtp(i + 1, i * 160, ssrcs[1], marker=i == 0))
    t += n * 0.02
    for (src, dst), ssrc in zip(((a, b), (b, a)), ssrcs, strict=True):
        rtcp_src, rtcp_dst = (src, dst) if mux else ((src[0], src[1] + 1), (dst[0], dst[1] + 1))
        s.udp(t, rtcp_src, rtcp_dst, srtcp(compound(ssrc), 1) if secure else compound(ssrc))
    return t + 0.05


# ---- SIP transactions along a chain of hops --------------------------------------------
Path = list[tuple[Hop, Addr, Addr]]   # (hop, sender towards the callee, receiver)


def invite(s: Script, t: float, path: Path, body: bytes, *, extra: tuple[str, ...] = ()) -> None:
    for i, (hop, a, b) in enumerate(path):
        s.udp(t + i * 0.02, a, b, hop.request("INVITE", body=body, contact=path[0][1],
                                               extra=extra))
        s.udp(t + i * 0.02 + 0.005, b, a, hop.response(100, "Trying", to_tag=None))


def respond(s: Script, t: float, path: Path, status: int, reason: str, tag: str,
            body: bytes = b"", *, method: str = "INVITE", cseq: int = 1,
            extra: tuple[str, ...] = ()) -> None:
    """A response from the callee, relayed back hop by hop."""
    for i, (hop, a, b) in enumerate(reversed(path)):
        s.udp(t + i * 0.01, b, a, hop.response(status, reason, to_tag=tag, body=body,
                                                method=method, cseq=cseq, contact=path[-1][2],
                                                extra=extra))


def request(s: Script, t: float, path: Path, method: str, *, tag: str | None, cseq: int = 1,
            body: bytes = b"", extra: tuple[str, ...] = (), ok: bool = True) -> None:
    """A caller-side request along the path (and its 200 hop by hop when ``ok``)."""
    for i, (hop, a, b) in enumerate(path):
        s.udp(t + i * 0.02, a, b, hop.request(method, cseq=cseq, to_tag=tag, body=body,
                                               extra=extra))
        if ok and method != "ACK":
            s.udp(t + i * 0.02 + 0.005, b, a, hop.response(200, "OK", to_tag=tag, cseq=cseq,
                                                            method=method))


def cancel(s: Script, t: float, path: Path, tag: str) -> None:
    """CANCEL hop by hop, then 487 and its ACK from the callee back."""
    request(s, t, path, "CANCEL", tag=None)
    respond(s, t + 0.1, path, 487, "Request Terminated", tag)
    request(s, t + 0.15, path, "ACK", tag=tag, ok=False)


def answer(s: Script, t: float, path: Path, tag: str, body: bytes) -> None:
    respond(s, t, path, 200, "OK", tag, body)
    request(s, t + 0.05, path, "ACK", tag=tag, ok=False)


def callee_bye(s: Script, t: float, path: Path, tag: str, cseq: int = 1) -> None:
    """The callee hangs up: BYE back hop by hop, each answered 200."""
    vias: tuple[Addr, ...] = ()
    for i, (hop, a, b) in enumerate(reversed(path)):
        vias = (b, *vias)
        s.udp(t + i * 0.02, b, a, hop.callee_request("BYE", to_tag=tag, cseq=cseq, vias=vias))
        s.udp(t + i * 0.02 + 0.005, a, b, hop.callee_response(200, "OK", to_tag=tag, cseq=cseq,
                                                               method="BYE", vias=vias))
