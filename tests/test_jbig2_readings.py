"""Long-form referred-to counts: decoders disagree on the retention bytes that follow.

T.88 reads ceil((n + 1) / 8) bytes, xpdf (and CoreGraphics) (n + 9) >> 3, jbig2dec and
PDFium (n + 1) // 8. A stream written for any one of them must show its trigger.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.engine import scan_bytes
from spywall.formats import jbig2
from spywall.samples import jbig2_coded as jc
from spywall.samples.pdf_jbig2 import MAGIC, symbol_dict, text_region


def header(number: int, seg_type: int, refs: list[int], retention: int, data: bytes
           ) -> bytes:
    """A long-form header with ``retention`` retention bytes, 1-byte numbers."""
    return (struct.pack(">IBI", number, seg_type, 0xE0000000 | len(refs)) + bytes(retention)
            + bytes(refs) + b"\x01" + struct.pack(">I", len(data)) + data)


def stream(reading: str, page_refs: int, big_refs: int) -> bytes:
    """A page information segment with a long-form header of ``page_refs`` references and
    a text region with ``big_refs`` references to a 0xFFFF-symbol dictionary plus one to a
    3-symbol one, both written with ``reading``'s retention rule."""
    rule = jbig2.RETENTION[reading]
    refs = [2] * big_refs + [3]
    body = (header(1, jc.PAGE_INFO, [0] * page_refs, rule(page_refs), jc.page_info())
            + b"".join(h + d for h, d in (jc.segment(2, 0, symbol_dict(0xFFFF)),
                                          jc.segment(3, 0, symbol_dict(3, flags=2))))
            + header(4, 6, refs, rule(len(refs)), text_region())
            + b"".join(h + d for h, d in (jc.segment(5, jc.END_OF_PAGE, b""),
                                          jc.segment(6, jc.END_OF_FILE, b"", page=0))))
    return MAGIC + b"\x01" + struct.pack(">I", 1) + body


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(sorted(jbig2.RETENTION)), st.integers(5, 64))
def test_trigger_found_whatever_the_retention_rule(reading: str, page_refs: int) -> None:
    bad = scan_bytes(stream(reading, page_refs, 0x10001), "x.jbig2")
    assert {f.rule for f in bad.findings} == {"jbig2-symbol-overflow"}
    assert all("CVE-2021-30860" in f.cves for f in bad.findings)
    good = scan_bytes(stream(reading, page_refs, 4), "x.jbig2")
    assert not good.findings


def test_each_reading_reads_its_own_stream() -> None:
    from spywall.formats.base import ParseContext
    from spywall.limits import Budget

    for reading in jbig2.RETENTION:
        s = jbig2.parse_as(stream(reading, 7, 0x10001), ParseContext(Budget()),
                           reading).structure
        assert isinstance(s, jbig2.Jbig2Stream)
        assert [u.exported_sum for u in s.symbol_uses] == [0xFFFF * 0x10001 + 3]
