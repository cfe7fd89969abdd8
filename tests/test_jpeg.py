"""The JPEG marker search over entropy-coded data: ``next_marker`` (a pattern with a
literal first byte) against the plain pattern it replaces (``\\xff+(...)``), on any bytes
and on data dense with 0xFF; and the logical end of JPEGs Pillow writes (baseline,
progressive, optimised) at Pillow's own end of file."""

from __future__ import annotations

import io
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.engine import scan_bytes
from spywall.formats import jpeg
from spywall.formats.base import ParseContext
from spywall.limits import Budget, Limits

_BYTES = st.lists(st.sampled_from([0xFF, 0x00, 0xD0, 0xD7, 0xD8, 0xD9, 0x01, 0xDA, 0x41, 0xC4]),
                  max_size=80).map(bytes)


_PLAIN = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")   # the definition, written plainly


def _by_regex(data: bytes, pos: int) -> tuple[int, int, int] | None:
    m = _PLAIN.search(data, pos)
    return None if m is None else (m.start(), m.group(1)[0], m.end())


@settings(max_examples=500, deadline=None)
@given(_BYTES, st.integers(min_value=0, max_value=80))
def test_next_marker_is_the_regex(data: bytes, pos: int) -> None:
    pos = min(pos, len(data))
    assert jpeg.next_marker(data, pos) == _by_regex(data, pos)


@pytest.mark.parametrize("prefix", [0, 10, 5000])
def test_dense_0xff_gives_the_same_answer(prefix: int) -> None:
    """Ordinary entropy data (0xFF every ~256 bytes), then a megabyte of FF 00 pairs, then
    EOI: the same answer as the plain pattern."""
    rng = random.Random(prefix)
    sparse = b"".join(bytes(rng.randrange(0, 0xFF) for _ in range(255)) + b"\xff\x00"
                      for _ in range(prefix))
    data = sparse + b"\xff\x00" * 500_000 + b"\xff\xd9"
    assert jpeg.next_marker(data, 0) == _by_regex(data, 0) == (len(data) - 2, 0xD9, len(data))


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"optimize": True},
                                     {"progressive": True, "quality": 95}])
def test_pillow_jpegs_end_where_pillow_ended_them(options: dict[str, object]) -> None:
    """Noise makes dense entropy data with many stuffed 0xFF; the scan's logical end (the
    first EOI after the scans) is the end of the file Pillow wrote, and appended bytes
    after it are not part of the image."""
    from PIL import Image

    rng = random.Random(7)
    noise = bytes(rng.randrange(256) for _ in range(256 * 192 * 3))
    img = Image.frombytes("RGB", (256, 192), noise)
    out = io.BytesIO()
    img.save(out, "JPEG", **options)
    data = out.getvalue()
    assert data.count(b"\xff\x00") > 20                  # stuffed bytes to step over
    assert jpeg.next_marker(data, 2) == _by_regex(data, 2)
    for tail in (b"", b"trailing bytes \xff\xd9"):
        parsed = jpeg.parse(data + tail, ParseContext(Budget(Limits())))
        assert parsed.logical_end == len(data)
    subject = scan_bytes(data, "noise.jpg")
    assert subject.format == "jpeg"
    assert not subject.errors
    assert not subject.findings
