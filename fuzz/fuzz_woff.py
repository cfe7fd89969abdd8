"""Fuzz the WOFF and WOFF2 unpackers (header, directory, zlib/Brotli, glyf/loca rebuild)."""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from spywall.errors import SpywallError
    from spywall.formats import woff
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget, Limits

LIMITS = Limits(max_total_decompressed=8 << 20, max_stream_bytes=4 << 20, seconds=5)


def TestOneInput(data: bytes) -> None:
    # Both signatures, whatever the fuzzer put first: the rest of the input is the font.
    for magic in (woff.WOFF, woff.WOFF2):
        with contextlib.suppress(SpywallError):
            parsed = woff.parse(magic + data[4:], ParseContext(Budget(LIMITS)))
            for _ in parsed.children:
                pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
