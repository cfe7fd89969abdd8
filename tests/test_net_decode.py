"""Link/IP/UDP/TCP decoding and bounded reassembly."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.net import reassembly
from spywall.net.capture import CaptureReader
from spywall.net.decode import LINKS, Decoder
from spywall.net.packet import Datagram
from spywall.samples.pcapwriter import (
    FRAMINGS,
    PROTO_TCP,
    PROTO_UDP,
    TCP_FIN,
    TCP_SYN,
    fragment_ipv4,
    frame,
    ipv4,
    ipv6,
    ipv6_fragment_header,
    tcp,
    udp,
)

V4 = ("10.1.2.3", "192.0.2.44")
V6 = ("2001:db8::1", "2001:db8:0:1::2")


class Sink:
    def __init__(self) -> None:
        self.errors: list[tuple[int, str, str]] = []
        self.findings: list[tuple[str, str, Datagram]] = []
        self.decoder = Decoder(lambda f, c, m: self.errors.append((f, c, m)),
                               lambda r, m, d: self.findings.append((r, m, d)))

    def feed(self, framing: str, packet: bytes, n: int = 1, ts: float = 10.0,
             wire: int | None = None) -> Datagram | None:
        data = frame(framing, packet)
        return self.decoder.packet(n, ts, FRAMINGS[framing][0], data,
                                   len(data) if wire is None else wire)


V6_FRAMINGS = [f for f in FRAMINGS if f != "ipv4"]
V4_FRAMINGS = [f for f in FRAMINGS if f != "ipv6"]


@pytest.mark.parametrize("framing", V4_FRAMINGS)
def test_udp_over_ipv4_for_every_link_type(framing: str) -> None:
    s = Sink()
    d = s.feed(framing, ipv4(*V4, PROTO_UDP, udp(5060, 5062, b"hello")), n=7, ts=3.5)
    assert d == Datagram(7, 3.5, *V4, 5060, 5062, "udp", b"hello")
    assert not s.errors


@pytest.mark.parametrize("framing", V6_FRAMINGS)
def test_udp_over_ipv6_for_every_link_type(framing: str) -> None:
    s = Sink()
    d = s.feed(framing, ipv6(*V6, PROTO_UDP, udp(3478, 3479, b"stun")))
    assert d is not None
    assert (d.src, d.dst, d.payload) == (*V6, b"stun")


def test_ethernet_padding_is_trimmed_by_ip_length() -> None:
    s = Sink()
    data = frame("eth", ipv4(*V4, PROTO_UDP, udp(1, 2, b"x"))) + b"\x00" * 20
    d = s.decoder.packet(1, 0.0, 1, data, len(data))
    assert d is not None
    assert d.payload == b"x"


def test_non_ip_ethertype_is_ignored_quietly() -> None:
    s = Sink()
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    assert s.decoder.packet(1, 0.0, 1, arp, len(arp)) is None
    assert not s.errors


def test_unknown_link_type_reported_once() -> None:
    s = Sink()
    for n in (1, 2):
        assert s.decoder.packet(n, 0.0, 9999, b"abc", 3) is None
    assert len(s.errors) == 1
    assert s.errors[0][1] == "unsupported"


def test_ipv6_extension_headers_are_walked() -> None:
    s = Sink()
    pkt = ipv6(*V6, PROTO_UDP, udp(1000, 2000, b"payload"),
               ext=[(0, b"\x01\x04" + bytes(4)), (43, bytes(6)), (60, bytes(14))])
    d = s.feed("raw", pkt)
    assert d is not None
    assert d.payload == b"payload"


def test_ipv6_fragments_reassemble() -> None:
    s = Sink()
    seg = udp(4000, 4002, bytes(range(200)))
    a = ipv6(*V6, PROTO_UDP, seg[:104], ext=[ipv6_fragment_header(0, True, 77)])
    b = ipv6(*V6, PROTO_UDP, seg[104:], ext=[ipv6_fragment_header(104, False, 77)])
    assert s.feed("ipv6", a, n=1) is None
    d = s.feed("ipv6", b, n=2)
    assert d is not None
    assert d.frame == 2
    assert d.payload == bytes(range(200))


def test_ipv4_fragments_out_of_order_complete_on_the_last_frame() -> None:
    s = Sink()
    seg = udp(5060, 5060, b"INVITE " + b"x" * 3000)
    parts = fragment_ipv4(*V4, PROTO_UDP, seg, 99, 1000)
    order = [2, 0, 3, 1]
    got = [s.feed("eth", parts[i], n=k + 1) for k, i in enumerate(order)]
    assert got[:3] == [None, None, None]
    assert got[3] is not None
    assert got[3].frame == 4
    assert got[3].payload == b"INVITE " + b"x" * 3000
    assert not s.findings
    assert s.decoder.frags.held == 0


def test_overlapping_fragments_with_different_data_are_a_finding() -> None:
    s = Sink()
    seg = udp(1, 2, bytes(64))
    s.feed("raw", ipv4(*V4, PROTO_UDP, seg[:40], ident=5, mf=True))
    s.feed("raw", ipv4(*V4, PROTO_UDP, b"\xff" * 16, ident=5, mf=True, frag_offset=32))
    d = s.feed("raw", ipv4(*V4, PROTO_UDP, seg[40:], ident=5, frag_offset=40))
    assert [f[0] for f in s.findings] == ["ip-fragment-overlap"]
    assert d is not None
    # the first copy of each byte wins: 32-40 from the first fragment, 40-48 from the second
    assert d.payload == (seg[:40] + b"\xff" * 8 + seg[48:])[8:]


def test_duplicate_fragment_is_not_an_overlap_finding() -> None:
    s = Sink()
    seg = udp(1, 2, bytes(64))
    first = ipv4(*V4, PROTO_UDP, seg[:40], ident=6, mf=True)
    s.feed("raw", first)
    s.feed("raw", first)
    assert s.feed("raw", ipv4(*V4, PROTO_UDP, seg[40:], ident=6, frag_offset=40)) is not None
    assert not s.findings


def test_fragment_past_64k_is_an_error() -> None:
    s = Sink()
    s.feed("raw", ipv4(*V4, PROTO_UDP, bytes(64), ident=8, frag_offset=65528))
    assert s.errors
    assert "65535" in s.errors[0][2]


def test_too_many_fragments_drop_the_set() -> None:
    s = Sink()
    for i in range(reassembly.MAX_FRAGMENTS + 1):
        s.feed("raw", ipv4(*V4, PROTO_UDP, bytes(8), ident=9, mf=True, frag_offset=8 * i))
    assert any(c == "limit" for _, c, _ in s.errors)
    assert s.decoder.frags.held < 8 * reassembly.MAX_FRAGMENTS


def test_fragments_in_flight_are_capped() -> None:
    s = Sink()
    for i in range(reassembly.MAX_IN_FLIGHT + 50):
        s.feed("raw", ipv4(*V4, PROTO_UDP, bytes(8), ident=i, mf=True), ts=1.0)
    assert len(s.decoder.frags.sets) <= reassembly.MAX_IN_FLIGHT
    assert any(c == "limit" for _, c, _ in s.errors)


def test_old_fragment_sets_expire() -> None:
    s = Sink()
    for i in range(reassembly.MAX_IN_FLIGHT):
        s.feed("raw", ipv4(*V4, PROTO_UDP, bytes(8), ident=i, mf=True), ts=1.0)
    s.feed("raw", ipv4(*V4, PROTO_UDP, bytes(8), ident=70000, mf=True), ts=100.0)
    assert len(s.decoder.frags.sets) == 1
    assert not s.errors


def test_snaplen_cut_is_truncated_and_bad_length_malformed() -> None:
    s = Sink()
    pkt = frame("eth", ipv4(*V4, PROTO_UDP, udp(1, 2, bytes(100))))
    assert s.decoder.packet(1, 0, 1, pkt[:60], len(pkt)) is None
    assert s.decoder.packet(2, 0, 1, pkt[:60], 60) is None
    assert [(f, c) for f, c, _ in s.errors] == [(1, "truncated"), (2, "malformed")]


def test_udp_length_lie_is_malformed() -> None:
    s = Sink()
    assert s.feed("raw", ipv4(*V4, PROTO_UDP, udp(1, 2, b"abc", length=500))) is None
    assert "UDP length 500" in s.errors[0][2]


def test_bad_ipv4_options_are_reported_and_packet_still_decoded() -> None:
    s = Sink()
    d = s.feed("raw", ipv4(*V4, PROTO_UDP, udp(1, 2, b"ok"), options=b"\x07\x09\x00\x00"))
    assert d is not None
    assert "option 7" in s.errors[0][2]


def tcp_seg(seq: int, data: bytes = b"", flags: int = 0x18, sport: int = 40000) -> bytes:
    return ipv4(*V4, PROTO_TCP, tcp(sport, 5060, seq, data, flags=flags))


def test_tcp_in_order_bytes_from_out_of_order_segments() -> None:
    s = Sink()
    assert s.feed("eth", tcp_seg(999, flags=TCP_SYN)) is None
    assert s.feed("eth", tcp_seg(1006, b"world")) is None
    d = s.feed("eth", tcp_seg(1000, b"hello "))
    assert d is not None
    assert (d.transport, d.payload) == ("tcp", b"hello world")
    d = s.feed("eth", tcp_seg(1003, b"lo world!"))     # overlaps what was delivered
    assert d is not None
    assert d.payload == b"!"
    assert s.feed("eth", tcp_seg(1000, b"hello ")) is None   # a retransmission


def test_tcp_sequence_wraps() -> None:
    s = Sink()
    s.feed("raw", tcp_seg(0xFFFFFFFE, b"ab"))
    d = s.feed("raw", tcp_seg(0, b"cd"))
    assert d is not None
    assert d.payload == b"cd"


def test_tcp_fin_forgets_the_stream() -> None:
    s = Sink()
    s.feed("raw", tcp_seg(5, b"x", flags=0x18 | TCP_FIN))
    assert not s.decoder.streams.streams


def test_tcp_pending_bytes_are_capped() -> None:
    s = Sink()
    s.feed("raw", tcp_seg(0, b"a"))
    chunk = bytes(60_000)
    for i in range(20):
        s.feed("raw", tcp_seg(1000 + i * 70_000, chunk))
    assert s.decoder.streams.held <= reassembly.MAX_STREAM_PENDING + len(chunk)
    assert any(c == "limit" for _, c, _ in s.errors)


def test_tcp_streams_are_capped() -> None:
    s = Sink()
    for port in range(reassembly.MAX_STREAMS + 10):
        s.feed("raw", tcp_seg(0, b"", flags=TCP_SYN, sport=port))
    assert len(s.decoder.streams.streams) == reassembly.MAX_STREAMS


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(LINKS)), st.binary(max_size=300))
def test_random_frames_never_raise(linktype: int, data: bytes) -> None:
    Sink().decoder.packet(1, 0.0, linktype, data, len(data))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["eth", "vlan", "sll", "sll2", "null", "raw"]),
       st.booleans(), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
       st.integers(0, 80))
def test_mutated_frames_never_raise(framing: str, six: bool, edits: list[tuple[int, int]],
                                    cut: int) -> None:
    s = Sink()
    pkt = (ipv6(*V6, PROTO_UDP, udp(1, 2, bytes(40)), ext=[ipv6_fragment_header(0, True, 1)])
           if six else ipv4(*V4, PROTO_TCP, tcp(1, 2, 3, b"abc"), options=b"\x94\x04\x00\x00"))
    data = bytearray(frame(framing, pkt))
    for pos, val in edits:
        data[pos % len(data)] = val
    out = bytes(data[:max(1, len(data) - cut)])
    s.decoder.packet(1, 0.0, FRAMINGS[framing][0], out, len(data))


def test_stale_fragment_set_is_not_merged_with_a_reused_id() -> None:
    s = Sink()
    seg = udp(1, 2, bytes(64))
    s.feed("raw", ipv4(*V4, PROTO_UDP, b"\xee" * 40, ident=11, mf=True), ts=1.0)
    later = 1.0 + reassembly.FRAG_TIMEOUT + 5
    s.feed("raw", ipv4(*V4, PROTO_UDP, seg[:40], ident=11, mf=True), ts=later)
    d = s.feed("raw", ipv4(*V4, PROTO_UDP, seg[40:], ident=11, frag_offset=40), ts=later)
    assert not s.findings
    assert d is not None
    assert d.payload == bytes(64)


# ---- cross-check with tshark ----------------------------------------------------------
TSHARK = shutil.which("tshark")
T_LATE = 1_557_000_100.0


def our_udp(data: bytes) -> set[tuple[int, str, str, int, int, int]]:
    s = Sink()
    out = set()
    for rec in CaptureReader(io.BytesIO(data), lambda f, c, m: None):
        d = s.decoder.packet(*rec)
        if d is not None and d.transport == "udp":
            out.add((d.frame, d.src, d.dst, d.sport, d.dport, len(d.payload)))
    return out


def tshark_udp(path: Path) -> set[tuple[int, str, str, int, int, int]]:
    fields = ["frame.number", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "udp.srcport",
              "udp.dstport", "udp.length"]
    cmd = [TSHARK or "tshark", "-r", str(path), "-Y", "udp", "-T", "fields", "-E",
           "occurrence=l", *(x for f in fields for x in ("-e", f))]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = set()
    for line in out.splitlines():
        n, s4, d4, s6, d6, sp, dp, ln = line.split("\t")
        rows.add((int(n), s4 or s6, d4 or d6, int(sp), int(dp), int(ln) - 8))
    return rows


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
@pytest.mark.parametrize("framing", ["eth", "vlan", "qinq", "sll", "sll2", "null", "loop",
                                     "raw", "ipv4"])
def test_udp_datagrams_match_tshark(framing: str, tmp_path: Path) -> None:
    from spywall.samples.captures import fragments, ordinary_call

    cap = ordinary_call(framing)
    for ts, pkt in fragments(False).packets:   # an IPv4 datagram in three fragments
        cap.ip(ts + 10, pkt[14:])
    completed = len(cap.packets)
    if framing != "ipv4":
        cap.udp(T_LATE, V6[0], 5000, V6[1], 5002, b"v6 payload")
    data = cap.pcap() if framing == "ipv4" else cap.pcapng()
    path = tmp_path / "c.pcapng"
    path.write_bytes(data)
    ours, theirs = our_udp(data), tshark_udp(path)
    assert ours == theirs
    assert len(ours) > 100
    assert any(row[0] == completed and row[3] == 5060 for row in ours)
    if framing != "ipv4":
        assert (len(cap.packets), *V6, 5000, 5002, 10) in ours
