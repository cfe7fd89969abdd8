"""WOFF samples: the TRIANGULATION fonts of ``samples.truetype`` wrapped for the web.

fontTools writes the WOFF 1.0 container (zlib per table when that is smaller) and the
WOFF2 one (one Brotli stream, glyf/loca transformed into seven streams, hmtx too when
asked), a real encoder for the benign controls; the crafted ones carry ADJUST in a glyph
program or in fpgm, inside compressed (and for WOFF2 transformed) data, so only an
unpacking scanner can see it.
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
    PUSH_DATA_ONLY,
    Programs,
    font,
    otf,
)


def woff(sfnt: bytes) -> bytes:
    """``sfnt`` as WOFF 1.0 (fontTools; tables not decompiled are copied as they are)."""
    from fontTools.ttLib import TTFont

    f = TTFont(io.BytesIO(sfnt), recalcTimestamp=False)
    f.flavor = "woff"
    buf = io.BytesIO()
    f.save(buf, reorderTables=False)
    return buf.getvalue()


def woff2(sfnt: bytes, hmtx: bool = False) -> bytes:
    """``sfnt`` as WOFF2 (fontTools): glyf/loca transformed, hmtx too if ``hmtx``."""
    from fontTools.ttLib import TTFont
    from fontTools.ttLib.woff2 import WOFF2FlavorData

    f = TTFont(io.BytesIO(sfnt), recalcTimestamp=False)
    f.flavor = "woff2"
    if hmtx:
        f.flavorData = WOFF2FlavorData(transformedTables={"glyf", "loca", "hmtx"})
    buf = io.BytesIO()
    f.save(buf)
    return buf.getvalue()


def samples() -> Iterator[Sample]:
    yield Sample("adjust-glyph.woff", woff(font(Programs(simple=GLYPH_ADJUST))), ADJUST,
                 "ADJUST in a simple glyph's instructions, glyf zlib-compressed in a WOFF")
    yield Sample("adjust-fpgm-long-loca.woff",
                 woff(font(Programs(fpgm=FPGM_ADJUST), long_loca=True)), ADJUST,
                 "ADJUST in fpgm of a long-loca font wrapped as WOFF")
    yield Sample("benign.woff", woff(font()), NONE, "ordinary hinting, WOFF 1.0")
    yield Sample("benign-cff.woff", woff(otf()), NONE, "OpenType-CFF flavor, WOFF 1.0")
    bad_glyph = Programs(simple=GLYPH_ADJUST)
    yield Sample("adjust-glyph.woff2", woff2(font(bad_glyph)), ADJUST,
                 "ADJUST in a simple glyph's instructions, glyf transformed in a WOFF2")
    yield Sample("adjust-composite.woff2", woff2(font(Programs(composite=GLYPH_ADJUST))),
                 ADJUST, "ADJUST after a composite glyph's records, glyf transformed")
    yield Sample("adjust-fpgm-long-loca.woff2",
                 woff2(font(Programs(fpgm=FPGM_ADJUST), long_loca=True)), ADJUST,
                 "ADJUST in fpgm of a long-loca font wrapped as WOFF2 "
                 "(fontTools' encoder re-picks the loca format)")
    yield Sample("adjust-glyph-long-loca-hmtx.woff2",
                 woff2(font(bad_glyph, long_loca=True), hmtx=True), ADJUST,
                 "ADJUST in a glyph, glyf and hmtx transformed")
    yield Sample("benign.woff2", woff2(font()), NONE, "ordinary hinting, WOFF2")
    yield Sample("benign-push-data.woff2",
                 woff2(font(Programs(PUSH_DATA_ONLY, PUSH_DATA_ONLY, PUSH_DATA_ONLY,
                                     PUSH_DATA_ONLY))), NONE,
                 "0x8F/0x90 only as push data, WOFF2")
    yield Sample("benign-cff.woff2", woff2(otf()), NONE, "OpenType-CFF flavor, WOFF2")
