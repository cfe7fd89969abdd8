"""TrueType: bytecode decoder, sfnt/ttc parser and the truetype-adjust detector."""

from __future__ import annotations

import io
import struct
import time

import numpy as np
import pytest

from spywall.detectors.truetype_adjust import detect
from spywall.engine import scan_bytes
from spywall.errors import FormatError
from spywall.formats import truetype, tt_bytecode
from spywall.formats.base import ParseContext, Parsed
from spywall.formats.truetype import Collection, Font
from spywall.limits import Budget, Limits
from spywall.samples import truetype as ts
from spywall.samples.containers import zip_of

BAD_GLYPH = ts.Programs(simple=ts.GLYPH_ADJUST)


def parse(data: bytes) -> Parsed:
    return truetype.parse(data, ParseContext(Budget()))


def font_of(data: bytes) -> Font:
    s = parse(data).structure
    assert isinstance(s, Font)
    return s


def table(data: bytes, tag: str) -> truetype.Table:
    return next(t for t in font_of(data).tables if t.tag == tag)


# --- decoder ---------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "hits"), [
    (b"\x8f", [0]),
    (b"\x00\x90\x01", [1]),
    (b"\xb0\x8f", []),                        # PUSHB[0]: one byte of data
    (b"\xb7" + b"\x8f" * 8 + b"\x90", [9]),  # PUSHB[7]: eight bytes, then ADJUST
    (b"\xb8\x8f\x90", []),                    # PUSHW[0]: one word
    (b"\xbf" + b"\x90" * 16, []),             # PUSHW[7]: eight words
    (b"\x40\x02\x8f\x90\x8f", [4]),           # NPUSHB 2 bytes, then ADJUST
    (b"\x41\x02\x8f\x90\x8f\x90\x90", [6]),   # NPUSHW 2 words, then ADJUST
    (b"\x40\x8f" + b"\x00" * 0x8F + b"\x8f", [0x91]),  # count byte equal to 0x8F
])
def test_decoder_skips_push_data(code: bytes, hits: list[int]) -> None:
    dec = tt_bytecode.decode(code)
    assert [at for at, _ in dec.hits] == hits
    assert dec.total == len(hits)
    assert dec.truncated is None


@pytest.mark.parametrize(("code", "at"), [
    (b"\x00\xb1\x01", 1), (b"\x40", 0), (b"\x40\x05\x01", 0), (b"\x41\x01\x00", 0),
    (b"\x8f\xbf\x00", 1),
])
def test_decoder_reports_truncated_push(code: bytes, at: int) -> None:
    assert tt_bytecode.decode(code).truncated == at


def test_decoder_respects_bounds_and_caps() -> None:
    data = b"\x8f" * 100 + b"\xb0" + b"\x90"
    dec = tt_bytecode.decode(data, 10, 60, max_hits=4)
    assert dec.total == 50
    assert [at for at, _ in dec.hits] == [10, 11, 12, 13]
    # The push at 100 owns byte 101: end the program before it and it is truncated.
    assert tt_bytecode.decode(data, 99, 101).truncated == 100
    assert tt_bytecode.may_contain(data, 0, 5)
    assert not tt_bytecode.may_contain(b"\x00\x8e\x91", 0, 3)
    assert not tt_bytecode.may_contain(data, 100, 101)


def test_decoder_reads_a_mapped_buffer() -> None:
    """The engine hands large inputs over as a read-only mmap, which has no ``count``:
    decoding one (past ``max_hits``, where the rest are counted) matches decoding bytes."""
    import mmap

    code = b"\x00" + (b"\x8f\xb0\x90\x90\x40\x02\x8f\x8f") * 50 + b"\xb1\x00"
    mapped = mmap.mmap(-1, len(code))
    mapped.write(code)
    dec = tt_bytecode.decode(mapped, 0, len(code), max_hits=4)  # type: ignore[arg-type]
    assert dec == tt_bytecode.decode(code, 0, len(code), max_hits=4)
    assert (dec.total, len(dec.hits), dec.truncated) == (100, 4, len(code) - 2)
    assert tt_bytecode.may_contain(mapped, 0, 2)  # type: ignore[arg-type]
    mapped.close()


