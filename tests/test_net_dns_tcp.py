"""DNS over TCP: several messages in one segment, one message across several segments.

Each message carries a 2-byte length prefix (RFC 1035 4.2.2). A capture with random
messages cut at random places must give an indicator finding for every campaign name
asked, and tshark (when installed) must read the same names from the same capture.
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


def capture(names: list[str], cuts: list[int]) -> bytes:
    """The queries, length-prefixed, as one byte stream cut into segments at ``cuts``."""
    stream = b"".join(struct.pack("!H", len(m)) + m
                      for m in (dns_query(n, ident=i + 1) for i, n in enumerate(names)))
    points = sorted({c % len(stream) for c in cuts} - {0})
    cap = Capture()
    cap.tcp_handshake(1.0, CLIENT, SERVER)
    for i, (a, b) in enumerate(zip([0, *points], [*points, len(stream)], strict=True)):
        cap.tcp(1.1 + i / 100, *CLIENT, *SERVER, stream[a:b])
    return cap.pcap()


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
@given(NAMES, st.lists(st.integers(0, 1 << 16), max_size=12))
def test_every_campaign_name_is_found(index: IocIndex, names: list[str],
                                      cuts: list[int]) -> None:
    pcap = capture(names, cuts)
    res = Pipeline("x", index).run(io.BytesIO(pcap))
    assert not res.errors, res.errors
    found = {f.indicator.matched for f in res.findings if f.indicator is not None}
    assert found == {n for n in names if n in CAMPAIGN_HOSTS}


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
    many = (struct.pack("!H", 12) + bytes(12)) * (dns.MAX_TCP_MESSAGES + 5)
    msgs, problems = framer.feed(("c", 1, "d", 53), many)
    assert len(msgs) == dns.MAX_TCP_MESSAGES
    assert problems
