"""WOFF2: Brotli stream unpacked under caps, glyf/loca/hmtx rebuilt, the sfnt scanned."""

from __future__ import annotations

import contextlib
import io
import mmap
import struct
import tracemalloc
from pathlib import Path

import brotli
import pytest
from fontTools.ttLib import TTFont
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.engine import scan_bytes
from spywall.errors import FormatError, LimitExceeded, SpywallError, TruncatedError
from spywall.formats import woff, woff2
from spywall.formats.base import ParseContext, Parsed
from spywall.limits import Budget, Limits
from spywall.samples import woff as samples
from spywall.samples.truetype import (
    FPGM_ADJUST,
    GLYPH_ADJUST,
    PUSH_DATA_ONLY,
    Programs,
    collection,
    font,
    otf,
)

CRAFTED = font(Programs(simple=GLYPH_ADJUST))
WRAPPED = samples.woff2(CRAFTED)
WOFF2_SAMPLES = [s for s in samples.samples() if s.name.endswith(".woff2")]


def parse(data: bytes, limits: Limits | None = None) -> tuple[Parsed, bytes]:
    parsed = woff.parse(data, ParseContext(Budget(limits or Limits())))
    (child,) = list(parsed.children)
    return parsed, child.data


def structure(parsed: Parsed) -> woff2.Woff2Font:
    assert isinstance(parsed.structure, woff2.Woff2Font)
    return parsed.structure