# --- parser ------------------------------------------------------------------------------

def test_sniff() -> None:
    data = ts.font()
    assert truetype.sniff(data[:64])
    assert truetype.sniff(ts.otf()[:64])
    assert truetype.sniff(ts.collection(data, data)[:64])
    assert truetype.sniff(b"true" + data[4:64])
    assert not truetype.sniff(b"\x00\x01\x00\x00" + b"\x00" * 60)  # zero tables
    assert not truetype.sniff(b"\x00\x01\x00\x00\x00\x05" + b"\x00" * 58)  # tag not text
    assert not truetype.sniff(b"ttcf\x00\x01\x00\x00\xff\xff\xff\xff" + bytes(52))
    assert not truetype.sniff(b"%PDF-1.7\n" + bytes(55))


@pytest.mark.parametrize("long_loca", [False, True])
def test_font_structure(long_loca: bool) -> None:
    data = ts.font(long_loca=long_loca)
    parsed = parse(data)
    font = font_of(data)
    assert parsed.format == "truetype"
    assert not parsed.warnings
    assert font.loca_format == (1 if long_loca else 0)
    assert font.num_glyphs == 4
    # fpgm and prep are always examined; glyph programs only in glyphs whose bytes hold a
    # possible ADJUST opcode (the square, triangle and composite hold at most three).
    assert 2 <= font.programs <= 5
    assert font.decoded == 0  # no 0x8F/0x90 byte anywhere: nothing decoded
    assert font.adjust == ()
    assert parsed.logical_end == max(t.offset + t.length for t in font.tables)
    assert len(data) - parsed.logical_end < 4


@pytest.mark.parametrize(("progs", "where", "glyph"), [
    (ts.Programs(fpgm=ts.FPGM_ADJUST), "fpgm", None),
    (ts.Programs(prep=ts.PREP_ADJUST), "prep", None),
    (BAD_GLYPH, "glyph", 1),
    (ts.Programs(composite=ts.GLYPH_ADJUST), "glyph", 3),
])
@pytest.mark.parametrize("long_loca", [False, True])
def test_adjust_located(progs: ts.Programs, where: str, glyph: int | None,
                        long_loca: bool) -> None:
    from fontTools.ttLib import TTFont

    data = ts.font(progs, long_loca)
    font = font_of(data)
    [prog] = font.adjust
    assert (prog.where, prog.glyph, prog.total) == (where, glyph, 1)
    # The program found is exactly the one fontTools compiled at that place.
    tt = TTFont(io.BytesIO(data))
    if glyph is None:
        code = tt[where].program.getBytecode()
    else:
        code = tt["glyf"][tt.getGlyphOrder()[glyph]].program.getBytecode()
    assert data[prog.offset : prog.offset + prog.length] == code
    [(at, op)] = prog.hits
    assert data[at] == op
    assert op in (0x8F, 0x90)
    [hit] = detect(parse(data))
    assert hit.offset == at
    assert hit.detail["program"] == where
    assert hit.detail["glyph"] == glyph
    assert (f"glyph {glyph}" if glyph is not None else where) in hit.message


