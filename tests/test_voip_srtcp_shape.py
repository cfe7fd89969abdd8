"""The pieces behind the hidden-trigger wiring (#14): the SRTCP trailer told from packets
(``srtcp.Shape``), the DTLS-SRTP profile of a ServerHello (``dtls.srtp_profile``, with
tshark reading the same records), and the TCP kind sniffer (``demux.sniff_tcp``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.net.voip import demux, dtls, rtcp, srtcp
from spywall.net.voip.rtcp import SrtcpLayout
from spywall.samples import hidden_media as h
from spywall.samples import voip as v
from spywall.samples.pcapwriter import Capture

TSHARK = shutil.which("tshark")
TWINS = {SrtcpLayout(16, 4, True), SrtcpLayout(4, 0, False)}
"""AEAD with a 4-byte MKI and HMAC-SHA1-32 without one: the index at the same place."""


def protect(plain: bytes, layout: SrtcpLayout, index: int) -> bytes:
    mki = bytes(range(7, 7 + layout.mki))
    if layout.aead:
        return h.srtcp_aead(plain, index, mki)
    return h.srtcp_hmac(plain, index, mki, layout.tag)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(srtcp.CANDIDATES), st.integers(1, 1 << 30), st.integers(2, 5), st.integers(0, 3)
)
def test_packets_tell_their_own_layout(
    layout: SrtcpLayout, first: int, count: int, reports: int
) -> None:
    """Ordinary compounds under any candidate trailer: after two packets of one sender the
    candidates likely are that layout (or it and its index twin, and then ``narrowed``)."""
    shape = srtcp.Shape(list(srtcp.CANDIDATES))
    for i in range(count):
        plain = v.sr(h.SSRC_A, blocks=tuple(range(reports))) + v.sdes(h.SSRC_A)
        shape.observe(protect(plain, layout, first + i))
    if layout in TWINS:
        assert set(shape.likely()) == TWINS
        assert shape.narrowed()
        assert shape.settled() is None
    else:
        assert shape.settled() == layout


def test_an_odd_packet_does_not_empty_the_candidates() -> None:
    shape = srtcp.Shape(list(srtcp.CANDIDATES))
    layout = SrtcpLayout(10, 2)
    for i in (5, 6):
        shape.observe(protect(h.benign(1), layout, i))
    shape.observe(b"\x80\xc8\x00\x01" + bytes(40))  # no candidate's index climbs here
    assert shape.settled() == layout


@given(st.binary(max_size=300))
def test_any_bytes_are_judged_without_crashing(data: bytes) -> None:
    shape = srtcp.Shape(list(srtcp.CANDIDATES))
    shape.observe(data)
    for a in srtcp.judge_unsettled(data, shape.alive, narrowed=shape.narrowed()):
        assert a.rule in ("voip-srtcp-length", "voip-srtcp-ambiguous", "voip-rtcp-oversize")


# ---- DTLS-SRTP ----------------------------------------------------------------------------
@pytest.mark.parametrize(("profile", "mki"), [(0x0001, 0), (0x0007, 4), (0x0008, 2)])
def test_server_hello_profile(profile: int, mki: int) -> None:
    hello = h.server_hello(profile, mki)
    assert dtls.srtp_profile(hello) == (profile, mki)
    assert dtls.srtp_profile(b"\x14\xfe\xfd" + bytes(8) + b"\x00\x01\x01" + hello) == (
        profile,
        mki,
    )  # after a ChangeCipherSpec record in the same datagram
    assert dtls.srtp_profile(hello[:-3]) is None
    assert rtcp.layout_from_dtls_profile(profile, mki) is not None


@given(st.binary(max_size=200))
def test_any_bytes_give_a_profile_or_none(data: bytes) -> None:
    out = dtls.srtp_profile(data)
    assert out is None or (0 <= out[0] <= 0xFFFF and 0 <= out[1] <= 255)
    out = dtls.srtp_profile(h.server_hello(7, 1)[:13] + data)
    assert out is None or isinstance(out[0], int)


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed (apt-get install tshark)")
def test_tshark_reads_the_same_profile(tmp_path: Path) -> None:
    cap = Capture()
    for i, (profile, mki) in enumerate([(0x0007, 4), (0x0001, 0), (0x0008, 2)]):
        cap.udp(
            1.0 + i, "192.0.2.1", 40000 + i, "192.0.2.2", 50000 + i, h.server_hello(profile, mki)
        )
    path = tmp_path / "dtls.pcap"
    path.write_bytes(cap.pcap())
    fields = ("dtls.use_srtp.protection_profile", "dtls.use_srtp.mki_length")
    cmd = [TSHARK or "tshark", "-r", str(path), "-d", "udp.port==40000-40002,dtls"]
    cmd += ["-T", "fields", *(arg for f in fields for arg in ("-e", f))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    theirs = [tuple(int(x, 0) for x in line.split("\t")) for line in proc.stdout.splitlines()]
    assert theirs == [(7, 4), (1, 0), (8, 2)]


# ---- the TCP kind sniffer -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (b"INVITE sip:bob@biloxi.example SIP/2.0\r\n", demux.TCP_SIP),
        (b"\r\n\r\nSIP/2.0 200 OK\r\n", demux.TCP_SIP),
        (h.rfc4571([h.benign(1)]), demux.TCP_RFC4571),
        (h.rfc4571([v.rtp(1, 0, 5)]), demux.TCP_RFC4571),
        (h.allocate(False), demux.TCP_TURN),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", demux.TCP_OTHER),
        (b"GET / HTTP/1.1\r\nHost: x\r\n", demux.TCP_OTHER),
    ],
)
def test_sniffed_whatever_the_cut(first: bytes, kind: str) -> None:
    for cut in range(1, len(first)):
        kinds = demux.TcpKinds()
        key = ("a", 1, "b", 2)
        got, held = kinds.feed(key, first[:cut], turn_port=False)
        if got is None:
            got, held = kinds.feed(key, first[cut:], turn_port=False)
            assert got is None or held == first
        assert got in (kind, None)
    assert demux.sniff_tcp(first, turn_port=False) == kind
