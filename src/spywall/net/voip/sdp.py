"""SDP session descriptions (RFC 8866): what the analyzer needs to classify media flows.

``parse_sdp`` returns the connection address and every media section (port, protocol,
RTCP port from ``a=rtcp`` or port+1, RFC 5761 ``a=rtcp-mux``, whether it is SRTP and the
SRTCP trailer layouts its ``a=crypto`` lines give, the UDP ICE
candidates of RFC 8839 ``a=candidate``: host, server-reflexive and TURN relay addresses
where media may arrive), with the rules the body breaks as ``Anomaly`` values.
"""

from __future__ import annotations

import re

import msgspec

from spywall.net.voip.rtcp import SrtcpLayout, layout_from_crypto
from spywall.net.voip.rules import Anomaly

MAX_MEDIA = 16
"""Most m= sections a sane offer carries (audio, video, data, a few simulcast layers)."""
MAX_PORT_COUNT = 16
"""Largest m= port count (``port/n``, hierarchical coding layers) accepted as sane."""
MAX_CANDIDATES = 32
"""ICE candidates kept per media section (a dual-stack host with a TURN server offers about a
dozen); the rest are ignored."""
MAX_LINES = 2048
"""Lines read from one body; the rest is ignored (bounded work)."""
PLACEHOLDER_PORTS = frozenset({0, 9})
"""Port 0 rejects a stream; 9 (discard) is the RFC 8840 / bundle-only placeholder."""
_HOST = re.compile(r"^[A-Za-z0-9.\-:]+$")
_IP4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
MALFORMED = "voip-sdp-malformed"


class Media(msgspec.Struct, frozen=True):
    media: str
    port: int
    proto: str
    conn: str | None
    rtcp_port: int
    rtcp_addr: str | None
    mux: bool
    secure: bool
    candidates: tuple[tuple[str, int], ...] = ()
    layouts: tuple[SrtcpLayout, ...] = ()   # SRTCP trailers of its a=crypto lines; () unknown


class Session(msgspec.Struct):
    conn: str | None = None
    origin: str | None = None
    media: list[Media] = msgspec.field(default_factory=list)
    hosts: list[str] = msgspec.field(default_factory=list)   # every c= address (session and media)


class _Section(msgspec.Struct):
    media: str
    port: int
    proto: str
    conn: str | None = None
    rtcp_port: int | None = None
    rtcp_addr: str | None = None
    mux: bool = False
    secure: bool = False
    candidates: list[tuple[str, int]] = msgspec.field(default_factory=list)
    layouts: list[SrtcpLayout] = msgspec.field(default_factory=list)
    unknown_suite: bool = False


def _conn(value: str, out: list[Anomaly]) -> str | None:
    f = value.split()
    addr = f[2].split("/")[0] if len(f) == 3 else ""
    ok = (len(f) == 3 and f[0] == "IN" and f[1] in ("IP4", "IP6") and _HOST.match(addr)
          and (f[1] == "IP6" or ":" not in addr)
          and (not _IP4.match(addr) or all(int(x) < 256 for x in addr.split("."))))
    if not ok:
        out.append(Anomaly(MALFORMED, f"c= line {value[:80]!r} is not IN IP4|IP6 <address>",
                           {"line": value[:200]}))
        return None
    return addr.lower()


def _media(value: str, out: list[Anomaly]) -> _Section | None:
    f = value.split()
    port_s, _, count_s = f[1].partition("/") if len(f) >= 2 else ("", "", "")
    if len(f) < 4 or not port_s.isdigit() or (count_s and not count_s.isdigit()) \
            or len(port_s) > 6 or int(port_s) > 65535 or len(count_s) > 6:
        out.append(Anomaly(MALFORMED, f"m= line {value[:80]!r} is not <media> <port>[/n] "
                           "<proto> <fmt>...", {"line": value[:200]}))
        return None
    port, count = int(port_s), int(count_s or 1)
    if count > MAX_PORT_COUNT or port + 2 * count > 65537:
        out.append(Anomaly("voip-sdp-absurd", f"m= port count {count} from port {port}",
                           {"port": port, "count": count, "limit": MAX_PORT_COUNT}))
    if port < 1024 and port not in PLACEHOLDER_PORTS:
        out.append(Anomaly("voip-sdp-absurd", f"m= {f[0]} on privileged port {port}",
                           {"port": port}))
    return _Section(f[0], port, f[2], secure="SAVP" in f[2].upper())


