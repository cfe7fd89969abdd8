"""The compiled byte searches (``formats._bytescan``) against their independent oracles:
``next_marker`` against the plain pattern that defines a JPEG marker in entropy-coded
data (and the regex path used without the helper), on any bytes, on hostile layouts
(0xFF at the end of the buffer, fill runs, restart markers, truncation, a search that
starts inside a run) and on Pillow's JPEGs and the PDFs of their pages, read and mapped;
``find`` against ``bytes.find``; the ``/Type`` entries of ``pdf_raw`` against
``_TYPE.finditer``, with and without the helper."""

from __future__ import annotations

import io
import mmap
import random
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.formats import jpeg, pdf_raw

try:
    from spywall.formats import _bytescan as bytescan
except ImportError:  # pragma: no cover - a build without a C compiler
    bytescan = None  # type: ignore[assignment]

compiled = pytest.mark.skipif(bytescan is None, reason="the compiled byte searches are not "
                              "built (no C compiler)")

_PLAIN = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")   # the definition, written plainly
_MARKER_BYTES = st.lists(st.sampled_from([0xFF, 0x00, 0xD0, 0xD7, 0xD8, 0xD9, 0x01, 0xDA,
                                          0x41, 0xC4, 0xCF, 0xE0]), max_size=96).map(bytes)


def _oracle(data: bytes, pos: int) -> tuple[int, int, int] | None:
    m = _PLAIN.search(data, pos)
    return None if m is None else (m.start(), m.group(1)[0], m.end())


def _every_marker(find, data: bytes) -> list[tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    out, pos = [], 0
    while (hit := find(data, pos)) is not None:
        out.append(hit)
        pos = hit[2]
    return out


@compiled
@settings(max_examples=1500, deadline=None)
@given(_MARKER_BYTES, st.integers(min_value=-2, max_value=100))
def test_next_marker_is_the_plain_pattern(data: bytes, pos: int) -> None:
    expected = _oracle(data, max(pos, 0))
    assert bytescan.next_marker(data, pos) == expected
    assert jpeg._NEXT_MARKER.search(data, max(pos, 0)) is None or expected is not None
    assert bytescan.next_marker(bytearray(data), pos) == expected


@compiled
@pytest.mark.parametrize(("data", "pos", "expected"), [
    (b"", 0, None),
    (b"\xff", 0, None),                              # 0xFF as the buffer's last byte
    (b"\x12\x34\xff", 0, None),
    (b"\xff\xff\xff\xff", 0, None),                  # fill to the end: no marker byte
    (b"\xff\xff\xff\xd9", 0, (0, 0xD9, 4)),           # fill before EOI: the run's start
    (b"\xff\xff\xff\xd9", 2, (2, 0xD9, 4)),           # started inside the run
    (b"\xff\xff\xff\xd9", 3, None),                  # started on the marker byte itself
    (b"\xff\x00\xff\xd0\xff\xd7\xff\xff\x00\xab", 0, None),  # stuffing and RST only
    (b"\xff\x00\xff\xd0\xff\xd7\xff\xc4\x00", 0, (6, 0xC4, 8)),
    (b"\xff\x01", 0, (0, 0x01, 2)),                  # TEM is a marker
    (b"\xff\xd9", 5, None),                          # a start past the end
])
def test_hostile_layouts(data: bytes, pos: int, expected: tuple[int, int, int] | None) -> None:
    assert bytescan.next_marker(data, pos) == expected == _oracle(data, pos)


@compiled
@pytest.mark.parametrize("run", [1, 2, 33])
def test_a_marker_at_every_offset_around_the_blocks(run: int) -> None:
    """The C scan compares 32-byte blocks: a marker (after a run of fill) that straddles
    a block boundary, or sits in the last bytes where no whole block fits, at every
    offset, searched from every start."""
    for k in range(72):
        for tail in range(3):
            data = b"\x12" * k + b"\xff" * run + b"\xd9" + b"\xff\x00\x13" * tail
            for pos in range(len(data) + 1):
                assert bytescan.next_marker(data, pos) == _oracle(data, pos), (k, tail, pos)
        cut = b"\x12" * k + b"\xff" * run  # the run at the buffer's end: no marker
        assert bytescan.next_marker(cut, 0) is None


@compiled
def test_a_needle_at_every_offset_around_the_blocks() -> None:
    for k in range(72):
        for needle in (b"/Type", b"/T", b"/", b"XRef"):
            for tail in (b"", b"/", b"/Typ", b"xx/Type"):
                data = b"/Ty" * (k // 3) + b"." * (k % 3) + needle + tail
                for start in range(0, len(data) + 1, 5):
                    assert bytescan.find(data, needle, start) == data.find(needle, start)
                assert bytescan.find(data[:-1], needle, 0) == data[:-1].find(needle, 0)


@compiled
def test_dense_fill_and_stuffing_over_a_megabyte() -> None:
    rng = random.Random(3)
    data = b"".join(rng.choice([b"\xff\x00", b"\xff\xff", b"\xff\xd3", b"\x17"])
                    for _ in range(600_000)) + b"\xff\xff\xd9"
    assert _every_marker(bytescan.next_marker, data) == _every_marker(_oracle, data)


def _pillow_jpegs() -> list[bytes]:
    from PIL import Image

    rng = random.Random(11)
    img = Image.frombytes("RGB", (320, 240), rng.randbytes(320 * 240 * 3))
    out = []
    for options in ({}, {"progressive": True}, {"optimize": True, "quality": 97},
                    {"restart_marker_blocks": 1}):
        buf = io.BytesIO()
        img.save(buf, "JPEG", **options)
        out.append(buf.getvalue())
    assert b"\xff\xd0" in out[-1]  # restart markers between the blocks
    return out


@compiled
def test_pillow_jpegs_read_and_mapped(tmp_path: Path) -> None:
    """Every marker of real files, from bytes and from a read-only mapping whose last
    bytes are the EOI; the parse ends where Pillow ended the file either way, and with
    the helper switched off."""
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget, Limits

    for i, data in enumerate(_pillow_jpegs()):
        expected = _every_marker(_oracle, data)
        assert expected[-1][1:] == (0xD9, len(data))
        assert _every_marker(bytescan.next_marker, data) == expected
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(data)
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            assert _every_marker(bytescan.next_marker, mm) == expected  # type: ignore[arg-type]
            parsed = jpeg.parse(mm, ParseContext(Budget(Limits())))  # type: ignore[arg-type]
            assert parsed.logical_end == len(data)


def test_the_jpeg_parser_without_the_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    from spywall.engine import scan_bytes

    samples = [*_pillow_jpegs(), _pillow_jpegs()[0][:-700], _pillow_jpegs()[1] + b"\xff\xd9"]
    fast = [scan_bytes(d, "x.jpg") for d in samples]
    monkeypatch.setattr(jpeg, "_bytescan", None)
    slow = [scan_bytes(d, "x.jpg") for d in samples]
    assert fast == slow
    assert fast[4].errors  # the truncated one says so


@compiled
@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"b", b"ab", b"\x00", b"ba"]), max_size=40).map(b"".join),
       st.lists(st.sampled_from([b"a", b"b", b"\x00"]), min_size=1, max_size=4).map(b"".join),
       st.integers(min_value=0, max_value=60))
