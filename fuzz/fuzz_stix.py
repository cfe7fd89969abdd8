"""Fuzz the STIX bundle loader and the pattern parser (fast path and stix2-patterns)."""

import sys

import atheris

with atheris.instrument_imports():
    from spywall.errors import SpywallError
    from spywall.iocs import IocIndex
    from spywall.iocs.stix import comparisons, load_bundle


def TestOneInput(data: bytes) -> None:
    try:
        loaded = load_bundle(data, "fuzz", "fuzz")
    except SpywallError:
        loaded = None
    if loaded is not None:
        index = IocIndex()
        index.add(loaded.indicators)
        for ind in loaded.indicators[:20]:
            index.match(ind.kind, ind.value)
    if not data.startswith(b"["):  # keep runs quick: ANTLR is slow on long garbage
        return
    text = data[:300].decode("utf-8", "replace")
    try:
        comparisons(text)
    except SpywallError:
        return


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
