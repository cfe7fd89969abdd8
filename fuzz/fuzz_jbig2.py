"""Fuzz the JBIG2 segment walker (standalone and embedded, every retention-byte reading of
long-form headers) and its two detectors."""

import sys

import atheris

with atheris.instrument_imports():
    from spywall.detectors import jbig2_refinement_flood, jbig2_symbol_overflow
    from spywall.errors import SpywallError
    from spywall.formats import jbig2
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget, Limits

LIMITS = Limits(max_elements=500_000, seconds=5)


def TestOneInput(data: bytes) -> None:
    embedded = not data.startswith(jbig2.MAGIC)
    fn = jbig2.parse_embedded if embedded else jbig2.parse
    try:
        parsed = fn(data, ParseContext(Budget(LIMITS)))
    except SpywallError:
        return
    list(jbig2_symbol_overflow.detect(parsed))
    list(jbig2_refinement_flood.detect(parsed))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
