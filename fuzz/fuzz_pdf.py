"""Fuzz the PDF container (pikepdf boundary, stream selection, capped filter decoders)."""

import sys

import atheris

with atheris.instrument_imports():
    from spywall.engine import scan_bytes
    from spywall.limits import Limits

LIMITS = Limits(max_total_decompressed=8 << 20, max_stream_bytes=4 << 20, seconds=5)
HEADER = b"%PDF-1.7\n"


def TestOneInput(data: bytes) -> None:
    if HEADER[:5] not in data[:64]:
        data = HEADER + data
    scan_bytes(data, "fuzz.pdf", LIMITS)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
