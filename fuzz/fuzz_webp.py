"""Fuzz the WebP container walker, the VP8L reader and the webp-huffman-overflow detector."""

import sys

import atheris

with atheris.instrument_imports():
    from spywall.detectors import webp_huffman
    from spywall.errors import SpywallError
    from spywall.formats import vp8l, webp
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget, Limits
    from spywall.samples.webp import anmf, chunk, riff, vp8x

LIMITS = Limits(max_elements=200_000, seconds=5)


def _wrap(mode: int, body: bytes) -> bytes:
    if mode == 0:
        return body
    if mode == 1:
        return riff(chunk(b"VP8L", b"\x2f" + body))
    if mode == 2:
        return riff(vp8x(16, 16, 0x10), chunk(b"ALPH", b"\x01" + body), chunk(b"VP8 ", b""))
    return riff(vp8x(16, 16, 0x02), anmf(16, 16, chunk(b"VP8L", b"\x2f" + body)))


def TestOneInput(data: bytes) -> None:
    if len(data) < 3:
        return
    ctx = ParseContext(Budget(LIMITS))
    vp8l.read_stream(data, 2, len(data), ctx, "ALPH", None, (data[0] + 1, data[1] + 1))
    try:
        parsed = webp.parse(_wrap(data[0] % 4, data[1:]), ParseContext(Budget(LIMITS)))
    except SpywallError:
        return
    list(webp_huffman.DETECTOR.detect(parsed))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
