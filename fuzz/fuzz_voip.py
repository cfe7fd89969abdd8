"""Fuzz the VoIP decoders (RTP, RTCP, SRTCP in every trailer layout, STUN, ChannelData, SIP,
SDP, the DTLS ServerHello's use_srtp), the SRTCP trailer told from packets, the TCP kind
sniffer and media framing over TCP, and the analyzer on UDP and on TCP streams that sniff
as SIP, RFC 4571 media or TURN over TCP (restarted now and then)."""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from spywall.errors import SpywallError
    from spywall.net.packet import Datagram
    from spywall.net.voip import demux, dtls, rtcp, rtp, sdp, sip, srtcp, stun
    from spywall.net.voip.analyzer import VoipAnalyzer

DECODERS = (rtp.check_rtp, rtcp.check_rtcp, rtcp.check_srtcp, stun.parse_stun,
            stun.check_channel_data, sip.parse_sip, sdp.parse_sdp)
PORTS = (5060, 3478, 40000, 40001)
TCP_HEADS = (b"", b"\x00\x10\x80\xc8", b"\x00\x01\x00\x00\x21\x12\xa4\x42",
             b"\x40\x01\x00\x08", b"INVITE sip:a@b SIP/2.0\r\n")
"""Prefixes that make a stream sniff as nothing, RFC 4571, TURN (STUN), ChannelData (on
the TURN port) and SIP, so the framed paths get the fuzzer's bytes."""
LAYOUTS = (rtcp.SrtcpLayout(10), rtcp.SrtcpLayout(10, 4), rtcp.SrtcpLayout(16, 0, True),
           rtcp.SrtcpLayout(16, 2, True))


def TestOneInput(data: bytes) -> None:
    for fn in DECODERS:
        with contextlib.suppress(SpywallError):
            fn(data)
    for layout in LAYOUTS:
        rtcp.check_srtcp(data, layout)
    rtcp.layout_from_crypto(data.decode("latin-1"))
    dtls.srtp_profile(data)
    demux.looks_like_channel_data(data)
    demux.sniff_tcp(data, turn_port=True)
    shape = srtcp.Shape(list(srtcp.CANDIDATES))
    for chunk in data.split(b"\xff\xfc")[:8]:
        shape.observe(chunk)
        srtcp.judge_unsettled(chunk, shape.likely(), narrowed=shape.narrowed())
        layout = shape.settled()
        if layout is not None:
            srtcp.judge(chunk, layout, "shape")
    framer = demux.TcpMediaFramer()
    for turn in (False, True):
        for chunk in data.split(b"\xff\xfd")[:8]:
            framer.feed(("a", 1, "b", int(turn)), chunk, turn=turn)
    an = VoipAnalyzer(None, "fuzz")
    head = TCP_HEADS[data[0] % len(TCP_HEADS)] if data else b""
    for i, chunk in enumerate(data.split(b"\xff\xfe")[:16], 1):
        port = PORTS[i % len(PORTS)]
        d = Datagram(i, float(i), "192.0.2.1", "192.0.2.2", port, port, "udp", chunk)
        an.udp(d)
        d.transport = "tcp"
        an.tcp(d)
        stream = Datagram(i, float(i), "192.0.2.3", "192.0.2.4", 40000, 3478, "tcp",
                          (head if i == 1 else b"") + chunk, start=i == 1 or chunk[:1] == b"S")
        an.tcp(stream)
        an.problems.clear()
    an.finish()


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