def _varied_font() -> bytes:
    """A font whose one glyph has deltas of every triplet class, off-curve points too."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.ttLib.tables._g_l_y_f import Glyph, GlyphCoordinates
    from fontTools.ttLib.tables.ttProgram import Program

    steps = [(0, 5), (0, -700), (9, 0), (-600, 0), (3, -14), (40, 60), (-300, 200),
             (900, -700), (3000, 4000), (-2100, 2500), (20000, -30000), (-15000, 29000),
             (0, 0), (1, 1), (255, -255), (256, 256)]
    x = y = 0
    coords = []
    for dx, dy in steps:
        x, y = x + dx, y + dy
        coords.append((x, y))
    glyph = Glyph()
    glyph.numberOfContours = 2
    glyph.coordinates = GlyphCoordinates(coords)
    glyph.endPtsOfContours = [6, len(coords) - 1]
    glyph.flags = bytearray(1 if i % 3 else 0 for i in range(len(coords)))
    glyph.program = Program()
    glyph.program.fromBytecode(GLYPH_ADJUST)
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder([".notdef", "wild"])
    fb.setupCharacterMap({0x41: "wild"})
    empty = Glyph()
    empty.numberOfContours = 0
    fb.setupGlyf({".notdef": empty, "wild": glyph})
    fb.setupHorizontalMetrics({".notdef": (500, 0), "wild": (600, -15000)})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "Spywall Wild", "styleName": "Regular"})
    fb.setupOS2()
    fb.setupPost()
    fb.setupMaxp()
    buf = io.BytesIO()
    fb.font.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize("sample", WOFF2_SAMPLES, ids=lambda s: s.name)
def test_samples_are_found_in_the_unpacked_font(sample: samples.Sample) -> None:
    subject = scan_bytes(sample.data, "x.woff2")
    expected = [("truetype-adjust", "x.woff2!/sfnt")] if sample.expected else []
    assert [(f.rule, f.path) for f in subject.findings] == expected
    assert subject.errors == []
    assert subject.format == "woff2"


def test_the_samples_exercise_the_transforms() -> None:
    transformed = {s.name: {t.tag for t in structure(parse(s.data)[0]).tables
                            if t.transform_length is not None} for s in WOFF2_SAMPLES}
    assert transformed["adjust-glyph.woff2"] == {b"glyf", b"loca"}
    assert transformed["adjust-glyph-long-loca-hmtx.woff2"] == {b"glyf", b"loca", b"hmtx"}
    assert transformed["benign-cff.woff2"] == set()
    assert GLYPH_ADJUST not in WRAPPED


def _same_glyphs(ours: TTFont, original: TTFont) -> None:
    assert ours.getGlyphOrder() == original.getGlyphOrder()
    a, b = ours["glyf"], original["glyf"]
    for name in original.getGlyphOrder():
        g, h = a[name], b[name]
        assert g.numberOfContours == h.numberOfContours, name
        if h.numberOfContours == 0:
            continue
        assert (g.xMin, g.yMin, g.xMax, g.yMax) == (h.xMin, h.yMin, h.xMax, h.yMax), name
        if h.isComposite():
            assert [(c.glyphName, c.x, c.y, c.flags, getattr(c, "transform", None))
                    for c in g.components] == [
                (c.glyphName, c.x, c.y, c.flags, getattr(c, "transform", None))
                for c in h.components], name
        else:
            assert list(g.coordinates) == list(h.coordinates), name
            assert list(g.flags) == list(h.flags), name
            assert list(g.endPtsOfContours) == list(h.endPtsOfContours), name
        assert (g.program.getBytecode() if hasattr(g, "program") else b"") == (
            h.program.getBytecode() if hasattr(h, "program") else b""), name
    assert ours["hmtx"].metrics == original["hmtx"].metrics
    for tag in {"fpgm", "prep", "cmap"} & set(original.keys()):
        assert ours[tag].compile(ours) == original[tag].compile(original), tag
    # head's checkSumAdjustment and flag bit 11 are the WOFF2 encoder's to change.
    for field in ("unitsPerEm", "xMin", "yMin", "xMax", "yMax"):
        assert getattr(ours["head"], field) == getattr(original["head"], field), field


@pytest.mark.parametrize(("sfnt", "hmtx"), [
    (CRAFTED, False),
    (font(Programs(composite=GLYPH_ADJUST)), False),
    (font(Programs(fpgm=FPGM_ADJUST), long_loca=True), False),
    (font(Programs(PUSH_DATA_ONLY, PUSH_DATA_ONLY, PUSH_DATA_ONLY, PUSH_DATA_ONLY)), True),
    (font(long_loca=True), True),
    (_varied_font(), False),
    (_varied_font(), True),
])
def test_rebuilt_glyf_loca_and_hmtx_decode_to_the_original_glyphs(sfnt: bytes,
                                                                  hmtx: bool) -> None:
    _, rebuilt = parse(samples.woff2(sfnt, hmtx=hmtx))
    original = TTFont(io.BytesIO(sfnt))
    ours = TTFont(io.BytesIO(rebuilt))
    assert sorted(ours.reader.keys()) == sorted(original.reader.keys())
    _same_glyphs(ours, original)
    their_decoder = TTFont(io.BytesIO(samples.woff2(sfnt, hmtx=hmtx)))
    assert ours["head"].indexToLocFormat == their_decoder["head"].indexToLocFormat


def test_a_long_loca_index_format_gives_a_long_loca() -> None:
    """fontTools' encoder re-picks the short format, so the header is set to 1 by hand."""
    entries = entries_of(WRAPPED)
    for i, (tag, version, stored, orig) in enumerate(entries):
        if tag == b"glyf":
            entries[i] = (tag, version, _patched(stored, 6, ">H", 1), orig)
        elif tag == b"head":
            entries[i] = (tag, version, _patched(stored, 50, ">h", 1), orig)
    _, rebuilt = parse(pack(0x00010000, entries))
    ours = TTFont(io.BytesIO(rebuilt))
    assert ours["head"].indexToLocFormat == 1
    assert len(ours.reader["loca"]) == 4 * (ours["maxp"].numGlyphs + 1)
    _same_glyphs(ours, TTFont(io.BytesIO(CRAFTED)))


def test_cff_tables_come_back_byte_for_byte() -> None:
    original = otf()
    _, rebuilt = parse(samples.woff2(original))
    ours, theirs = TTFont(io.BytesIO(rebuilt)), TTFont(io.BytesIO(original))
    for tag in sorted(theirs.reader.keys()):
        mine, orig = bytearray(ours.reader[tag]), bytearray(theirs.reader[tag])
        if tag == "head":  # checkSumAdjustment and flags (bit 11) are the encoder's
            mine[8:12] = orig[8:12] = mine[16:18] = orig[16:18] = b"\0" * 4
        assert mine == orig, tag


def test_a_mapped_input_gives_the_same_font(tmp_path: Path) -> None:
    path = tmp_path / "f.woff2"
    path.write_bytes(WRAPPED)
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        parsed = woff.parse(m, ParseContext(Budget()))  # type: ignore[arg-type]
        (child,) = list(parsed.children)
    assert child.data == parse(WRAPPED)[1]


# A small WOFF2 writer for hand-made variants: entries are (tag, version, stored, orig).
Entry = tuple[bytes, int, bytes, int]


def _b128(v: int) -> bytes:
    out = [v & 0x7F]
    v >>= 7
    while v:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    return bytes(reversed(out))


