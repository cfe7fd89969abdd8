"""Property tests: random and mutated HEIF/AVIF raise only SpywallError, quickly."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.detectors import heif_mask_extent, heif_multiple_alpha, heif_overlay_alpha_depth
from spywall.errors import SpywallError
from spywall.formats import heif as h
from spywall.formats.base import ParseContext
from spywall.limits import Budget, Limits
from spywall.samples import heif as s

SEEDS = [sample.data for sample in s.samples() if len(sample.data) < 4096]
LIMITS = Limits(max_elements=50_000, seconds=5)
DETECTORS = (heif_mask_extent, heif_multiple_alpha, heif_overlay_alpha_depth)


def _parse(data: bytes) -> None:
    started = time.monotonic()
    try:
        parsed = h.parse(data, ParseContext(Budget(LIMITS)))
    except SpywallError:
        return
    finally:
        assert time.monotonic() - started < 120  # a hang guard, not a speed test
    assert parsed.logical_end is None or 8 <= parsed.logical_end <= len(data)
    for det in DETECTORS:
        list(det.DETECTOR.detect(parsed))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_boxes(body: bytes) -> None:
    _parse(s.box("ftyp", b"heic" + bytes(4) + b"mif1") + body)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                        min_size=1, max_size=10), st.integers(0, 300))
def test_mutated_heif(seed: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed)
    for pos, value in edits:
        data[pos % len(data)] = value
    _parse(bytes(data[: max(8, len(data) - cut)]))
