"""Property tests: the PDF container and the filter decoders raise only SpywallError."""

from __future__ import annotations

import contextlib
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.engine import scan_bytes
from spywall.errors import SpywallError
from spywall.formats import pdf
from spywall.formats.base import ParseContext
from spywall.formats.pdf_filters import ALIASES, DECODERS, decode_chain
from spywall.limits import Budget, Limits, MiB
from spywall.samples import pdf_jbig2 as s

SEEDS = [
    s.jbig2_pdf(s.join(s.benign_segments()), ["FlateDecode"], objstm=True),
    s.jbig2_pdf(s.join(s.benign_segments()[1:]), ["ASCII85Decode"],
                s.join(s.benign_segments(0)[:1])),
    s.pillow_pdf(),
    s.text_pdf(),
]
LIMITS = Limits(max_total_decompressed=8 * MiB, max_stream_bytes=4 * MiB, seconds=5)
FILTERS = sorted(DECODERS) + sorted(ALIASES)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "cut", "insert", "token"]))
        if op == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[max(pos, 8):]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(max_size=16))
        else:
            data[pos:pos] = draw(st.sampled_from([b" /Filter /LZWDecode ", b" 99999 0 R ",
                                                  b"/Length 0", b"<<", b"]", b" /ObjStm "]))
    return bytes(data)


def drain(data: bytes) -> None:
    t0 = time.monotonic()
    try:
        parsed = pdf.parse(data, ParseContext(Budget(LIMITS)))
        for _ in parsed.children:
            pass
    except SpywallError:
        pass
    scan_bytes(data, "x.pdf", LIMITS)
    assert time.monotonic() - t0 < 120  # a hang guard, not a speed test


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_pdfs(data: bytes) -> None:
    drain(data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_pdf_bodies(data: bytes) -> None:
    drain(b"%PDF-1.7\n" + data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.sampled_from(FILTERS), min_size=1, max_size=3),
       st.dictionaries(st.sampled_from(["Predictor", "Colors", "Columns", "BitsPerComponent",
                                        "EarlyChange"]), st.integers(-3, 20)))
def test_filters_on_random_data(data: bytes, names: list[str], params: dict[str, int]) -> None:
    with contextlib.suppress(SpywallError):
        decode_chain(data, [(n, params) for n in names], Budget(LIMITS))
