"""Property tests: random and mutated GIFs raise only SpywallError, quickly."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.detectors import gif_frame_resize, gif_zero_area_frame
from spywall.errors import SpywallError
from spywall.formats import gif as g
from spywall.formats.base import ParseContext
from spywall.limits import Budget, Limits
from spywall.samples import gif as s

SEEDS = [sample.data for sample in s.samples()][:6]
LIMITS = Limits(max_elements=50_000, seconds=5)


def _parse(data: bytes) -> None:
    started = time.monotonic()
    try:
        parsed = g.parse(data, ParseContext(Budget(LIMITS)))
    except SpywallError:
        return
    finally:
        assert time.monotonic() - started < 120  # a hang guard, not a speed test
    assert parsed.logical_end is None or 13 <= parsed.logical_end <= len(data)
    for det in (gif_frame_resize, gif_zero_area_frame):
        for hit in det.DETECTOR.detect(parsed):
            assert hit.offset is not None
            assert 0 <= hit.offset < len(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([b"GIF87a", b"GIF89a"]), st.binary(max_size=400))
def test_random_gif(header: bytes, body: bytes) -> None:
    _parse(header + body)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                        min_size=1, max_size=10), st.integers(0, 200))
def test_mutated_gif(seed: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed)
    for pos, value in edits:
        data[6 + pos % (len(data) - 6)] = value
    _parse(bytes(data[: max(6, len(data) - cut)]))
