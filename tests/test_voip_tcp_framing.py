"""RTP/RTCP over TCP (RFC 4571) and TURN over TCP (ChannelData, STUN): ``TcpMediaFramer``.

A stream of packets cut at random places must come back packet by packet; the crafted
RTCP of the CVE-2019-3568 shape inside it is then flagged by ``rtcp.check_rtcp``.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.net.voip import demux, rtcp

GOOD_RTCP = struct.pack("!BBHI", 0x80, 201, 1, 0x1234)  # an empty RR
BAD_RTCP = struct.pack("!BBHI", 0x81, 200, 40, 0x1234) + bytes(20)  # length past the end
RTP = struct.pack("!BBHII", 0x80, 0, 1, 160, 0x1234) + bytes(20)
ODD_RTP = RTP[:12] + b"xyz"  # 15 bytes: ChannelData pads it over TCP
STUN = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, b"transaction1")


def channel_data(p: bytes) -> bytes:
    return struct.pack("!HH", 0x4001, len(p)) + p + bytes(-len(p) % 4)


def cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]


PACKETS = st.lists(st.sampled_from([GOOD_RTCP, BAD_RTCP, RTP, ODD_RTP]), min_size=1,
                   max_size=8)


@settings(max_examples=80, deadline=None)
@given(PACKETS, st.lists(st.integers(0, 4096), max_size=10), st.booleans())
def test_packets_come_back_whole(packets: list[bytes], cuts: list[int], turn: bool) -> None:
    if turn:
        stream = STUN + b"".join(channel_data(p) for p in packets)
    else:
        stream = b"".join(struct.pack("!H", len(p)) + p for p in packets)
    framer = demux.TcpMediaFramer()
    got: list[bytes] = []
    for chunk in cut(stream, cuts):
        frames, problems = framer.feed(("a", 1, "b", 2), chunk, turn=turn)
        assert not problems
        got += frames
    if turn:
        assert got[0] == STUN
        got = [f[4 : 4 + int.from_bytes(f[2:4], "big")] for f in got[1:]]
    assert got == packets
    flagged = [p for p in got if demux.classify(p) == demux.RTCP and rtcp.check_rtcp(p)]
    assert flagged == [p for p in packets if p == BAD_RTCP]


def test_garbage_ends_turn_framing_and_streams_are_bounded() -> None:
    framer = demux.TcpMediaFramer()
    frames, problems = framer.feed(("a", 1, "b", 2), b"\xc0\x00\x00\x04abcd", turn=True)
    assert not frames
    assert problems
    assert framer.feed(("a", 1, "b", 2), channel_data(GOOD_RTCP), turn=True) == ([], [])
    for i in range(demux.MAX_TCP_MEDIA_STREAMS + 2):
        _, problems = framer.feed(("c", i, "d", 2), b"\x00\x10ab", turn=False)
        assert bool(problems) == (i >= demux.MAX_TCP_MEDIA_STREAMS)
    assert len(framer.partial) == demux.MAX_TCP_MEDIA_STREAMS
