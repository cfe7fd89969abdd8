"""WOFF 1.0: tables unpacked under caps, the sfnt rebuilt and scanned as a font."""

from __future__ import annotations

import contextlib
import io
import struct
import zlib

import pytest
from fontTools.ttLib import TTFont
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.engine import scan_bytes
from spywall.errors import FormatError, LimitExceeded, SpywallError
from spywall.formats import woff
from spywall.formats.base import ParseContext, Parsed
from spywall.limits import Budget, Limits
from spywall.samples import woff as samples
from spywall.samples.containers import png, zip_of
from spywall.samples.truetype import GLYPH_ADJUST, Programs, font

CRAFTED = font(Programs(simple=GLYPH_ADJUST))
WRAPPED = samples.woff(CRAFTED)


def parse(data: bytes, limits: Limits | None = None) -> tuple[Parsed, bytes]:
    parsed = woff.parse(data, ParseContext(Budget(limits or Limits())))
    (child,) = list(parsed.children)
    return parsed, child.data


def structure(parsed: Parsed) -> woff.WoffFont:
    assert isinstance(parsed.structure, woff.WoffFont)
    return parsed.structure


def entry_at(data: bytes, tag: bytes) -> int:
    count = struct.unpack_from(">H", data, 12)[0]
    for i in range(count):
        at = woff.HEADER.size + i * woff.ENTRY.size
        if data[at : at + 4] == tag:
            return at
    raise AssertionError(tag)


def test_glyf_is_compressed_and_the_finding_names_the_unpacked_font() -> None:
    parsed, _ = parse(WRAPPED)
    glyf = next(t for t in structure(parsed).tables if t.tag == "glyf")
    assert glyf.compressed  # the ADJUST bytes are not visible in the WOFF itself
    subject = scan_bytes(WRAPPED, "f.woff")
    assert [(f.rule, f.path) for f in subject.findings] == [("truetype-adjust", "f.woff!/sfnt")]
    assert subject.errors == []


def test_rebuilt_sfnt_holds_every_original_table() -> None:
    _, sfnt = parse(WRAPPED)
    ours, original = TTFont(io.BytesIO(sfnt)), TTFont(io.BytesIO(CRAFTED))
    tags = sorted(original.reader.keys())
    assert sorted(ours.reader.keys()) == tags
    for tag in tags:
        assert ours.reader[tag] == original.reader[tag], tag


def test_data_appended_after_the_font_is_examined() -> None:
    parsed, _ = parse(WRAPPED)
    assert parsed.logical_end == len(WRAPPED)
    subject = scan_bytes(WRAPPED + zip_of({"a.png": png()}), "f.woff")
    assert sorted(f.rule for f in subject.findings) == ["appended-archive", "truetype-adjust"]


def test_woff2_of_an_unknown_flavor_is_reported_as_unsupported() -> None:
    subject = scan_bytes(b"wOF2" + b"\x00" * 60, "f.woff2")  # flavor 0: no sfnt version
    assert [e.code for e in subject.errors] == ["unsupported"]


def _patched(offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(WRAPPED)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.mark.parametrize(("data", "message"), [
    (WRAPPED[:30], "44 bytes are needed"),
    (_patched(12, ">H", 0), "declares 0 tables"),
    (_patched(12, ">H", 600), "declares 600 tables"),
    (_patched(entry_at(WRAPPED, b"glyf") + 4, ">I", len(WRAPPED)), "outside the"),
    (_patched(entry_at(WRAPPED, b"glyf") + 12, ">I", 1), "compressed but only"),
    (_patched(entry_at(WRAPPED, b"glyf") + 12, ">I", 4000), "directory says 4000"),
])
def test_malformed_woffs_raise_format_errors(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse(data)


def test_bad_zlib_data_is_a_format_error() -> None:
    at = struct.unpack_from(">I", WRAPPED, entry_at(WRAPPED, b"glyf") + 4)[0]
    data = bytearray(WRAPPED)
    data[at : at + 2] = b"\xff\xff"
    with pytest.raises(FormatError, match="zlib"):
        parse(bytes(data))


def test_a_table_bomb_is_refused_before_inflating() -> None:
    bomb = zlib.compress(b"\x00" * (8 << 20), 9)
    head = woff.HEADER.pack(b"wOFF", 0x10000, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    entry = woff.ENTRY.pack(b"glyf", 64, len(bomb), 8 << 20, 0)
    data = head + entry + bomb
    with pytest.raises(LimitExceeded):
        parse(data, Limits(max_stream_bytes=1 << 20))
    with pytest.raises(LimitExceeded, match="ratio"):
        parse(data, Limits(max_ratio=100))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(WRAPPED) - 1), st.integers(0, 255)),
                max_size=8), st.integers(0, len(WRAPPED)))
def test_mutated_woffs_fail_only_with_spywall_errors(edits: list[tuple[int, int]],
                                                     cut: int) -> None:
    data = bytearray(WRAPPED)
    for at, value in edits:
        data[at] = value
    with contextlib.suppress(SpywallError):
        parse(bytes(data[:cut] if cut > 44 else data))
    scan_bytes(bytes(data), "m.woff")  # the engine turns every failure into an entry