def _u255(v: int) -> bytes:
    return bytes([v]) if v < 253 else b"\xfd" + v.to_bytes(2, "big")


def pack(flavor: int, entries: list[Entry], fonts: list[tuple[int, list[int]]] | None = None,
         stream: bytes | None = None) -> bytes:
    directory = b""
    for tag, version, stored, orig in entries:
        index = woff2.KNOWN_TAGS.index(tag) if tag in woff2.KNOWN_TAGS else 63
        directory += bytes([index | version << 6]) + (tag if index == 63 else b"")
        directory += _b128(orig)
        transformed = version != 3 if tag in (b"glyf", b"loca") else version != 0
        if transformed:
            directory += _b128(len(stored))
    if fonts is not None:
        directory += struct.pack(">I", 0x00010000) + _u255(len(fonts))
        for fl, indices in fonts:
            directory += _u255(len(indices)) + struct.pack(">I", fl)
            directory += b"".join(_u255(i) for i in indices)
    comp = brotli.compress(b"".join(e[2] for e in entries)) if stream is None else stream
    total = woff2.HEADER.size + len(directory) + len(comp)
    head = woff2.HEADER.pack(b"wOF2", flavor, total, len(entries), 0, 0, len(comp), 1, 0,
                             0, 0, 0, 0, 0)
    return head + directory + comp


def entries_of(data: bytes) -> list[Entry]:
    font_ = structure(woff.parse(data, ParseContext(Budget())))
    raw = data[font_.compressed_offset : font_.compressed_offset + font_.compressed_length]
    stream = brotli.decompress(raw)
    return [(t.tag, t.version, stream[t.offset : t.offset + t.stored_length], t.orig_length)
            for t in font_.tables]


def _null_entries(sfnt: bytes) -> list[Entry]:
    f = TTFont(io.BytesIO(sfnt))
    return [(tag.encode(), 3 if tag in ("glyf", "loca") else 0, f.reader[tag],
             len(f.reader[tag])) for tag in sorted(f.reader.keys())]


def test_my_writer_round_trips_the_sample() -> None:
    assert parse(pack(0x00010000, entries_of(WRAPPED)))[1] == parse(WRAPPED)[1]


def test_null_transformed_glyf_is_stored_as_is() -> None:
    subject = scan_bytes(pack(0x00010000, _null_entries(CRAFTED)), "n.woff2")
    assert [(f.rule, f.path) for f in subject.findings] == [("truetype-adjust", "n.woff2!/sfnt")]


def test_a_collection_is_rebuilt_as_a_ttcf() -> None:
    good, bad = _null_entries(font()), _null_entries(CRAFTED)
    data = pack(0x74746366, good + bad, [(0x00010000, list(range(len(good)))),
                                         (0x00010000, list(range(len(good), 2 * len(good))))])
    _, rebuilt = parse(data)
    assert rebuilt[:4] == b"ttcf"
    assert rebuilt[:4] == collection(font(), CRAFTED)[:4]
    subject = scan_bytes(data, "c.woff2")
    assert [f.rule for f in subject.findings] == ["truetype-adjust"]
    assert subject.errors == []


def _patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def _glyf_without_composite_bbox() -> bytes:
    entries = entries_of(WRAPPED)
    i = next(i for i, e in enumerate(entries) if e[0] == b"glyf")
    tag, version, glyf, orig = entries[i]
    sizes = struct.unpack_from(">7I", glyf, 8)
    at = 36 + sum(sizes[:5])
    glyf = glyf[:at] + bytes([glyf[at] & ~0x10]) + glyf[at + 1 :]  # glyph 3 is the composite
    entries[i] = (tag, version, glyf, orig)
    return pack(0x00010000, entries)


def _without(tag: bytes) -> bytes:
    return pack(0x00010000, [e for e in entries_of(WRAPPED) if e[0] != tag])


