"""WOFF samples: the TRIANGULATION fonts of ``samples.truetype`` wrapped for the web.

fontTools writes the WOFF 1.0 container (zlib per table when that is smaller), a real
encoder for the benign controls; the crafted ones carry ADJUST in a glyph program or in
fpgm, inside a compressed table, so only an unpacking scanner can see it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from spywall.samples import Sample
from spywall.samples.truetype import (
    ADJUST,
    FPGM_ADJUST,
    GLYPH_ADJUST,
    NONE,
    Programs,
    font,
    otf,
)


def woff(sfnt: bytes) -> bytes:
    """``sfnt`` as WOFF 1.0 (fontTools; tables not decompiled are copied as they are)."""
    from fontTools.ttLib import TTFont

    f = TTFont(io.BytesIO(sfnt))
    f.flavor = "woff"
    buf = io.BytesIO()
    f.save(buf, reorderTables=False)
    return buf.getvalue()


def samples() -> Iterator[Sample]:
    yield Sample("adjust-glyph.woff", woff(font(Programs(simple=GLYPH_ADJUST))), ADJUST,
                 "ADJUST in a simple glyph's instructions, glyf zlib-compressed in a WOFF")
    yield Sample("adjust-fpgm-long-loca.woff",
                 woff(font(Programs(fpgm=FPGM_ADJUST), long_loca=True)), ADJUST,
                 "ADJUST in fpgm of a long-loca font wrapped as WOFF")
    yield Sample("benign.woff", woff(font()), NONE, "ordinary hinting, WOFF 1.0")
    yield Sample("benign-cff.woff", woff(otf()), NONE, "OpenType-CFF flavor, WOFF 1.0")
