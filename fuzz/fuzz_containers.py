"""Fuzz the whole scan engine (sniffing, zip, JPEG, PNG, appended data, every format)."""

import sys

import atheris

with atheris.instrument_imports():
    from spywall.engine import scan_bytes
    from spywall.limits import Limits

LIMITS = Limits(max_total_decompressed=8 << 20, max_stream_bytes=4 << 20, seconds=5)


def TestOneInput(data: bytes) -> None:
    scan_bytes(data, "fuzz", LIMITS)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
