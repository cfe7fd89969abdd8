"""TIFF / DNG parser and the three TIFF detectors, on structures built by the sample writer."""

from __future__ import annotations

import struct

import pytest

from spywall.detectors import dng_lossless_jpeg_components as ljc
from spywall.detectors import dng_opcode_count, tiff_tile_geometry
from spywall.engine import scan_bytes
from spywall.errors import FormatError, LimitExceeded, TruncatedError
from spywall.formats import ljpeg
from spywall.formats import tiff as t
from spywall.formats.base import ParseContext, Parsed
from spywall.limits import Budget, Limits
from spywall.samples import tiff_dng as s


def parse(data: bytes, limits: Limits | None = None) -> Parsed:
    return t.parse(data, ParseContext(Budget(limits or Limits())))


def structure(data: bytes) -> t.TiffFile:
    tf = parse(data).structure
    assert isinstance(tf, t.TiffFile)
    return tf


def rules(data: bytes) -> list[str]:
    return sorted(f.rule for f in scan_bytes(data, "x").findings)


@pytest.mark.parametrize("little", [True, False])
def test_dng_tree_both_byte_orders(little: bool) -> None:
    data = s.dng_with([s.ljpeg(16, 4, 2), s.ljpeg(16, 4, 1)], rows=4, little=little)
    parsed = parse(data)
    tf = parsed.structure
    assert isinstance(tf, t.TiffFile)
    assert parsed.format == "dng"
    assert tf.little_endian is little
    assert [i.label for i in tf.ifds] == ["IFD0", "IFD0/SubIFD0"]
    raw = tf.ifds[1]
    assert raw.value(t.SAMPLES_PER_PIXEL) == 2
    assert [seg.sof.components for seg in raw.segments if seg.sof] == [2, 1]
    assert all(seg.sof and seg.sof.lossless and seg.sof.width == 16 for seg in raw.segments)
    assert parsed.logical_end == len(data)


def test_plain_tiff_is_not_dng() -> None:
    assert parse(s.plain_tiff({t.IMAGE_WIDTH: (s.LONG, (4,))})).format == "tiff"


def test_ifd_loop_is_walked_once() -> None:
    w = s.TiffWriter()
    first = w.ifd({t.IMAGE_WIDTH: (s.SHORT, (1,))}, next_ifd=8)
    data = bytearray(w.finish(first))
    # point IFD0's next offset at itself
    struct.pack_into("<I", data, first + 2 + 12, first)
    parsed = parse(bytes(data))
    assert isinstance(parsed.structure, t.TiffFile)
    assert len(parsed.structure.ifds) == 1
    assert any("loop" in w for w in parsed.warnings)


def test_ifd_chain_and_exif() -> None:
    w = s.TiffWriter(little=False)
    exif = w.ifd({0x9000: (s.UNDEFINED, b"0231")})
    second = w.ifd({t.IMAGE_WIDTH: (s.SHORT, (2,))})
    first = w.ifd({t.IMAGE_WIDTH: (s.SHORT, (1,)), t.EXIF_IFD: (s.LONG, (exif,))}, second)
    tf = structure(w.finish(first))
    assert [i.label for i in tf.ifds] == ["IFD0", "IFD0/EXIF", "IFD1"]
    assert tf.ifds[1].entries[0x9000].head == b"0231"


def test_subifd_depth_is_capped() -> None:
    w = s.TiffWriter()
    off = w.ifd({t.IMAGE_WIDTH: (s.SHORT, (1,))})
    for _ in range(t.MAX_DEPTH + 3):
        off = w.ifd({t.SUB_IFDS: (s.LONG, (off,))})
    parsed = parse(w.finish(off))
    assert isinstance(parsed.structure, t.TiffFile)
    assert len(parsed.structure.ifds) == t.MAX_DEPTH + 1
    assert any("nested deeper" in w for w in parsed.warnings)