@pytest.mark.parametrize(("data", "error", "message"), [
    (WRAPPED[:40], TruncatedError, "48 bytes are needed"),
    (_patched(WRAPPED, 12, ">H", 0), FormatError, "declares 0 tables"),
    (_patched(WRAPPED, 12, ">H", 600), FormatError, "declares 600 tables"),
    (_patched(WRAPPED, 20, ">I", len(WRAPPED)), TruncatedError, "needed"),
    (_patched(WRAPPED, 48, ">B", 0x41), FormatError,
     "transform version 1, which WOFF2 does not define"),
    (pack(0x00010000, [(b"fpgm", 0, b"\x00", 1)], stream=b"\xff\xff\xff\xff"),
     FormatError, "Brotli"),
    (pack(0x00010000, [(b"fpgm", 0, b"\x00", 1)], stream=brotli.compress(b"\x00" * 9)[:-1]),
     FormatError, "Brotli"),
    (pack(0x00010000, [(b"fpgm", 0, b"\x00", 1)], stream=brotli.compress(b"\x00" * 9)),
     FormatError, "more than the 1 bytes"),
    (pack(0x00010000, [(b"fpgm", 0, b"\x00" * 8, 8)], stream=brotli.compress(b"\x00" * 4)),
     FormatError, "4 bytes, the table directory says 8"),
    (pack(0x00010000, [(b"fpgm", 0, b"a", 1), (b"fpgm", 0, b"b", 1)]), FormatError,
     "appears twice"),
    (_without(b"loca"), FormatError, "without a transformed loca"),
    (_without(b"glyf"), FormatError, "loca without its transformed glyf"),
    (_glyf_without_composite_bbox(), FormatError, "composite glyph 3 without"),
])
def test_malformed_woff2s_raise_format_errors(data: bytes, error: type[Exception],
                                              message: str) -> None:
    with pytest.raises(error, match=message):
        parse(data)


def test_directory_numbers_are_checked() -> None:
    head = woff2.HEADER.pack(b"wOF2", 0x00010000, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)
    with pytest.raises(FormatError, match="leading zero"):
        parse(head + b"\x09\x80\x01")
    with pytest.raises(FormatError, match="over 32 bits"):
        parse(head + b"\x09\x9f\xff\xff\xff\x7f")
    with pytest.raises(TruncatedError):
        parse(head + b"\x3f\x41\x42")  # an explicit tag cut short


def test_an_unknown_flavor_is_unsupported() -> None:
    subject = scan_bytes(_patched(WRAPPED, 4, ">I", 0x12345678), "f.woff2")
    assert [e.code for e in subject.errors] == ["unsupported"]


def test_a_brotli_bomb_is_refused_under_a_small_cap() -> None:
    size = 64 << 20
    bomb = brotli.compress(b"\x00" * size)
    data = pack(0x00010000, [(b"fpgm", 0, b"", size)], stream=bomb)
    with pytest.raises(LimitExceeded, match="over the cap"):
        parse(data, Limits(max_stream_bytes=1 << 20))
    with pytest.raises(LimitExceeded, match="ratio"):
        parse(data, Limits(max_ratio=100))
    # A directory that lies (declares 1 KiB) never makes the decoder produce the 64 MiB.
    liar = pack(0x00010000, [(b"fpgm", 0, b"", 1024)], stream=bomb)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="unpacks to more than"):
            parse(liar)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_hmtx_sample_round_trips_metrics() -> None:
    sfnt = font(long_loca=True)
    _, rebuilt = parse(samples.woff2(sfnt, hmtx=True))
    assert TTFont(io.BytesIO(rebuilt))["hmtx"].metrics == TTFont(io.BytesIO(sfnt))["hmtx"].metrics


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(WRAPPED) - 1), st.integers(0, 255)),
                max_size=8), st.integers(0, len(WRAPPED)))
def test_mutated_woff2s_fail_only_with_spywall_errors(edits: list[tuple[int, int]],
                                                      cut: int) -> None:
    data = bytearray(WRAPPED)
    for at, value in edits:
        data[at] = value
    with contextlib.suppress(SpywallError):
        parse(bytes(data[:cut] if cut > 48 else data))
    scan_bytes(bytes(data), "m.woff2")  # the engine turns every failure into an entry


STREAM = b"".join(e[2] for e in entries_of(WRAPPED))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(STREAM) - 1), st.integers(0, 255)),
                min_size=1, max_size=6))
def test_mutated_table_streams_fail_only_with_spywall_errors(
        edits: list[tuple[int, int]]) -> None:
    """Mutations inside the decompressed tables (the transformed glyf above all)."""
    entries = entries_of(WRAPPED)
    stream = bytearray(STREAM)
    for at, value in edits:
        stream[at] = value
    data = pack(0x00010000, entries, stream=brotli.compress(bytes(stream)))
    with contextlib.suppress(SpywallError):
        parse(data)
    scan_bytes(data, "m.woff2")


def test_known_tags_match_fonttools_table() -> None:
    from fontTools.ttLib.woff2 import woff2KnownTags

    assert [t.decode("latin-1") for t in woff2.KNOWN_TAGS] == list(woff2KnownTags)
