"""Fuzz the sfnt/ttc parser, the TrueType bytecode decoder, the jump analysis (within one
program and across calls) and the truetype-adjust and truetype-computed-jump detectors."""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from spywall.detectors import truetype_computed_jump
    from spywall.detectors.truetype_adjust import detect
    from spywall.errors import SpywallError
    from spywall.formats import truetype, tt_bytecode, tt_calls, tt_flow
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget, Limits

LIMITS = Limits(max_total_decompressed=8 << 20, max_stream_bytes=4 << 20, seconds=5)


def TestOneInput(data: bytes) -> None:
    tt_bytecode.decode(data, 1, len(data) - 1)
    tt_flow.analyse(data[:1024], max_steps=4_000)
    # the first bytes as fpgm, the rest as programs that call into it (split at 0xFF)
    tt_calls.analyse_font(data[:2048].split(b"\xff")[:16], max_steps=8_000)
    with contextlib.suppress(SpywallError):
        parsed = truetype.parse(data, ParseContext(Budget(LIMITS)))
        list(detect(parsed))
        list(truetype_computed_jump.detect(parsed))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
