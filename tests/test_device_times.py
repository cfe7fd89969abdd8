"""The column conversions of Apple-epoch times (``device.base.iso_apple_times``,
``device.timeline.mvt_apple_times``) against the per-value Python function
``iso_apple`` (and ``mvt_time`` of it) as the oracle, with and without the compiled
helper ``device._times``; the helper's dates and times also against ``datetime``."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.device import base, timeline
from spywall.device.base import iso_apple, iso_apple_times
from spywall.device.timeline import mvt_apple_times, mvt_time

try:
    from spywall.device import _times
except ImportError:  # pragma: no cover - a build without a C compiler
    _times = None  # type: ignore[assignment]

compiled = pytest.mark.skipif(_times is None, reason="the compiled time conversion "
                              "(device._times) is not built (no C compiler)")

EPOCH = 978_307_200
LOW, HIGH = 631_152_000 - EPOCH, 4_102_444_800 - EPOCH  # the 1990..2100 bounds, Apple time


def _want(values: list[object]) -> list[str | None]:
    return [iso_apple(v) for v in values]  # type: ignore[arg-type]


def _want_mvt(values: list[object]) -> list[str | None]:
    return [mvt_time(t) if (t := iso_apple(v)) else None  # type: ignore[arg-type]
            for v in values]


def _column(values: list[object], mvt: bool = False) -> list[str | None]:
    return _times.iso_apple_column(values, timeline._mvt_apple if mvt else iso_apple, mvt)


class _Int(int):
    pass


class _Float(float):
    pass


_EDGES: list[object] = [
    None, 0, 0.0, -0.0, True, False, 1, -1, "", "700000000", b"\x00", [], _Int(700_000_000),
    _Float(7e8), math.nan, -math.nan, math.inf, -math.inf, 1e12, -1e12, 1e12 + 1, 1e20,
    1e20 + 2**20, -1e20, 1e21, 10**12, 10**12 + 1, -(10**12), -(10**12) - 1, 10**20,
    10**20 + 1, -(10**20) - 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30,
    LOW, LOW - 1, HIGH, HIGH + 1, float(LOW), LOW - 0.5, float(HIGH), HIGH + 1e-6,
    HIGH - 1e-7, HIGH - 0.4999995, LOW * 10**9, LOW * 10**9 - 1, HIGH * 10**9,
    HIGH * 10**9 + 1, HIGH * 10**9 + 999, HIGH * 10**9 + 1000, float(HIGH) * 1e9,
    700_000_000, 700_000_000.5, 700_000_000.0000005, 700_000_000.0000015,
    700_000_000.0000025, 700_000_000.9999995, 700_000_000.9999996, 700_000_000.9999994,
    700_000_000 * 10**9 + 999_999_999, -700_000_000 * 10**9 - 1, -300_000_000,
    -300_000_000.25, -300_000_000 * 10**9 - 1, 5e-324, -5e-324, 2.5e-7, 1e15 + 0.5,
    7e17, 1.7e18, 9.2e18, 1e19, 9_223_372_036_854_775_807, 951_782_400 - EPOCH,
    951_868_799.999 - EPOCH,
    # the microsecond ties (odd n/128 of a second): to even, down and up
    700_000_000 + 1 / 128, 700_000_000 + 3 / 128, 700_000_000 + 127 / 128,
    HIGH - 1 / 128, LOW + 5 / 128, (700_000_000 + 1 / 128) * 1e9,
]


@compiled
def test_edge_values_as_iso_apple() -> None:
    assert _column(_EDGES) == _want(_EDGES)
    assert _column(_EDGES, mvt=True) == _want_mvt(_EDGES)
    assert _column(tuple(_EDGES)) == _want(_EDGES)  # type: ignore[arg-type]
    assert _column([]) == []


@compiled
@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=LOW - 10, max_value=HIGH + 10),
    st.integers(min_value=-(2**63) - 2, max_value=2**63 + 2),
    st.integers(min_value=(LOW - 10) * 10**9, max_value=(HIGH + 10) * 10**9),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=LOW - 10, max_value=HIGH + 10),
    st.floats(min_value=(LOW - 10) * 1e9, max_value=(HIGH + 10) * 1e9),
    # whole seconds plus a fraction close to a half microsecond, and n/128: in 1990..2100
    # (2**29 .. 2**32 unix seconds) the only fractions whose microseconds are a tie
    st.builds(lambda s, k, e: s + (k + 0.5) / 1e6 + e,
              st.integers(min_value=LOW, max_value=HIGH), st.integers(0, 999_999),
              st.sampled_from([0.0, 1e-9, -1e-9, 1e-12, -1e-12])),
    st.builds(lambda s, k: s + k / 128, st.integers(min_value=LOW - 1, max_value=HIGH),
              st.integers(0, 127)),
    st.none(), st.booleans(), st.text(max_size=3), st.binary(max_size=3)), max_size=40))
def test_column_is_iso_apple(values: list[object]) -> None:
    assert _column(values) == _want(values)
    assert _column(values, mvt=True) == _want_mvt(values)


@compiled
def test_every_day_and_second_as_datetime() -> None:
    """Each day of 1990..2100 at a time of day that moves (every second is met), and the
    first and last seconds, as ``datetime`` writes them."""
    days = range((631_152_000 - EPOCH) // 86_400, (4_102_444_800 - EPOCH) // 86_400 + 1)
    values: list[object] = [d * 86_400 + (d * 7_919) % 86_400 for d in days]
    values = [v for v in values if LOW <= v <= HIGH and v] + [LOW, HIGH]  # type: ignore[operator]
    start = datetime(2001, 1, 1, tzinfo=UTC)
    want = [(start + timedelta(seconds=v)).strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[arg-type]
            for v in values]
    assert _column(values) == want
    assert _column(values, mvt=True) == [w[:10] + " " + w[11:19] + ".000000" for w in want]


@compiled
def test_fractions_as_datetime() -> None:
    values = [700_000_000.25, 700_000_000 * 10**9 + 123_456_789, 1e8 + 0.000001,
              -3e8 - 0.75]
    start = datetime(2001, 1, 1, tzinfo=UTC)
    want = [start + timedelta(seconds=700_000_000.25),
            start + timedelta(seconds=700_000_000, microseconds=123_456),
            start + timedelta(seconds=100_000_000, microseconds=1),
            start - timedelta(seconds=300_000_000.75)]
    assert _column(values) == [w.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for w in want]


@compiled
def test_bounds_are_those_of_base() -> None:
    assert (_times.APPLE_EPOCH, _times.TS_MIN, _times.TS_MAX) == (
        base.APPLE_EPOCH, base._TS_MIN, base._TS_MAX)


@compiled
def test_the_fallback_is_called_for_other_values_only() -> None:
    seen: list[object] = []

    def fallback(v: object) -> str:
        seen.append(v)
        return "other"

    values: list[object] = [None, 0, 7e8, 7 * 10**17, 10**30, True, "x", _Int(1)]
    got = _times.iso_apple_column(values, fallback)
    assert seen == [10**30, True, "x", 1]
    assert got == [None, None, iso_apple(7e8), iso_apple(7 * 10**17), "other", "other",
                   "other", "other"]


@pytest.mark.parametrize("built", [True, False])
def test_the_public_columns_with_and_without_the_helper(
        built: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if built and _times is None:
        pytest.skip("the compiled time conversion (device._times) is not built")
    if not built:
        monkeypatch.setattr(base, "_times", None)
        monkeypatch.setattr(timeline, "_times", None)
    values = _EDGES + [LOW + i * 997.37 for i in range(500)]
    assert iso_apple_times(values) == _want(values)
    assert mvt_apple_times(values) == _want_mvt(values)
    assert mvt_apple_times((0, None, 0)) == [None, None, None]


class _Str(str):
    pass


def _shaped(width: int, dot: bool = True) -> st.SearchStrategy[str]:
    """Text of ``width`` letters (any, wide ones too) with ``T`` at 10, ``Z`` last and,
    27 long, ``.`` at 19 (with ``dot``): what ``mvt_time`` takes for one of the two ISO
    forms (without ``dot``, most often not)."""
    def place(chars: list[str]) -> str:
        chars[10], chars[width - 1] = "T", "Z"
        if width == 27 and dot:
            chars[19] = "."
        return "".join(chars)
    return st.lists(st.characters(codec=None, exclude_categories=("Cs",)) | st.sampled_from(
        "0123456789-:.TZ"), min_size=width, max_size=width).map(place)


_STAMPS = st.one_of(st.none(), st.just(""), _shaped(20), _shaped(27), _shaped(27, dot=False),
                    st.text(max_size=30),
                    st.sampled_from(["2023-06-01T06:13:20Z", "2023-06-01T06:13:20.123456Z",
                                     "2023-06-01T06:13:20é", "2023-06-01T06:13:20.12345€Z",
                                     "2023-06-01T06:13:20.123456+00:00",
                                     "2024-01-13T21:14:52"]),
                    st.builds(_Str, _shaped(20)))


@settings(max_examples=500, deadline=None)
@given(st.lists(_STAMPS, max_size=40))
def test_mvt_times_with_and_without_the_helper(stamps: list[str | None]) -> None:
    want = [mvt_time(t) if t else t for t in stamps]
    assert timeline._mvt_passes(stamps) == want
    assert timeline.mvt_times(stamps) == want
    if _times is not None:
        got = _times.mvt_column(stamps, mvt_time)
        assert got == want
        assert all(type(g) is str for g in got if g is not None)
        assert _times.mvt_column(tuple(stamps), mvt_time) == want  # type: ignore[arg-type]
