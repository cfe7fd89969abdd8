"""JBIG2 segment walker and the two FORCEDENTRY detectors."""

from __future__ import annotations

import struct
import tracemalloc

import pytest

from spywall.detectors import jbig2_refinement_flood, jbig2_symbol_overflow
from spywall.formats import jbig2
from spywall.formats.base import ParseContext, Parsed
from spywall.limits import Budget
from spywall.samples import pdf_jbig2 as s


def parse(data: bytes, embedded: bool = False) -> Parsed:
    fn = jbig2.parse_embedded if embedded else jbig2.parse
    return fn(data, ParseContext(Budget()))


def stream(data: bytes, embedded: bool = False) -> jbig2.Jbig2Stream:
    st = parse(data, embedded).structure
    assert isinstance(st, jbig2.Jbig2Stream)
    return st


def overflow_hits(data: bytes, embedded: bool = False) -> list[jbig2_symbol_overflow.Hit]:
    return list(jbig2_symbol_overflow.detect(parse(data, embedded)))


@pytest.mark.parametrize(("text_type", "number"), [(4, 4), (6, 300), (7, 70000)])
def test_forcedentry_sum_with_each_reference_size(text_type: int, number: int) -> None:
    data = s.jbig2_file([*s.forcedentry_segments(text_type, number), *s.trailer(number + 1)])
    st = stream(data)
    assert [d.exported for d in st.dictionaries] == [0xFFFF, 3]
    (use,) = st.symbol_uses
    assert (use.type, use.number) == (text_type, number)
    assert use.references == use.dictionary_references == 0x10002
    assert use.exported_sum == 0xFFFF * 0x10001 + 3
    (hit,) = jbig2_symbol_overflow.detect(parse(data))
    assert hit.detail["wrapped_sum"] == 2
    assert hit.offset == data.index(struct.pack(">IB", number, text_type | (0x40 if number > 255
                                                                              else 0)))
    assert st.pages == 1
    assert st.sequential


def test_exact_bound_is_not_an_overflow() -> None:
    big = [s.segment(2, 0, s.symbol_dict(0xFFFF))]
    at_bound = s.join([*big, s.segment(3, 4, s.text_region(), [2] * 0x10001)])
    over = s.join([*big, s.segment(3, 4, s.text_region(), [2] * 0x10002)])
    assert stream(at_bound, embedded=True).symbol_uses[0].exported_sum == 0xFFFFFFFF
    assert overflow_hits(at_bound, embedded=True) == []
    assert len(overflow_hits(over, embedded=True)) == 1


def test_random_access_reads_data_after_all_headers() -> None:
    segs = [*s.forcedentry_segments(), *s.trailer(5)]
    seq, ra = stream(s.jbig2_file(segs)), stream(s.jbig2_file(segs, sequential=False))
    assert not ra.sequential
    def sums(st: jbig2.Jbig2Stream) -> list[tuple[int, int, int]]:
        return [(u.number, u.dictionary_references, u.exported_sum) for u in st.symbol_uses]

    assert sums(ra) == sums(seq)
    assert [d.exported for d in ra.dictionaries] == [d.exported for d in seq.dictionaries]


def test_short_form_two_huge_dictionaries() -> None:
    st = stream(s.jbig2_file(s.short_form_segments()))
    assert st.symbol_uses[0].exported_sum == 2 * 0x80000001
    assert [d.new for d in st.dictionaries] == [1, 1]


@pytest.mark.parametrize("flags", [0x0000, 0x0001, 0x0400, 0x0C00, 0x0002, 0x1002, 0x0003])
def test_dictionary_header_layouts(flags: int) -> None:
    """AT bytes: 8 (template 0) or 2 unless SDHUFF; 4 refinement AT bytes iff SDREFAGG and
    SDRTEMPLATE = 0. A wrong skip would misread SDNUMEXSYMS."""
    data = s.join([s.segment(1, 0, s.symbol_dict(0x12345678, 7, flags=flags))])
    (d,) = stream(data, embedded=True).dictionaries
    assert (d.exported, d.new, d.flags) == (0x12345678, 7, flags)


def test_only_earlier_dictionaries_count() -> None:
    data = s.join([
        s.segment(1, 0, s.symbol_dict(0xFFFFFFFF)),
        s.segment(2, 6, s.text_region(), [1, 3]),
        s.segment(3, 0, s.symbol_dict(0xFFFFFFFF)),
    ])
    (use,) = stream(data, embedded=True).symbol_uses
    assert (use.references, use.dictionary_references) == (2, 1)
    assert overflow_hits(data, embedded=True) == []


def test_dictionary_importing_dictionaries_can_overflow() -> None:
    data = s.join([
        s.segment(1, 0, s.symbol_dict(0xFFFFFFFF)),
        s.segment(2, 0, s.symbol_dict(2)),
        s.segment(3, 0, s.symbol_dict(1), [1, 2]),
    ])
    (hit,) = overflow_hits(data, embedded=True)
    assert hit.detail["segment_type"] == 0
    assert hit.detail["symbol_sum"] == 0x100000001


