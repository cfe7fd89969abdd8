"""Property tests: random and mutated TIFF/DNG and JPEG headers raise only SpywallError."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.errors import SpywallError
from spywall.formats import ljpeg
from spywall.formats import tiff as t
from spywall.formats.base import ParseContext
from spywall.limits import Budget, Limits
from spywall.samples import tiff_dng as s

SEEDS = [
    s.dng_with([s.ljpeg(16, 4, 2), s.ljpeg(16, 4, 1)], rows=4),
    s.dng_with([s.ljpeg(8, 8, 2), s.ljpeg(8, 8, 2)], spp=1, tile=(16, 8), size=(16, 16),
               little=False, nested=True),
    s.dng_with([s.ljpeg(8, 8, 2)], spp=1,
               extra={s.OPCODE_LIST2: (s.UNDEFINED, s.opcode_list(3, 1))}),
]
HEADERS = [b"II*\x00", b"MM\x00*", b"II+\x00\x08\x00\x00\x00", b"MM\x00+\x00\x08\x00\x00"]
LIMITS = Limits(max_elements=50_000, seconds=5)


def _parse(data: bytes) -> None:
    started = time.monotonic()
    try:
        parsed = t.parse(data, ParseContext(Budget(LIMITS)))
    except SpywallError:
        return
    finally:
        assert time.monotonic() - started < 120  # a hang guard, not a speed test
    assert parsed.logical_end is not None
    assert 0 < parsed.logical_end <= len(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HEADERS), st.binary(max_size=600))
def test_random_tiff(header: bytes, body: bytes) -> None:
    _parse(header + body)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                        min_size=1, max_size=12), st.integers(0, 10_000))
def test_mutated_dng(seed: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed)
    for pos, value in edits:
        data[pos % len(data)] = value
    _parse(bytes(data[: max(8, len(data) - cut % 64)]))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"", b"\xff\xd8", b"\xff\xd8\xff\xc3"]))
def test_random_ljpeg(body: bytes, prefix: bytes) -> None:
    data = prefix + body
    try:
        sof = ljpeg.read_sof(data, 0, len(data))
    except SpywallError:
        return
    assert sof is None or 0 <= sof.offset < len(data)