def test_composite_components_parsed() -> None:
    from fontTools.ttLib import TTFont

    data = ts.font(ts.Programs(composite=ts.GLYPH_ADJUST))
    tt = TTFont(io.BytesIO(data))
    glyph = tt.getTableData("glyf")[tt["loca"][3] : tt["loca"][4]]
    flags, pos, sizes = [], 10, {0x8: 2, 0x40: 4, 0x80: 8}
    while True:  # the raw component flags, read here independently of the parser
        f = int.from_bytes(glyph[pos : pos + 2], "big")
        flags.append(f)
        pos += 4 + (4 if f & 1 else 2) + sum(n for bit, n in sizes.items() if f & bit)
        if not f & truetype.MORE_COMPONENTS:
            break
    # The sample exercises every flag-dependent record size.
    for bit in (truetype.ARG_1_AND_2_ARE_WORDS, truetype.WE_HAVE_A_SCALE,
                truetype.WE_HAVE_AN_X_AND_Y_SCALE, truetype.WE_HAVE_A_TWO_BY_TWO):
        assert any(f & bit for f in flags), hex(bit)
    assert flags[-1] & truetype.WE_HAVE_INSTRUCTIONS
    [prog] = font_of(data).adjust
    assert prog.glyph == 3
    assert prog.offset == tt.reader.tables["glyf"].offset + tt["loca"][3] + pos + 2


def _records(*recs: tuple[int, bytes]) -> bytes:
    return b"".join(struct.pack(">HH", flags, 1) + rest for flags, rest in recs)


