"""Fuzz the VoIP decoders (RTP, RTCP, SRTCP, STUN, ChannelData, SIP, SDP) and the analyzer."""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from spywall.errors import SpywallError
    from spywall.net.packet import Datagram
    from spywall.net.voip import rtcp, rtp, sdp, sip, stun
    from spywall.net.voip.analyzer import VoipAnalyzer

DECODERS = (rtp.check_rtp, rtcp.check_rtcp, rtcp.check_srtcp, stun.parse_stun,
            stun.check_channel_data, sip.parse_sip, sdp.parse_sdp)
PORTS = (5060, 3478, 40000, 40001)


def TestOneInput(data: bytes) -> None:
    for fn in DECODERS:
        with contextlib.suppress(SpywallError):
            fn(data)
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
