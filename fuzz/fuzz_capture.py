"""Fuzz the capture reader and the whole pcap pipeline (decoding, reassembly, DNS, TLS,
the VoIP analyzer when present) on one pcap or pcapng file."""

import io
import struct
import sys

import atheris

with atheris.instrument_imports():
    from spywall.errors import SpywallError
    from spywall.net.capture import CaptureReader, sniff
    from spywall.net.decode import LINKS
    from spywall.net.pipeline import Pipeline, voip_analyzer

ANALYZER = voip_analyzer()
LINKTYPES = sorted(LINKS)


def TestOneInput(data: bytes) -> None:
    if data and sniff(data) is None:   # give other seeds a pcap header so records get read
        linktype = LINKTYPES[data[0] % len(LINKTYPES)]
        data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype) + data[1:]
    try:
        for _ in CaptureReader(io.BytesIO(data), lambda f, c, m: None):
            pass
    except SpywallError:
        pass
    Pipeline("fuzz", None, ANALYZER).run(io.BytesIO(data))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
