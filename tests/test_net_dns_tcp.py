"""DNS over TCP: several messages in one segment, one message across several segments.

Each message carries a 2-byte length prefix (RFC 1035 4.2.2). A capture with random
messages cut at random places, the segments sent out of order and some retransmitted,
must give an indicator finding for every campaign name asked, and tshark (when installed)
must read the same names from the same capture. Hiding places that used to work: a query
after many padding messages in one segment, and a query on a new connection that reuses
the addresses and ports of one that ended mid-message.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.iocs import IocIndex
from spywall.net import dns
from spywall.net.pipeline import Pipeline
from spywall.samples.captures import CAMPAIGN_HOSTS, court_record_bundle, dns_query
from spywall.samples.pcapwriter import Capture

TSHARK = shutil.which("tshark")
CLIENT, SERVER = ("10.0.0.2", 40000), ("10.0.0.53", 53)
NAMES = st.lists(st.sampled_from([*CAMPAIGN_HOSTS, "example.org", "www.example.net"]),
                 min_size=1, max_size=6)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> IocIndex:
    path = tmp_path_factory.mktemp("iocs") / "court-record-2019.stix2"
    path.write_bytes(court_record_bundle())
    return IocIndex.load([path])


def framed(names: list[str]) -> bytes:
    return b"".join(struct.pack("!H", len(m)) + m
                    for m in (dns_query(n, ident=i + 1) for i, n in enumerate(names)))


def capture(names: list[str], cuts: list[int], shuffle: st.DrawFn | None = None) -> bytes:
    """The queries, length-prefixed, as one byte stream cut into segments at ``cuts``
    (sent out of order, some twice, when ``shuffle`` draws it so)."""
    stream = framed(names)
    cap = Capture()
    cap.tcp_handshake(1.0, CLIENT, SERVER)
    count = len({c % len(stream) for c in cuts} - {0}) + 1
    order = list(range(count))
    again: list[int] = []
    if shuffle is not None:
        order = shuffle(st.permutations(order))
        again = shuffle(st.lists(st.sampled_from(order), max_size=3))
    cap.tcp_stream(1.1, CLIENT, SERVER, stream, cuts, order=order, again=again)
    return cap.pcap()


def found_names(index: IocIndex, pcap: bytes) -> set[str]:
    res = Pipeline("x", index).run(io.BytesIO(pcap))
    assert not res.errors, res.errors
    return {f.indicator.matched for f in res.findings if f.indicator is not None}


def tshark_names(pcap: bytes) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dns.pcap"
        path.write_bytes(pcap)
        proc = subprocess.run([TSHARK or "tshark", "-r", str(path), "-o",
                               "tcp.desegment_tcp_streams:TRUE", "-Y", "dns",
                               "-T", "fields", "-e", "dns.qry.name"],
                              capture_output=True, text=True, timeout=120, check=True)
    return [n.lower() for line in proc.stdout.split() for n in line.split(",") if n]


@settings(max_examples=40, deadline=None)
@given(NAMES, st.lists(st.integers(0, 1 << 16), max_size=12), st.data())
def test_every_campaign_name_is_found(index: IocIndex, names: list[str],
                                      cuts: list[int], data: st.DataObject) -> None:
    assert found_names(index, capture(names, cuts, data.draw)) == \
        {n for n in names if n in CAMPAIGN_HOSTS}


def test_clean_twin(index: IocIndex) -> None:
    names = ["example.org", "www.example.net", "sip.nsogroup.com.example.org"]
    assert found_names(index, capture(names, [5, 40, 41])) == set()
    assert found_names(index, capture(["sip.nsogroup.com"], [5, 40, 41])) == \
        {"sip.nsogroup.com"}


def test_query_after_many_padding_messages(index: IocIndex) -> None:
    """Two hundred empty-question messages, then the campaign name, in one segment."""
    pad = struct.pack("!H", 12) + struct.pack("!6H", 1, 0x0100, 0, 0, 0, 0)
    cap = Capture()
    cap.tcp_handshake(1.0, CLIENT, SERVER)
    cap.tcp(1.1, *CLIENT, *SERVER, pad * 200 + framed(["sip.qtechnologies.com"]))
    assert found_names(index, cap.pcap()) == {"sip.qtechnologies.com"}


def test_new_connection_on_the_same_ports(index: IocIndex) -> None:
    """The first connection ends (FIN) half-way through a message; a new one on the same
    addresses and ports starts clean and its query is read from its own first byte."""
    cap = Capture()
    cap.tcp_handshake(1.0, CLIENT, SERVER)
    cap.tcp(1.1, *CLIENT, *SERVER, framed(["example.org"])[:9], flags=0x19)   # FIN|PSH|ACK
    cap.tcp(2.0, *CLIENT, *SERVER, flags=0x02, seq=777_000)
    cap.tcp(2.0, *SERVER, *CLIENT, flags=0x12, seq=888_000)
    cap.tcp(2.1, *CLIENT, *SERVER, framed(["sip.2access.xyz"]), seq=777_001)
    assert found_names(index, cap.pcap()) == {"sip.2access.xyz"}


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed (apt-get install tshark)")
@settings(max_examples=8, deadline=None)
@given(NAMES, st.lists(st.integers(0, 1 << 16), max_size=6))
def test_tshark_reads_the_same_names(names: list[str], cuts: list[int]) -> None:
    pcap = capture(names, cuts)
    framer = dns.TcpFramer()
    mine: list[str] = []
    stream = b"".join(struct.pack("!H", len(m)) + m
                      for m in (dns_query(n, ident=i + 1) for i, n in enumerate(names)))
    for chunk in (stream[: len(stream) // 3], stream[len(stream) // 3 :]):
        msgs, problems = framer.feed(("a", 1, "b", 2), chunk)
        assert not problems
        mine += [q for m in msgs for q in dns.parse(m).questions]
    assert mine == names
    assert sorted(tshark_names(pcap)) == sorted(names)


def test_framer_bounds() -> None:
    framer = dns.TcpFramer()
    for i in range(dns.MAX_TCP_STREAMS + 3):
        msgs, problems = framer.feed(("a", i, "b", 53), b"\x01\x00partial")
        assert not msgs
        assert bool(problems) == (i >= dns.MAX_TCP_STREAMS)
    assert len(framer.partial) == dns.MAX_TCP_STREAMS
    many = (struct.pack("!H", 12) + bytes(12)) * 500
    framer = dns.TcpFramer()
    msgs, problems = framer.feed(("c", 1, "d", 53), many + b"\x00")
    assert len(msgs) == 500
    assert not problems
    assert framer.partial[("c", 1, "d", 53)] == b"\x00"
