"""Fuzz the sfnt/ttc parser, the TrueType bytecode decoder and the truetype-adjust detector."""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from spywall.detectors.truetype_adjust import detect
    from spywall.errors import SpywallError
    from spywall.formats import truetype, tt_bytecode
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget, Limits

LIMITS = Limits(max_total_decompressed=8 << 20, max_stream_bytes=4 << 20, seconds=5)


def TestOneInput(data: bytes) -> None:
    tt_bytecode.decode(data, 1, len(data) - 1)
    with contextlib.suppress(SpywallError):
        list(detect(truetype.parse(data, ParseContext(Budget(LIMITS)))))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
