"""Whole captures for ``spywall pcap``: calls, DNS, TLS, fragments, each with a clean twin.

Built by code from public facts: the 2019 WhatsApp campaign infrastructure named in the
court record (two addresses, three SIP host names; see shared reference call-traffic.md),
DNS messages per RFC 1035 (with compression pointers), TLS ClientHello per RFC 8446 with
SNI per RFC 6066. Calls come from the VoIP payload builders in ``samples.voip``.
``capture_samples()`` yields each capture with the rule ids ``spywall pcap`` must report
when the indicator bundle ``court_record_bundle()`` is loaded.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from spywall.samples import hidden_media as hidden
from spywall.samples.deployments import SHAPES
from spywall.samples.pcapwriter import PROTO_UDP, Capture, ipv4, udp
from spywall.samples.voip import Dialog, Script, clean_call, zero_click_call

CAMPAIGN_IPS = ("104.223.76.220", "54.93.81.200")
CAMPAIGN_HOSTS = ("sip.nsogroup.com", "sip.qtechnologies.com", "sip.2access.xyz")
T0 = 1_557_000_000.0   # May 2019
# what the VoIP analyzer reports on samples.voip.zero_click_call with a campaign SIP host
ZERO_CLICK_RULES = ("voip-ioc-host", "voip-rtcp-length", "voip-rtcp-oversize",
                    "voip-zero-click-media")


def court_record_bundle() -> bytes:
    """A STIX 2.1 bundle of the 2019 campaign infrastructure named in the court record."""
    mal = "malware--5b7d0f3c-7f2c-4b0e-9a53-1d1e8b0a2019"
    objs: list[dict[str, object]] = [{
        "type": "malware", "spec_version": "2.1", "id": mal, "name": "NSO WhatsApp 2019",
        "is_family": False, "created": "2019-05-13T00:00:00Z",
        "modified": "2019-05-13T00:00:00Z"}]
    patterns = [f"[ipv4-addr:value = '{ip}']" for ip in CAMPAIGN_IPS]
    patterns += [f"[domain-name:value = '{h}']" for h in CAMPAIGN_HOSTS]
    for i, pat in enumerate(patterns):
        ind = f"indicator--00000000-0000-4000-8000-{i:012d}"
        objs.append({"type": "indicator", "spec_version": "2.1", "id": ind,
                     "pattern": pat, "pattern_type": "stix", "valid_from": "2019-05-13T00:00:00Z",
                     "created": "2019-05-13T00:00:00Z", "modified": "2019-05-13T00:00:00Z"})
        objs.append({"type": "relationship", "spec_version": "2.1",
                     "id": f"relationship--00000000-0000-4000-9000-{i:012d}",
                     "relationship_type": "indicates", "source_ref": ind, "target_ref": mal,
                     "created": "2019-05-13T00:00:00Z", "modified": "2019-05-13T00:00:00Z"})
    return json.dumps({"type": "bundle", "id": "bundle--2019a000-0000-4000-8000-000000000001",
                       "objects": objs}, indent=1).encode()


# ---- DNS (RFC 1035) -----------------------------------------------------------------
def _qname(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"


def dns_query(name: str, ident: int = 0x5151, qtype: int = 1) -> bytes:
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + _qname(name) + struct.pack(
        "!HH", qtype, 1)


def dns_response(name: str, addrs: Sequence[str], *, cname: str | None = None,
                 ident: int = 0x5151) -> bytes:
    """A response whose answers point back at the question name (0xC00C) like servers do."""
    answers = b""
    owner = b"\xc0\x0c"
    if cname is not None:
        answers += owner + struct.pack("!HHIH", 5, 1, 300, len(_qname(cname))) + _qname(cname)
        owner = struct.pack("!H", 0xC000 | (12 + len(_qname(name)) + 4 + 12))
    for a in addrs:
        six = ":" in a
        raw = socket.inet_pton(socket.AF_INET6 if six else socket.AF_INET, a)
        answers += owner + struct.pack("!HHIH", 28 if six else 1, 1, 300, len(raw)) + raw
    count = len(addrs) + (cname is not None)
    return (struct.pack("!HHHHHH", ident, 0x8180, 1, count, 0, 0) + _qname(name)
            + struct.pack("!HH", 1, 1) + answers)


# ---- TLS (RFC 8446, RFC 6066) -------------------------------------------------------
def client_hello(sni: str | None, *, records: int = 1) -> bytes:
    """A TLS 1.3-style ClientHello, its handshake message split over ``records`` records."""
    exts = b""
    if sni is not None:
        entry = b"\x00" + struct.pack("!H", len(sni)) + sni.encode()
        body = struct.pack("!H", len(entry)) + entry
        exts += struct.pack("!HH", 0, len(body)) + body
    exts += struct.pack("!HH", 43, 3) + b"\x02\x03\x04"          # supported_versions
    hello = (b"\x03\x03" + bytes(range(32)) + b"\x20" + bytes(32)
             + struct.pack("!H", 4) + b"\x13\x01\x13\x02" + b"\x01\x00"
             + struct.pack("!H", len(exts)) + exts)
    msg = b"\x01" + len(hello).to_bytes(3, "big") + hello
    step = -(-len(msg) // records)
    return b"".join(b"\x16\x03\x01" + struct.pack("!H", len(msg[i:i + step])) + msg[i:i + step]
                    for i in range(0, len(msg), step))


# ---- captures ---------------------------------------------------------------------------
class CaptureSample(msgspec.Struct, frozen=True):
    name: str
    capture: Capture
    expected: frozenset[str]
    note: str = ""


def script_capture(s: Script, framing: str = "eth") -> Capture:
    """A voip ``Script`` laid out with any link framing."""
    return s.capture().reframed(framing)


def _lookup(s: Script, ts: float, host: str, addr: str) -> None:
    client, server = ("192.168.1.20", 53001), ("192.168.1.1", 53)
    s.udp(ts, client, server, dns_query(host))
    s.udp(ts + 0.02, server, client, dns_response(host, [addr]))


def campaign_call(attacker: str, server_host: str, server_ip: str, framing: str) -> Capture:
    """A DNS lookup of the SIP server, then an unanswered call with crafted RTCP."""
    s = Script()
    _lookup(s, T0, server_host, server_ip)
    d = Dialog("zc-2019@caller", f"attacker@{server_host}", "victim@192.168.1.20",
               (attacker, 5060), ("192.168.1.20", 5060))
    zero_click_call(s, T0 + 1, d)
    return script_capture(s, framing)


def ordinary_call(framing: str, *, tcp: bool = False, v6: bool = False) -> Capture:
    s = Script()
    server, phone = ("2001:db8:5::7", "2001:db8:1::20") if v6 else ("198.51.100.7",
                                                                     "192.168.1.20")
    client, resolver = (phone, 53001), ("2001:db8:1::1" if v6 else "192.168.1.1", 53)
    s.udp(T0, client, resolver, dns_query("sip.example.net", qtype=28 if v6 else 1))
    s.udp(T0 + 0.02, resolver, client, dns_response("sip.example.net", [server]))
    d = Dialog("clean-1@example.net", "alice@sip.example.net", f"bob@[{phone}]" if v6 else
               f"bob@{phone}", (server, 5060), (phone, 5060), transport="TCP" if tcp else "UDP")
    clean_call(s, T0 + 1, d, tcp=tcp)
    return script_capture(s, framing)


def tls_session(sni: str, framing: str) -> Capture:
    """A handshake and a ClientHello split over two records and two TCP segments."""
    cap = Capture(framing=framing)
    client, server = ("192.168.1.20", 51000), ("203.0.113.9", 443)
    cap.tcp_handshake(T0, client, server)
    hello = client_hello(sni, records=2)
    cap.tcp(T0 + 0.01, *client, *server, hello[:40])
    cap.tcp(T0 + 0.02, *client, *server, hello[40:])
    return cap


def fragments(overlap: bool) -> Capture:
    """A SIP OPTIONS over UDP in three IPv4 fragments; with ``overlap`` a fourth fragment
    rewrites bytes already received (the teardrop / evasion shape)."""
    cap = Capture()
    src, dst = "198.51.100.7", "192.168.1.20"
    body = b"OPTIONS sip:bob@192.168.1.20 SIP/2.0\r\n" + b"X-Pad: " + b"a" * 120 + b"\r\n\r\n"
    seg = udp(5060, 5060, body)
    parts = [(0, seg[:64], True), (64, seg[64:128], True), (128, seg[128:], False)]
    if overlap:
        parts.insert(1, (56, b"Z" * 16, True))
    for off, data, more in parts:
        cap.ip(T0, ipv4(src, dst, PROTO_UDP, data, ident=0x4242, frag_offset=off, mf=more))
    return cap


def hidden_samples() -> Iterator[CaptureSample]:
    """The RTCP trigger hidden in the encodings of issue #14, each with its clean twin."""
    length, srtcp = frozenset({"voip-rtcp-length"}), frozenset({"voip-srtcp-length"})
    for name, keying in (("aead-mki-sdp", hidden.Keying("sdp", True, 4)),
                         ("aead-dtls", hidden.Keying("dtls", True, 0)),
                         ("hmac-mki-unkeyed", hidden.Keying("none", False, 2))):
        for crafted in (True, False):
            cap = Capture()
            hidden.srtcp_call(cap, T0, keying, crafted=crafted)
            yield CaptureSample(f"{'hidden' if crafted else 'clean'}-srtcp-{name}.pcap", cap,
                                srtcp if crafted else frozenset(),
                                f"SRTCP trailer {name}" + ("" if crafted else ", clean twin"))
    for crafted in (True, False):
        tag = "hidden" if crafted else "clean"
        cap = Capture()
        hidden.tcp_call(cap, T0, cuts=(1, 90, 91, 400), order=(0, 2, 1, 3, 4), again=(2,),
                        crafted=crafted)
        yield CaptureSample(f"{tag}-rtcp-rfc4571.pcapng", cap, length if crafted else
                            frozenset(), "RTP/RTCP over TCP, segments cut, reordered, repeated")
        for tcp in (False, True):
            cap = Capture()
            hidden.turn_call(cap, T0, tcp=tcp, crafted=crafted, cuts=(3, 70, 250))
            yield CaptureSample(f"{tag}-rtcp-turn-{'tcp' if tcp else 'udp'}.pcap", cap,
                                length if crafted else frozenset(),
                                f"RTCP relayed in TURN ChannelData over {'TCP' if tcp else 'UDP'}")


