"""Fuzz the bounded Android Binary XML (ABX) reader and the adb keystore read over it
(the input is taken as the tokens after the ``ABX\\0`` magic when it lacks it)."""

import sys

import atheris

with atheris.instrument_imports():
    from spywall.android import abx
    from spywall.errors import SpywallError


def TestOneInput(data: bytes) -> None:
    blob = data if data.startswith(abx.MAGIC) else abx.MAGIC + data
    try:
        elements, used = abx.read(blob)
    except SpywallError:
        return
    if not 0 < used <= len(blob) or any(not 1 <= e.depth <= abx.MAX_DEPTH
                                        for e in elements):
        raise AssertionError(f"ABX read out of bounds: {used} of {len(blob)}")
    abx.keystore_keys(elements)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
