"""SIP messages (RFC 3261): start line, headers (compact forms, folding), body, URI hosts.

``parse_sip`` decodes one message from a UDP payload or from bytes framed out of a TCP
stream; the rules it breaks (sizes, Content-Length) come back as ``Anomaly`` values.
``SipStream`` frames messages out of one direction of a TCP stream with a bounded buffer.
"""

from __future__ import annotations

import re

import msgspec

from spywall.errors import FormatError
from spywall.net.voip.rules import Anomaly

MAX_START_LINE = 2048
"""Longest sane start line. Request-URIs of real user agents stay well under 1 KiB; RFC 3261
sets no limit, so this is generous."""
MAX_HEADER_LINE = 8192
"""Longest sane header line (after unfolding). Long Via/Record-Route/Authorization lines stay
under 4 KiB in practice."""
MAX_HEADERS = 256
"""Most header lines a message may carry before the rest is ignored and flagged."""
MAX_TCP_HEADER = 65536
"""Bytes a TCP stream may buffer without a complete header block."""
MAX_BODY = 1 << 20
"""Largest Content-Length accepted for framing on TCP (SIP bodies are a few KiB)."""

METHODS = (b"INVITE", b"ACK", b"BYE", b"CANCEL", b"OPTIONS", b"REGISTER", b"PRACK",
           b"SUBSCRIBE", b"NOTIFY", b"PUBLISH", b"INFO", b"REFER", b"MESSAGE", b"UPDATE")
PREFIXES: tuple[bytes, ...] = (b"SIP/2.0 ", *(m + b" " for m in METHODS))
COMPACT = {"i": "call-id", "f": "from", "t": "to", "m": "contact", "v": "via",
           "l": "content-length", "c": "content-type", "s": "subject", "k": "supported",
           "e": "content-encoding", "o": "event", "r": "refer-to", "u": "allow-events"}
_URI = re.compile(r"sips?:[^\s<>;,?\"]+", re.IGNORECASE)
_VIA = re.compile(r"SIP\s*/\s*2\.0\s*/\s*[A-Za-z]+\s+([^\s;,]+)|received=([^\s;,]+)",
                  re.IGNORECASE)


def looks_like_sip(p: bytes) -> bool:
    return p.startswith(PREFIXES)


class SipMessage(msgspec.Struct, frozen=True):
    method: str | None          # requests
    uri: str | None             # Request-URI
    status: int | None          # responses
    headers: tuple[tuple[str, str], ...]   # (lower-case full name, value)
    body: bytes
    anomalies: tuple[Anomaly, ...]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    @property
    def cseq_method(self) -> str | None:
        parts = (self.header("cseq") or "").split()
        return parts[1].upper() if len(parts) == 2 else None

    @property
    def call_id(self) -> str | None:
        return self.header("call-id")


def split_head(p: bytes) -> tuple[bytes, bytes] | None:
    """(header block, rest) at the first empty line, or None if there is none yet."""
    i = p.find(b"\r\n\r\n")
    if i >= 0:
        return p[:i], p[i + 4 :]
    i = p.find(b"\n\n")
    return (p[:i], p[i + 2 :]) if i >= 0 else None


def _lines(head: str, out: list[Anomaly]) -> list[str]:
    lines: list[str] = []
    for raw in head.split("\n"):
        line = raw.rstrip("\r")
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()
        else:
            if len(lines) > MAX_HEADERS:
                out.append(Anomaly("voip-sip-oversize", f"more than {MAX_HEADERS} header lines",
                                   {"limit": MAX_HEADERS}))
                break
            lines.append(line)
    return lines


def content_length(value: str | None) -> int | None:
    if value is None:
        return None
    v = value.strip()
    if not (v.isascii() and v.isdigit()) or len(v) > 9:   # isdigit alone takes '²'
        raise FormatError(f"Content-Length {v[:20]!r} is not a number")
    return int(v)