def capture_samples() -> Iterator[CaptureSample]:
    bad_ip = CAMPAIGN_IPS[0]
    campaign = frozenset({"ioc-ip", "ioc-dns", *ZERO_CLICK_RULES})
    yield CaptureSample("campaign-zero-click.pcap",
                        campaign_call(bad_ip, CAMPAIGN_HOSTS[0], CAMPAIGN_IPS[1], "eth"),
                        campaign, "2019 infrastructure and pattern")
    yield CaptureSample("campaign-zero-click-sll2.pcapng",
                        campaign_call(bad_ip, CAMPAIGN_HOSTS[1], CAMPAIGN_IPS[1], "sll2"),
                        campaign, "the same over Linux cooked v2")
    yield CaptureSample("ordinary-call.pcap", ordinary_call("vlan"), frozenset(),
                        "a clean call over VLAN: nothing to report")
    yield CaptureSample("ordinary-call-tcp.pcapng", ordinary_call("sll", tcp=True),
                        frozenset(), "SIP over TCP, INVITE split over two segments")
    yield CaptureSample("ordinary-call-ipv6.pcapng", ordinary_call("sll2", v6=True),
                        frozenset(), "a clean call over IPv6")
    yield CaptureSample("tls-sni-campaign.pcap", tls_session(CAMPAIGN_HOSTS[2], "qinq"),
                        frozenset({"ioc-tls-sni"}), "ClientHello to a campaign host")
    yield CaptureSample("tls-sni-clean.pcap", tls_session("www.example.org", "qinq"),
                        frozenset())
    yield CaptureSample("fragment-overlap.pcap", fragments(True),
                        frozenset({"ip-fragment-overlap"}))
    yield CaptureSample("fragments-clean.pcap", fragments(False), frozenset())
    yield from hidden_samples()
    for name, shape in SHAPES.items():   # the zero-click pattern per deployment shape
        yield CaptureSample(f"zero-click-{name}.pcapng", shape.build(True).script.capture(),
                            shape.expected, shape.note)
        yield CaptureSample(f"clean-{name}.pcap", shape.build(False).script.capture(),
                            frozenset(), f"clean twin of {name}")


def write_all(folder: Path) -> list[Path]:
    """Write every sample capture and the court-record indicator bundle into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = [folder / "court-record-2019.stix2"]
    out[0].write_bytes(court_record_bundle())
    for s in capture_samples():
        path = folder / s.name
        path.write_bytes(s.capture.pcapng() if s.name.endswith("ng") else s.capture.pcap())
        out.append(path)
    return out


if __name__ == "__main__":   # python -m spywall.samples.captures OUTDIR
    import sys

    for written in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "captures")):
        print(written)