@pytest.mark.parametrize(("body", "expected"), [
    (_records((0x0100, b"\x01\x02")), 6),
    (_records((0x0020 | 0x0001, b"\x00" * 4), (0x0100 | 0x0008, b"\x01\x02\x40\x00")), 16),
    (_records((0x0120 | 0x0040, b"\x01\x02" + b"\x00" * 4), (0x0080, b"\x00" * 10)), 24),
    (_records((0x0000, b"\x01\x02")), -1),  # no WE_HAVE_INSTRUCTIONS
    (_records((0x0020, b"\x01\x02")), None),  # MORE_COMPONENTS, then the glyph ends
    (_records((0x0100 | 0x0080, b"\x01\x02\x00")), None),  # 2x2 cut short
])
def test_component_records(body: bytes, expected: int | None,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    p = truetype._Parser(body, ParseContext(Budget()))
    assert p.components_end(0, len(body)) == expected
    # The vectorised walk, forced to run in numpy, on the same glyph and on shifted copies.
    monkeypatch.setattr(truetype, "_FEW_COMPOSITES", 0)
    buf = body * 3
    u16 = truetype._u16_reader(buf, 0, len(buf), odd=False)
    starts = np.array([0, len(body), 2 * len(body)], dtype=np.int64)
    got = p.components(u16, 0, starts, starts + len(body)).tolist()
    want = [truetype._MALFORMED if expected is None else expected + s if expected >= 0
            else -1 for s in starts.tolist()]
    assert got == want


def _set_loca(data: bytes, gid: int, value: int) -> bytes:
    loca = table(data, "loca")
    fmt = font_of(data).loca_format
    size = 2 if fmt == 0 else 4
    at = loca.offset + gid * size
    return data[:at] + value.to_bytes(size, "big") + data[at + size :]


@pytest.mark.parametrize("long_loca", [False, True])
def test_loca_out_of_range_skips_glyph_only(long_loca: bool) -> None:
    data = _set_loca(ts.font(BAD_GLYPH, long_loca), 3, 0xFFFF)
    parsed = parse(data)
    assert any("outside the 'glyf' table" in w for w in parsed.warnings)
    font = font_of(data)
    assert [p.glyph for p in font.adjust] == [1]  # glyph 1 still examined


def test_instruction_length_past_glyph_is_skipped() -> None:
    data = ts.font(BAD_GLYPH)
    glyf = table(data, "glyf")
    prog = font_of(data).adjust[0]
    at = prog.offset - 2  # the glyph's instructionLength
    assert int.from_bytes(data[at : at + 2], "big") == prog.length
    bad = data[:at] + b"\xff\xff" + data[at + 2 :]
    parsed = parse(bad)
    assert font_of(bad).adjust == ()
    assert any("1 glyphs (first: glyph 1)" in w for w in parsed.warnings)
    assert glyf.offset < at < glyf.offset + glyf.length


def test_truncated_push_is_a_warning() -> None:
    data = ts.font(ts.Programs(prep=b"\x8f\x40\x09\x01"))
    parsed = parse(data)
    assert any("prep instructions: push" in w for w in parsed.warnings)
    assert font_of(data).adjust[0].where == "prep"


def test_missing_tables_and_bad_loca_format() -> None:
    data = ts.font(BAD_GLYPH)
    head = table(data, "head")
    at = head.offset + 50
    bad = data[:at] + b"\x00\x07" + data[at + 2 :]
    parsed = parse(bad)
    assert any("indexToLocFormat 7" in w for w in parsed.warnings)
    loca = table(data, "loca")
    short = data.replace(b"loca", b"LOCA", 1)
    assert any("without usable head" in w for w in parse(short).warnings)
    assert loca.length > 0


def test_collection_reports_font_index() -> None:
    data = ts.collection(ts.font(), ts.font(BAD_GLYPH))
    parsed = parse(data)
    assert parsed.format == "ttc"
    coll = parsed.structure
    assert isinstance(coll, Collection)
    assert [f.index for f in coll.fonts] == [0, 1]
    [hit] = detect(parsed)
    assert hit.detail["font_index"] == 1
    assert "font 1 of the collection" in hit.message


def test_collection_shared_tables_reported_per_font() -> None:
    bad = ts.font(ts.Programs(fpgm=ts.FPGM_ADJUST))
    parsed = parse(ts.collection(bad, bad))
    assert sorted(h.detail["font_index"] for h in detect(parsed)) == [0, 1]  # type: ignore[type-var]


def test_caps_raise_format_errors() -> None:
    with pytest.raises(FormatError):
        parse(b"ttcf\x00\x01\x00\x00\x00\x10\x00\x00" + bytes(64))
    with pytest.raises(FormatError):
        parse(b"\x00\x01\x00\x00\xff\xff" + bytes(64))
    with pytest.raises(FormatError):  # directory runs past the data
        parse(b"\x00\x01\x00\x00\x00\x09" + bytes(64))


def test_collection_member_errors_are_warnings() -> None:
    data = bytearray(ts.collection(ts.font(), ts.font(BAD_GLYPH)))
    data[16:20] = (len(data) + 100).to_bytes(4, "big")  # second font's offset
    parsed = parse(bytes(data))
    assert any(w.startswith("font 1 at offset") for w in parsed.warnings)
    assert isinstance(parsed.structure, Collection)
    assert [f.index for f in parsed.structure.fonts] == [0]


def test_otf_has_no_programs() -> None:
    parsed = parse(ts.otf())
    assert parsed.format == "opentype-cff"
    assert isinstance(parsed.structure, Font)
    assert parsed.structure.programs == 0


def test_many_programs_are_capped_with_a_summary() -> None:
    data = b"\x00\x8f" * 40
    p = truetype._Parser(data, ParseContext(Budget()))
    spans: list[tuple[str, int | None, int, int]] = [
        ("glyph", i, 2 * i, 2 * i + 2) for i in range(40)]
    found, stats = p.scan(spans, "")
    assert (len(found), stats.total, stats.programs, stats.decoded) == (32, 40, 40, 40)
    assert [f.hits for f in found[:2]] == [((1, 0x8F),), ((3, 0x8F),)]
    font = Font(None, 0, "truetype", (), adjust=tuple(found), adjust_total=stats.total)
    hits = list(detect(Parsed("truetype", font)))
    assert len(hits) == 33
    assert hits[-1].message.startswith("8 more programs")


def test_engine_end_to_end_and_appended_zip() -> None:
    data = ts.font(BAD_GLYPH)
    subject = scan_bytes(data, "x.ttf")
    assert [f.rule for f in subject.findings] == ["truetype-adjust"]
    assert subject.findings[0].severity.value == "critical"
    assert subject.findings[0].cves == ["CVE-2023-41990"]
    tail = scan_bytes(ts.font() + zip_of({"a.bin": b"x" * 64}), "y.ttf")
    assert "appended-archive" in {f.rule for f in tail.findings}


def sfnt(tables: dict[str, bytes]) -> bytes:
    """A bare sfnt from raw tables (checksums left zero: nothing here reads them)."""
    head = struct.pack(">4sHHHH", b"\x00\x01\x00\x00", len(tables), 0, 0, 0)
    offset = 12 + 16 * len(tables)
    records, body = b"", b""
    for tag, blob in tables.items():
        records += struct.pack(">4sIII", tag.encode(), 0, offset + len(body), len(blob))
        body += blob + bytes(-len(blob) % 4)
    return head + records + body


def hostile(num_glyphs: int, loca: bytes, glyf: bytes) -> bytes:
    head = bytes(50) + b"\x00\x01" + bytes(2)  # indexToLocFormat = 1 (long)
    maxp = struct.pack(">IH", 0x5000, num_glyphs)
    return sfnt({"head": head, "maxp": maxp, "loca": loca, "glyf": glyf})


def test_hostile_shared_glyph_program_is_decoded_once() -> None:
    code = b"\x8f" * 60_000
    glyph = struct.pack(">hhhhhH", 0, 0, 0, 0, 0, len(code)) + code
    n = 0xFFFF  # loca 0, L, 0, L...: even glyphs share one program, odd ones run backwards
    data = hostile(n, struct.pack(f">{n + 1}I", *([0, len(glyph)] * ((n + 1) // 2))), glyph)
    start = time.monotonic()
    parsed = parse(data)
    assert time.monotonic() - start < 120  # a hang guard, not a speed test
    font = parsed.structure
    assert isinstance(font, Font)
    assert (font.adjust_total, len(font.adjust)) == ((n + 1) // 2, truetype.MAX_RECORDED)
    assert font.adjust[0].total == 60_000
    assert len(font.adjust[0].hits) == 16
    assert any("32767 glyphs (first: glyph 1)" in w for w in parsed.warnings)
    hits = list(detect(parsed))
    assert len(hits) == truetype.MAX_RECORDED + 1


def test_hostile_overlapping_programs_stay_bounded() -> None:
    """Glyph k starts at byte 4k of a run of 0x8F: each is a composite whose flags
    (0x8F8F) say word arguments, a scale and instructions, 0x8F8F bytes of ADJUST. The
    programs overlap, so decoding them all would scan 600 MB: the budget stops it, and
    what was found stays."""
    n = 0x8000
    glyf = b"\x8f" * (2 * n + 60_000)
    loca: list[int] = []
    for k in range(n // 2):
        loca += [4 * k, 4 * k + 60_000]
    data = hostile(n - 1, struct.pack(f">{n}I", *loca), glyf)
    start = time.monotonic()
    parsed = parse(data)
    assert time.monotonic() - start < 120  # a hang guard, not a speed test
    assert any("remaining programs were not examined" in w for w in parsed.warnings)
    font = parsed.structure
    assert isinstance(font, Font)
    assert 100 < font.adjust_total < n // 2
    assert font.adjust[1].offset - font.adjust[0].offset == 4
    assert font.adjust[0].total == 0x8F8F


def test_decode_budget_keeps_what_was_found() -> None:
    # fpgm has ADJUST; a glyph's 60,000-byte program is all PUSHB[0] 0x8F (push data, the
    # decoder's slowest input, charged by its bytes): more than the element budget allows.
    data = ts.font(ts.Programs(fpgm=ts.FPGM_ADJUST, simple=b"\xb0\x8f" * 30_000))
    parsed = truetype.parse(data, ParseContext(Budget(Limits(max_elements=5_000))))
    assert any("remaining programs were not examined" in w for w in parsed.warnings)
    [hit] = detect(parsed)
    assert hit.detail["program"] == "fpgm"
    # With the default budget the whole font is decoded, and the glyph is clean.
    assert [p.where for p in font_of(data).adjust] == ["fpgm"]
