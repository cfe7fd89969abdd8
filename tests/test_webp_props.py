"""Property tests: hostile WebP/VP8L input raises only SpywallError; valid codes fit libwebp."""

from __future__ import annotations

import contextlib
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.errors import SpywallError
from spywall.formats import huffman_tables as ht
from spywall.formats import vp8l, webp
from spywall.formats.base import ParseContext
from spywall.limits import Budget, Limits
from spywall.samples import webp as sw

SEEDS = [s.data for s in sw.samples() if s.data.startswith(b"RIFF")]
LIMITS = Limits(seconds=5)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse(data: bytes) -> None:
    t = time.perf_counter()
    with contextlib.suppress(SpywallError):
        webp.parse(data, ParseContext(Budget(LIMITS)))
    assert time.perf_counter() - t < 5


@FAST
@given(st.binary(max_size=600))
def test_random_vp8l_payload(body: bytes) -> None:
    _parse(sw.riff(sw.chunk(b"VP8L", b"\x2f" + body)))


@FAST
@given(st.binary(max_size=2000))
def test_random_riff(body: bytes) -> None:
    _parse(b"RIFF" + len(body).to_bytes(4, "little") + b"WEBP" + body)


@FAST
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)),
                                        max_size=12), st.integers(0, 1 << 20))
def test_mutated_samples(seed: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed)
    for pos, val in flips:
        data[pos % len(data)] = val
    _parse(bytes(data))
    _parse(bytes(data[: 12 + cut % len(data)]))


@FAST
@given(st.binary(min_size=1, max_size=400), st.integers(1, 64), st.integers(1, 64))
def test_random_headerless_alpha_stream(body: bytes, w: int, h: int) -> None:
    ctx = ParseContext(Budget(LIMITS))
    s = vp8l.read_stream(body, 0, len(body), ctx, "ALPH", None, (w, h))
    assert s.error or s.images  # either it stopped for a reason, or it reached the codes


@st.composite
def complete_code(draw: st.DrawFn) -> list[int]:
    """Code lengths of a random complete prefix code (split leaves of a binary tree)."""
    alphabet = draw(st.sampled_from((*vp8l.ALPHABETS, 280 + 64, 280 + 2048)))
    leaves = [0]
    target = draw(st.integers(2, min(alphabet, 600)))
    while len(leaves) < target:
        splittable = [i for i, d in enumerate(leaves) if d < ht.MAX_LENGTH]
        if not splittable:
            break
        i = splittable[draw(st.integers(0, len(splittable) - 1))]
        d = leaves.pop(i)
        leaves += [d + 1, d + 1]
    lengths = leaves + [0] * (alphabet - len(leaves))
    return draw(st.permutations(lengths))


def _independent_size(lengths: list[int]) -> int:
    """Root table + one second-level table per 8-bit prefix, as deep as its longest code."""
    deepest: dict[int, int] = {}
    code, prev = 0, 0
    for n, _ in sorted((n, s) for s, n in enumerate(lengths) if n):
        code <<= n - prev
        prev = n
        if n > ht.ROOT_BITS:
            prefix = code >> (n - ht.ROOT_BITS)
            deepest[prefix] = max(deepest.get(prefix, 0), n)
        code += 1
    return 256 + sum(1 << (n - ht.ROOT_BITS) for n in deepest.values())


@settings(max_examples=200, deadline=None)
@given(complete_code())
def test_complete_codes_fit_their_budget(lengths: list[int]) -> None:
    sim = ht.simulate(lengths)
    assert sim.valid
    assert sim.size == _independent_size(lengths)
    alphabet = len(lengths)
    cache_bits = {280 + 64: 6, 280 + 2048: 11}.get(alphabet, 0)
    code = {280: 0, 344: 0, 2328: 0, 256: 1, 40: 4}[alphabet]
    assert sim.size <= vp8l.budget(code, cache_bits)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=16, max_size=16))
def test_any_histogram_simulates(hist: list[int]) -> None:
    sim = ht.simulate_histogram(hist)
    assert sim.size >= 0
    if sim.valid:
        assert sum(hist[1:]) >= 1