def test_find_is_bytes_find(data: bytes, needle: bytes, start: int) -> None:
    assert bytescan.find(data, needle, start) == data.find(needle, start)


@compiled
def test_find_refuses_an_empty_needle() -> None:
    with pytest.raises(ValueError, match="empty"):
        bytescan.find(b"abc", b"", 0)


_PDF_TOKENS = st.sampled_from([b"/Type", b"/Typ", b"/XRef", b"/X#52ef", b"#52", b"/", b" ",
                               b"\n", b"/Type/Type", b"XRef", b"e", b"/Page", b"\xff"])


def _entries(data: bytes) -> list[tuple[tuple[int, int], bytes]]:
    return [(m.span(), m[1]) for m in pdf_raw.type_entries(data)]


@settings(max_examples=1500, deadline=None)
@given(st.lists(_PDF_TOKENS, max_size=30).map(b"".join))
def test_type_entries_are_the_pattern_s_matches(data: bytes) -> None:
    expected = [(m.span(), m[1]) for m in pdf_raw._TYPE.finditer(data)]
    assert _entries(data) == expected
    saved = pdf_raw._bytescan
    try:
        pdf_raw._bytescan = None  # type: ignore[assignment]
        assert _entries(data) == expected
    finally:
        pdf_raw._bytescan = saved


def test_type_entries_in_a_pdf_of_jpeg_pages() -> None:
    pikepdf = pytest.importorskip("pikepdf")
    pdf = pikepdf.new()
    for data in _pillow_jpegs()[:2]:
        page = pdf.add_blank_page(page_size=(320, 240))
        img = pikepdf.Stream(pdf, data)
        img.Type, img.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        img.Width, img.Height, img.BitsPerComponent = 320, 240, 8
        img.ColorSpace, img.Filter = pikepdf.Name.DeviceRGB, pikepdf.Name.DCTDecode
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=img))
    buf = io.BytesIO()
    pdf.save(buf, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    data = buf.getvalue()
    found = _entries(data)
    assert [t for _, t in found].count(b"XRef") == 1
    assert found == [(m.span(), m[1]) for m in pdf_raw._TYPE.finditer(data)]


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="no C compiler: the compiled byte searches cannot be built")
def test_the_parsers_use_the_compiled_searches() -> None:
    assert jpeg._bytescan is bytescan
    assert pdf_raw._bytescan is bytescan
