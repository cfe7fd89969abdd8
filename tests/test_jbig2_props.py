"""Property tests: the JBIG2 walker on random and mutated input raises only SpywallError."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.detectors import jbig2_refinement_flood, jbig2_symbol_overflow
from spywall.errors import SpywallError
from spywall.formats import jbig2
from spywall.formats.base import ParseContext
from spywall.limits import Budget, Limits
from spywall.samples import pdf_jbig2 as s

SEEDS = [
    s.jbig2_file([*s.benign_segments(), *s.trailer(4)]),
    s.jbig2_file(s.short_form_segments()),
    s.jbig2_file([*s.benign_segments(), *s.refinement_flood(20), *s.trailer(40)],
                 sequential=False),
    s.join([s.segment(300, 0, s.symbol_dict(9, flags=0x1002)),
            s.segment(70000, 7, s.text_region(), [300, 300], page4=True)]),
]
LIMITS = Limits(max_elements=200_000, seconds=5)


def run(data: bytes, embedded: bool) -> None:
    fn = jbig2.parse_embedded if embedded else jbig2.parse
    t0 = time.monotonic()
    try:
        parsed = fn(data, ParseContext(Budget(LIMITS)))
    except SpywallError:
        return
    list(jbig2_symbol_overflow.detect(parsed))
    list(jbig2_refinement_flood.detect(parsed))
    assert time.monotonic() - t0 < 120  # a hang guard, not a speed test


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        op = draw(st.sampled_from(["flip", "cut", "insert", "u32"]))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(max_size=16))
        else:
            data[pos : pos + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\xe0\x00\xff\xff",
                                                        b"\x00\x01\x00\x01"]))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512), st.booleans())
def test_random_input(data: bytes, embedded: bool) -> None:
    run(data if embedded else s.MAGIC + data, embedded)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_mutated_samples(data: bytes, embedded: bool) -> None:
    run(data, embedded)