def test_globals_then_page_segments_as_one_stream() -> None:
    dicts = s.join(s.forcedentry_segments(page=0)[1:3])
    page = s.join([s.segment(1, s.PAGE_INFO, s.page_info()), s.forcedentry_segments()[3]])
    assert len(overflow_hits(dicts + page, embedded=True)) == 1
    assert overflow_hits(page, embedded=True) == []


def test_damage_after_the_trigger_keeps_the_finding() -> None:
    good = s.jbig2_file(s.forcedentry_segments())
    for tail in (b"\x00\x00\x00\x09\x30", b"\xff" * 40, struct.pack(">IBB", 9, 0, 0xA0)):
        parsed = parse(good + tail)
        assert parsed.warnings, tail
        assert len(list(jbig2_symbol_overflow.detect(parsed))) == 1


def test_logical_end_is_the_end_of_file_segment() -> None:
    data = s.jbig2_file([*s.benign_segments(), *s.trailer(4)])
    parsed = parse(data + b"PK\x03\x04 appended")
    assert parsed.logical_end == len(data)
    assert parsed.warnings == []


def test_unknown_length_generic_region() -> None:
    region = struct.pack(">IIIIBB", 8, 8, 0, 0, 0, 0) + b"\x12\x34\xff\xac" + struct.pack(">I", 8)
    head, _ = s.segment(2, 38, b"")
    unknown = head[:-4] + b"\xff\xff\xff\xff"
    after = s.join([s.segment(3, 0, s.symbol_dict(5))])
    st = stream(unknown + region + after, embedded=True)
    assert st.type_counts == {38: 1, 0: 1}
    assert [d.exported for d in st.dictionaries] == [5]
    bad_head, _ = s.segment(2, 0, b"")
    parsed = parse(bad_head[:-4] + b"\xff\xff\xff\xff" + region, embedded=True)
    assert "leaves its length unknown" in parsed.warnings[0]


def test_invalid_and_capped_reference_counts() -> None:
    bad_short = struct.pack(">IBB", 1, 4, 5 << 5) + bytes(8)
    assert "invalid referred-to count" in parse(bad_short, embedded=True).warnings[0]
    too_many = struct.pack(">IBI", 1, 4, 0xE0000000 | (jbig2.MAX_REFS + 1)) + bytes(64)
    assert "over the cap" in parse(too_many, embedded=True).warnings[0]


def test_file_header_flags() -> None:
    no_pages = s.MAGIC + b"\x03" + s.join(s.benign_segments())
    st = stream(no_pages)
    assert st.pages is None
    assert st.sequential
    assert st.segment_count == 3
    assert not jbig2.sniff(no_pages[1:])
    assert jbig2.sniff(no_pages)


@pytest.mark.parametrize(("count", "fires"), [(999, False), (1000, True)])
def test_refinement_flood_threshold(count: int, fires: bool) -> None:
    data = s.jbig2_file([*s.benign_segments(), *s.refinement_flood(count), *s.trailer(3000)])
    hits = list(jbig2_refinement_flood.detect(parse(data)))
    assert bool(hits) is fires
    if fires:
        assert hits[0].detail["refinement_segments"] == count
        assert hits[0].offset == data.index(struct.pack(">IB", 10, 42))


def test_detectors_ignore_other_structures() -> None:
    other = Parsed(format="jbig2", structure="not a stream")
    assert list(jbig2_symbol_overflow.detect(other)) == []
    assert list(jbig2_refinement_flood.detect(other)) == []


def test_embedded_streams_read_past_an_end_of_file_segment() -> None:
    tail = s.join(s.forcedentry_segments(first=20, text_number=30))
    data = s.join(s.trailer(1)) + tail
    assert len(overflow_hits(data, embedded=True)) == 1
    standalone = s.jbig2_file(s.trailer(1)) + tail
    parsed = parse(standalone)
    assert parsed.logical_end == len(standalone) - len(tail)
    assert list(jbig2_symbol_overflow.detect(parsed)) == []


def test_duplicate_dictionary_numbers_count_the_larger() -> None:
    data = s.join([
        s.segment(2, 0, s.symbol_dict(0xFFFF), page=0),  # as in /JBIG2Globals
        s.segment(2, 0, s.symbol_dict(1)),  # same number in the page stream
        s.segment(3, 4, s.text_region(), [2] * 0x10002),
    ])
    assert len(overflow_hits(data, embedded=True)) == 1


def test_memory_stays_small_for_many_segments_and_references() -> None:
    flood = s.jbig2_file([*s.benign_segments(), *s.refinement_flood(8_000), *s.trailer(9_000)],
                         sequential=False)
    refs = 1 << 20
    many = s.join([s.segment(2, 0, s.symbol_dict(0x1000))]) + struct.pack(
        ">IBI", 3, 4, 0xE0000000 | refs) + bytes((refs + 8) // 8) + b"\x02" * refs + b"\x01" \
        + struct.pack(">I", 0)
    tracemalloc.start()
    st = stream(flood)
    (use,) = stream(many, embedded=True).symbol_uses
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert st.refinement_count == 8_000
    assert st.first_refinement_offset == flood.index(struct.pack(">IB", 10, 42))
    assert use.exported_sum == 0x1000 * refs
    assert peak < 8 << 20
