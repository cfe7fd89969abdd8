"""Fuzz the frame decoder (every link type, IPv4/IPv6, fragments, TCP), DNS and TLS SNI.

The first byte picks the link type; the rest is fed as a series of frames (split on a
two-byte length prefix) to one Decoder so reassembly state carries across them.
"""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from spywall.errors import SpywallError
    from spywall.net import dns, tls
    from spywall.net.decode import LINKS, Decoder

LINKTYPES = sorted(LINKS)


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    linktype = LINKTYPES[data[0] % len(LINKTYPES)]
    dec = Decoder(lambda f, c, m: None, lambda r, m, d: None, lambda *a: None)
    pos, frame = 1, 0
    while pos < len(data) and frame < 64:
        n = int.from_bytes(data[pos:pos + 2], "big") % 2048
        chunk = data[pos + 2:pos + 2 + n]
        pos += 2 + n
        frame += 1
        d = dec.packet(frame, float(frame), linktype, chunk, len(chunk) + (n & 1))
        if d is None:
            continue
        for parse in (dns.parse, tls.client_hello_sni):
            with contextlib.suppress(SpywallError):
                parse(d.payload)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