def _attribute(sec: _Section, value: str) -> None:
    name, _, arg = value.partition(":")
    if name == "rtcp-mux":
        sec.mux = True
    elif name in ("crypto", "fingerprint"):
        sec.secure = True
        if name == "crypto" and len(sec.layouts) < MAX_CANDIDATES:
            layout = layout_from_crypto(arg)
            if layout is None:
                sec.unknown_suite = True   # a suite or MKI the layouts do not know
            elif layout not in sec.layouts:
                sec.layouts.append(layout)
    elif name == "rtcp":
        f = arg.split()
        if f and f[0].isdigit() and len(f[0]) <= 5 and int(f[0]) <= 65535:
            sec.rtcp_port = int(f[0])
            if len(f) == 4:
                sec.rtcp_addr = f[3].lower()
    elif name == "candidate" and len(sec.candidates) < MAX_CANDIDATES:
        # foundation component transport priority address port typ type ... (RFC 8839 5.1)
        f = arg.split()
        if len(f) >= 8 and f[2].upper() == "UDP" and f[5].isdigit() and len(f[5]) <= 5 \
                and 0 < int(f[5]) <= 65535 and _HOST.match(f[4]):
            sec.candidates.append((f[4].lower(), int(f[5])))


def parse_sdp(body: bytes) -> tuple[Session, list[Anomaly]]:
    """Decode an SDP body; never raises for content (problems become anomalies)."""
    out: list[Anomaly] = []
    s = Session()
    lines = [ln.rstrip("\r") for ln in body.decode("utf-8", "replace").split("\n", MAX_LINES)]
    lines = [ln for ln in lines[:MAX_LINES] if ln.strip()]
    if not lines or lines[0].strip() != "v=0":
        out.append(Anomaly(MALFORMED, "SDP does not start with v=0",
                           {"first_line": (lines[0] if lines else "")[:80]}))
    sections: list[_Section] = []
    m_count = 0
    session_secure = False
    for line in lines:
        kind, eq, value = line.partition("=")
        if not eq or len(kind) != 1:
            continue
        cur = sections[-1] if sections else None
        if kind == "o":
            f = value.split()
            if len(f) != 6 or f[3] != "IN" or f[4] not in ("IP4", "IP6"):
                out.append(Anomaly(MALFORMED, f"o= line {value[:80]!r} lacks its 6 fields",
                                   {"line": value[:200]}))
            else:
                s.origin = f[5].lower()
        elif kind == "c":
            addr = _conn(value, out)
            if addr is not None:
                s.hosts.append(addr)
                if cur is None:
                    s.conn = addr
                else:
                    cur.conn = addr
        elif kind == "m":
            m_count += 1
            sec = _media(value, out) if m_count <= MAX_MEDIA else None
            if sec is not None:
                sections.append(sec)
        elif kind == "a":
            if cur is not None:
                _attribute(cur, value)
            elif value.startswith(("crypto", "fingerprint")):
                session_secure = True
    if m_count > MAX_MEDIA:
        out.append(Anomaly("voip-sdp-absurd", f"{m_count} m= sections (limit {MAX_MEDIA})",
                           {"sections": m_count, "limit": MAX_MEDIA}))
    for sec in sections:
        conn = sec.conn or s.conn
        rtcp = sec.port if sec.mux else (sec.rtcp_port or sec.port + 1)
        s.media.append(Media(sec.media, sec.port, sec.proto, conn, rtcp,
                             sec.rtcp_addr or conn, sec.mux, sec.secure or session_secure,
                             tuple(sec.candidates),
                             () if sec.unknown_suite else tuple(sec.layouts)))
    return s, out
