"""Property tests: the sfnt parser, the bytecode decoder and the detector on hostile input."""

from __future__ import annotations

import time
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spywall.detectors.truetype_adjust import detect
from spywall.errors import SpywallError
from spywall.formats import truetype, tt_bytecode
from spywall.formats.base import ParseContext
from spywall.limits import Budget, Limits
from spywall.samples import truetype as ts

SEEDS = [ts.font(ts.Programs(simple=ts.GLYPH_ADJUST)),
         ts.font(ts.Programs(composite=ts.GLYPH_ADJUST), long_loca=True),
         ts.collection(ts.font(), ts.font(ts.Programs(fpgm=ts.FPGM_ADJUST)))]
FAST = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def run(data: bytes) -> None:
    start = time.monotonic()
    try:
        parsed = truetype.parse(data, ParseContext(Budget(Limits(seconds=5))))
        list(detect(parsed))
    except SpywallError:
        pass
    assert time.monotonic() - start < 120  # a hang guard, not a speed test


@FAST
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    run(data)
    run(b"\x00\x01\x00\x00" + data)
    run(b"ttcf\x00\x01\x00\x00" + data)


@FAST
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)),
                                        min_size=1, max_size=12))
def test_mutated_fonts(seed: bytes, edits: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for at, value in edits:
        data[at % len(data)] = value
    run(bytes(data))


@FAST
@given(st.sampled_from(SEEDS), st.integers(0, 2000))
def test_truncated_fonts(seed: bytes, cut: int) -> None:
    run(seed[: max(0, len(seed) - cut)])


# Instructions without inline data (a few real ones; never 0x8F/0x90 or a push).
PLAIN = st.sampled_from([0x00, 0x01, 0x1C, 0x20, 0x21, 0x2B, 0x2C, 0x2D, 0x4B, 0x58, 0x59,
                         0x5D, 0x60, 0x7F, 0x8E, 0x91, 0xC0, 0xE0])


@st.composite
def instruction(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return bytes([draw(PLAIN)])
    if kind in (1, 2):  # NPUSHB / NPUSHW
        n = draw(st.integers(0, 255))
        return bytes([0x40 if kind == 1 else 0x41, n]) + draw(
            st.binary(min_size=n * kind, max_size=n * kind))
    k = draw(st.integers(1, 8))  # PUSHB / PUSHW
    width = 1 if kind == 3 else 2
    op = (0xB0 if kind == 3 else 0xB8) + k - 1
    return bytes([op]) + draw(st.binary(min_size=k * width, max_size=k * width))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(instruction(), st.sampled_from([None, 0x8F, 0x90])), max_size=40),
       st.integers(0, 6))
def test_decoder_finds_exactly_the_adjust_instructions(
        prog: list[tuple[bytes, int | None]], max_hits: int) -> None:
    """Instructions (pushes carry random data, 0x8F/0x90 included), some followed by an
    ADJUST: the decoder finds exactly those, records the first ``max_hits`` and counts all."""
    code, expected = b"junk", []
    for ins, adjust in prog:
        code += ins
        if adjust is not None:
            expected.append((len(code), adjust))
            code += bytes([adjust])
    dec = tt_bytecode.decode(code, 4, max_hits=max_hits)
    assert dec.total == len(expected)
    assert list(dec.hits) == expected[:max_hits]
    assert dec.truncated is None
    assert dec.steps <= len(prog) + min(len(expected), max_hits) + 1


def reference_decode(data: bytes, start: int, end: int, max_hits: int
                     ) -> tuple[list[tuple[int, int]], int, int | None]:
    """The decoder's specification, one byte at a time: (hits, total, truncated)."""
    hits: list[tuple[int, int]] = []
    total, pos = 0, start
    while pos < end:
        op = data[pos]
        if op in (0x40, 0x41):  # NPUSHB / NPUSHW: a count byte, then n bytes or words
            if pos + 1 >= end:
                return hits, total, pos
            size = 2 + data[pos + 1] * (op - 0x3F)
        elif 0xB0 <= op <= 0xB7:  # PUSHB[k]: k + 1 bytes
            size = 1 + op - 0xAF
        elif 0xB8 <= op <= 0xBF:  # PUSHW[k]: k + 1 words
            size = 1 + 2 * (op - 0xB7)
        else:
            size = 1
            if op in (0x8F, 0x90):
                total += 1
                if len(hits) < max_hits:
                    hits.append((pos, op))
        if pos + size > end:
            return hits, total, pos
        pos += size
    return hits, total, None


# Whole instructions, ADJUST bytes, and raw bytes (push opcodes among them, whose data then
# swallows what follows), cut anywhere: truncated pushes and ADJUST inside push data.
PIECES = st.lists(st.one_of(instruction(), st.sampled_from([b"\x8f", b"\x90", b"\x8f\x90"]),
                            st.binary(max_size=3)), max_size=30)


@settings(max_examples=400, deadline=None)
@given(PIECES, st.integers(0, 8), st.integers(0, 8), st.integers(0, 6),
       st.sampled_from([tt_bytecode.CHUNK, 513, 600]))
def test_decoder_matches_byte_by_byte_reference(
        pieces: list[bytes], head: int, tail: int, max_hits: int, chunk: int) -> None:
    """The regular-expression decoder against the byte-by-byte reference, on arbitrary
    bounds, with long programs split into small chunks too (chunk > the longest push)."""
    code = b"".join(pieces)
    start, end = min(head, len(code)), max(0, len(code) - tail)
    with mock.patch.object(tt_bytecode, "CHUNK", chunk):
        dec = tt_bytecode.decode(code, start, end, max_hits=max_hits)
    hits, total, truncated = reference_decode(code, start, end, max_hits)
    assert (list(dec.hits), dec.total, dec.truncated) == (hits, total, truncated)
    assert tt_bytecode.may_contain(code, start, end) == any(
        b in (0x8F, 0x90) for b in code[start:end])


def _glyph_results(data: bytes) -> object:
    try:
        parsed = truetype.parse(data, ParseContext(Budget(Limits(seconds=5))))
    except SpywallError as exc:
        return repr(exc)
    s = parsed.structure
    fonts = s.fonts if isinstance(s, truetype.Collection) else (s,)
    return parsed.warnings, [(f.decoded, f.adjust, f.adjust_total) for f in fonts
                             if isinstance(f, truetype.Font)]


@FAST
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)),
                                        min_size=1, max_size=12))
def test_vectorised_glyph_filter_matches_the_walk_on_mutated_fonts(
        seed: bytes, edits: list[tuple[int, int]]) -> None:
    """Damaged loca, headers and component records: the numpy filter (and its merge of
    glyphs to walk one by one) gives the same decodes, findings and warnings as walking
    every glyph."""
    data = bytearray(seed)
    for at, value in edits:
        data[at % len(data)] = value
    fast = _glyph_results(bytes(data))
    with mock.patch.object(truetype, "_glyphs", None):  # the numpy path
        assert _glyph_results(bytes(data)) == fast
        with mock.patch.object(truetype, "_FEW_COMPOSITES", 0):  # every composite in numpy
            assert _glyph_results(bytes(data)) == fast
    with mock.patch.object(truetype._Parser, "candidate_glyphs",
                           lambda self, offs, glyf, num, *_: ((g, -1, -1) for g in range(num))):
        slow = _glyph_results(bytes(data))
    assert fast == slow