def parse_sip(p: bytes, *, stream: bool = False) -> SipMessage:
    """Decode one SIP message. Over UDP the body is the rest of the datagram and is checked
    against Content-Length; over a stream the caller framed it already. ``FormatError`` if
    the start line is not SIP."""
    out: list[Anomaly] = []
    split = split_head(p)
    head_b, body = split if split is not None else (p, b"")
    lines = _lines(head_b.decode("utf-8", "replace"), out)
    start = lines[0]
    if len(start) > MAX_START_LINE:
        out.append(Anomaly("voip-sip-oversize", f"start line of {len(start)} bytes",
                           {"length": len(start), "limit": MAX_START_LINE}))
    parts = start.split(" ", 2)
    method = uri = None
    status = None
    if parts[0] == "SIP/2.0" and len(parts) >= 2 and parts[1].isdigit() and len(parts[1]) == 3:
        status = int(parts[1])
    elif len(parts) == 3 and parts[2].strip().upper() == "SIP/2.0":
        method, uri = parts[0].upper(), parts[1]
    else:
        raise FormatError(f"not a SIP start line: {start[:60]!r}")
    headers: list[tuple[str, str]] = []
    long_line = False
    for line in lines[1:]:
        if len(line) > MAX_HEADER_LINE and not long_line:
            long_line = True
            out.append(Anomaly("voip-sip-oversize", f"header line of {len(line)} bytes",
                               {"length": len(line), "limit": MAX_HEADER_LINE}))
        name, colon, value = line.partition(":")
        if not colon:
            continue
        key = name.strip().lower()
        headers.append((COMPACT.get(key, key), value.strip()))
    msg = SipMessage(method, uri, status, tuple(headers), body, ())
    try:
        declared = content_length(msg.header("content-length"))
    except FormatError as exc:
        out.append(Anomaly("voip-sip-content-length", str(exc), {}))
        declared = None
    if not stream and declared is not None and declared != len(body):
        out.append(Anomaly("voip-sip-content-length", f"Content-Length {declared}, body of "
                           f"{len(body)} bytes", {"declared": declared, "actual": len(body)}))
    if stream and declared is not None:
        body = body[:declared]
    return SipMessage(method, uri, status, tuple(headers), body, tuple(out))


def uri_host(uri: str) -> str | None:
    """The host of a sip:/sips: URI (lower case; IPv6 without brackets)."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    hostport = rest.rpartition("@")[2]
    if hostport.startswith("["):
        return hostport[1:].partition("]")[0].lower() or None
    return hostport.partition(":")[0].lower() or None


def header_uris(value: str) -> list[str]:
    """Every sip:/sips: URI in a header value (name-addr or addr-spec, lists)."""
    return _URI.findall(value)[:16]


def via_hosts(value: str) -> list[str]:
    """sent-by and received= hosts of a Via header value."""
    out: list[str] = []
    for sent_by, received in _VIA.findall(value)[:16]:
        host = sent_by or received
        if host.startswith("["):
            out.append(host[1:].partition("]")[0].lower())
        else:
            out.append(host.partition(":")[0].lower())
    return out


def message_hosts(msg: SipMessage) -> list[tuple[str, str]]:
    """(where, host) for the Request-URI, From, To, Contact and Via of a message."""
    out: list[tuple[str, str]] = []
    uris = [("Request-URI", msg.uri)] if msg.uri else []
    uris += [(h.title(), v) for h in ("from", "to", "contact") for v in msg.all(h)]
    for where, value in uris:
        for uri in header_uris(value):
            host = uri_host(uri)
            if host:
                out.append((where, host))
    out += [("Via", h) for v in msg.all("via") for h in via_hosts(v) if h]
    return out


class SipStream:
    """Frames SIP messages out of one direction of a TCP stream (bounded buffer)."""

    __slots__ = ("buf", "dead")

    def __init__(self) -> None:
        self.buf = b""
        self.dead = False

    def feed(self, data: bytes) -> tuple[list[bytes], list[Anomaly]]:
        """Append ``data``; (complete messages, anomalies). A broken stream goes dead."""
        if self.dead:
            return [], []
        buf = self.buf + data
        msgs: list[bytes] = []
        while True:
            buf = buf.lstrip(b"\r\n")  # RFC 5626 CRLF keep-alives
            if len(buf) >= 8 and not looks_like_sip(buf):
                return self._kill(msgs, [])
            split = split_head(buf)
            if split is None:
                if len(buf) > MAX_TCP_HEADER:
                    return self._kill(msgs, [Anomaly(
                        "voip-sip-oversize", f"no end of headers within {MAX_TCP_HEADER} bytes "
                        "of a SIP stream", {"buffered": len(buf), "limit": MAX_TCP_HEADER})])
                break
            head, rest = split
            value = next((ln.partition(b":")[2] for ln in head.split(b"\n")
                          if ln.partition(b":")[0].strip().lower() in (b"content-length", b"l")),
                         None)
            try:
                declared = content_length(value.decode("latin-1")) if value is not None else 0
            except FormatError as exc:
                return self._kill(msgs, [Anomaly("voip-sip-content-length", str(exc), {})])
            if declared is None or declared > MAX_BODY:
                return self._kill(msgs, [Anomaly(
                    "voip-sip-content-length", f"Content-Length {declared} over {MAX_BODY}",
                    {"declared": declared, "limit": MAX_BODY})])
            if len(rest) < declared:
                break
            size = len(buf) - len(rest) + declared
            msgs.append(buf[:size])
            buf = buf[size:]
        self.buf = buf
        return msgs, []

    def _kill(self, msgs: list[bytes], out: list[Anomaly]) -> tuple[list[bytes], list[Anomaly]]:
        self.dead = True
        self.buf = b""
        return msgs, out