def test_out_of_range_value_and_strip_are_warnings_not_errors() -> None:
    data = s.plain_tiff({t.STRIP_OFFSETS: (s.LONG, (10_000, 20_000)),
                         t.STRIP_BYTE_COUNTS: (s.LONG, (5, 5))})
    w = s.TiffWriter()
    bad = bytearray(w.finish(w.ifd({t.STRIP_OFFSETS: (s.LONG, (1, 2, 3))})))
    struct.pack_into("<I", bad, len(bad) - 4 - 4, 0xFFFFFF00)  # value offset of entry 1
    for blob in (data, bytes(bad)):
        parsed = parse(blob)
        assert parsed.warnings
        assert parsed.logical_end is not None
        assert parsed.logical_end <= len(blob)


@pytest.mark.parametrize("data", [b"II*\x00\xff\xff\xff\x7f", b"MM\x00*\x00\x00\x00\x08\x00",
                                  b"II+\x00\x04\x00\x00\x00" + bytes(8), b"XX*\x00"])
def test_unreadable_files_raise_format_errors(data: bytes) -> None:
    with pytest.raises(FormatError):
        parse(data)


def test_entry_cap_and_element_budget() -> None:
    header = b"II*\x00\x08\x00\x00\x00" + struct.pack("<H", t.MAX_ENTRIES + 1)
    with pytest.raises(FormatError, match="cap"):
        parse(header + bytes(12 * (t.MAX_ENTRIES + 1) + 4))
    many = {0x8000 + i: (s.SHORT, (1,)) for i in range(200)}
    with pytest.raises(LimitExceeded):
        parse(s.plain_tiff(many), Limits(max_elements=100))


def test_bigtiff_from_tifffile() -> None:
    import io

    import numpy as np
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((40, 40), np.uint8), tile=(16, 16), bigtiff=True,
                     byteorder=">")
    tf = structure(buf.getvalue())
    assert tf.bigtiff
    assert not tf.little_endian
    assert tf.ifds[0].tiled
    assert len(tf.ifds[0].segments) == 9


def test_read_sof_walks_markers() -> None:
    stream = s.ljpeg(640, 480, 2, precision=14)
    sof = ljpeg.read_sof(b"pad" + stream, 3, 3 + len(stream))
    assert sof is not None
    assert (sof.marker, sof.precision, sof.height, sof.width, sof.components) == (
        0xC3, 14, 480, 640, 2)
    assert stream[sof.offset - 3 : sof.offset - 1] == b"\xff\xc3"
    assert ljpeg.read_sof(b"\xff\xd8\xff\xda\x00\x02", 0, 6) is None
    with pytest.raises(FormatError):
        ljpeg.read_sof(b"\x00\x00", 0, 2)
    with pytest.raises(TruncatedError):
        ljpeg.read_sof(stream[:20], 0, 20)


def test_components_detector_severities() -> None:
    trigger = parse(s.dng_with([s.ljpeg(16, 8, 1)]))
    [hit] = ljc.detect(trigger)
    assert hit.severity is None
    assert hit.detail["first_segment"] == 0
    assert hit.offset is not None
    mismatch = parse(s.dng_with([s.ljpeg(16, 8, 3)]))
    [hit] = ljc.detect(mismatch)
    assert hit.severity is not None
    assert hit.severity.value == "medium"
    assert hit.detail["declared_samples"] == 3 * 16 * 8
    assert hit.detail["expected_samples"] == 2 * 16 * 8


def test_components_detector_ignores_other_compressions() -> None:
    data = s.dng_with([s.ljpeg(16, 8, 1)], extra={t.COMPRESSION: (s.SHORT, (1,))})
    assert list(ljc.detect(parse(data))) == []


@pytest.mark.parametrize(("count", "fires"), [(1_000_001, True), (1_000_000, False),
                                               (2, False)])
def test_opcode_count_threshold(count: int, fires: bool) -> None:
    # a list big enough to hold 2 opcodes; 1,000,000 is over that room -> medium only
    data = s.dng_with([s.ljpeg(8, 8, 2)], spp=1,
                      extra={s.OPCODE_LIST2: (s.UNDEFINED, s.opcode_list(count, 2))})
    hits = list(dng_opcode_count.detect(parse(data)))
    critical = [h for h in hits if h.severity is None]
    assert bool(critical) is fires
    assert (len(hits) == 1) is (count > 2)


