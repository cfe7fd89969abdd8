"""Fuzz the VoIP decoders (RTP, RTCP, SRTCP in every trailer layout, STUN, ChannelData, SIP,
SDP), media framing over TCP and the analyzer."""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from spywall.errors import SpywallError
    from spywall.net.packet import Datagram
    from spywall.net.voip import demux, rtcp, rtp, sdp, sip, stun
    from spywall.net.voip.analyzer import VoipAnalyzer

DECODERS = (rtp.check_rtp, rtcp.check_rtcp, rtcp.check_srtcp, stun.parse_stun,
            stun.check_channel_data, sip.parse_sip, sdp.parse_sdp)
PORTS = (5060, 3478, 40000, 40001)
LAYOUTS = (rtcp.SrtcpLayout(10), rtcp.SrtcpLayout(10, 4), rtcp.SrtcpLayout(16, 0, True),
           rtcp.SrtcpLayout(16, 2, True))


def TestOneInput(data: bytes) -> None:
    for fn in DECODERS:
        with contextlib.suppress(SpywallError):
            fn(data)
    for layout in LAYOUTS:
        rtcp.check_srtcp(data, layout)
    rtcp.layout_from_crypto(data.decode("latin-1"))
    framer = demux.TcpMediaFramer()
    for turn in (False, True):
        for chunk in data.split(b"\xff\xfd")[:8]:
            framer.feed(("a", 1, "b", int(turn)), chunk, turn=turn)
    an = VoipAnalyzer(None, "fuzz")
    for i, chunk in enumerate(data.split(b"\xff\xfe")[:16], 1):
        port = PORTS[i % len(PORTS)]
        d = Datagram(i, float(i), "192.0.2.1", "192.0.2.2", port, port, "udp", chunk)
        an.udp(d)
        d.transport = "tcp"
        an.tcp(d)
    an.finish()


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