def test_tile_geometry_strip_count() -> None:
    entries = {t.IMAGE_WIDTH: (s.LONG, (10,)), t.IMAGE_LENGTH: (s.LONG, (10,)),
               t.ROWS_PER_STRIP: (s.LONG, (3,)), t.STRIP_OFFSETS: (s.LONG, (8, 8)),
               t.STRIP_BYTE_COUNTS: (s.LONG, (0, 0))}
    [hit] = tiff_tile_geometry.detect(parse(s.plain_tiff(entries)))
    assert "expected 4" in hit.message
    entries[t.STRIP_OFFSETS] = (s.LONG, (8, 8, 8, 8))
    entries[t.STRIP_BYTE_COUNTS] = (s.LONG, (0, 0, 0, 0))
    assert list(tiff_tile_geometry.detect(parse(s.plain_tiff(entries)))) == []


def test_landfall_tail_found_by_engine() -> None:
    base = s.dng_with([s.ljpeg(16, 8, 2)])
    stage = s.zip_of({"x.so": b"\x7fELF"})
    assert rules(base + stage) == ["appended-archive"]
    assert rules(base + bytes(100)) == []


def test_real_lossless_jpeg_strips_are_read() -> None:
    data = s._lossless((48, 80, 3), "rgb", rowsperstrip=20)
    raw = structure(data).ifds[0]
    sofs = [seg.sof for seg in raw.segments]
    assert all(sof is not None and sof.lossless for sof in sofs)
    assert raw.value(t.ROWS_PER_STRIP) == 32  # tifffile rounds JPEG strips up
    assert [(sof.height, sof.width, sof.components, sof.precision) for sof in sofs if sof] == [
        (32, 80, 3, 12), (16, 80, 3, 12)]  # the last strip holds only the rows left
    assert list(ljc.detect(parse(data))) == []


def test_ifd_count_cap_keeps_what_was_read() -> None:
    w = s.TiffWriter()
    nxt = 0
    for i in range(t.MAX_IFDS + 5):
        nxt = w.ifd({t.IMAGE_WIDTH: (s.SHORT, (i,))}, nxt)
    parsed = parse(w.finish(nxt))
    assert isinstance(parsed.structure, t.TiffFile)
    assert len(parsed.structure.ifds) == t.MAX_IFDS
    assert any(f"more than {t.MAX_IFDS} IFDs" in w for w in parsed.warnings)


def _app_padded(stream: bytes, segments: int) -> bytes:
    app = b"\xff\xe1\x00\x06spyw"
    return stream[:2] + app * segments + stream[2:]


@pytest.mark.parametrize("variant", ["app-padding", "overlong-count", "no-counts"])
def test_trigger_is_not_hidden(variant: str) -> None:
    stream = s.ljpeg(16, 8, 1)
    extra: dict[int, s.Value] = {}
    if variant == "app-padding":
        stream = _app_padded(stream, 200)
    elif variant == "overlong-count":
        extra = {t.STRIP_BYTE_COUNTS: (s.LONG, (1 << 30,))}
    data = s.dng_with([stream], extra=extra)
    if variant == "no-counts":
        data = data.replace(struct.pack("<HHI", t.STRIP_BYTE_COUNTS, s.LONG, 1),
                            struct.pack("<HHI", 0x9999, s.LONG, 1))
    parsed = parse(data)
    [hit] = ljc.detect(parsed)
    assert hit.severity is None
    assert (variant == "overlong-count") is any("past the end" in w for w in parsed.warnings)


def test_sof_walk_is_charged_to_the_budget() -> None:
    stream = _app_padded(s.ljpeg(16, 8, 1), 3000)
    with pytest.raises(LimitExceeded):
        parse(s.dng_with([stream]), Limits(max_elements=1000))
