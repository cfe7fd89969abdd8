"""HEIF/AVIF box walk, item model and the three 2026 item-model detectors."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import pytest

from spywall.detectors import heif_mask_extent, heif_multiple_alpha, heif_overlay_alpha_depth
from spywall.errors import FormatError
from spywall.formats import heif as h
from spywall.formats.base import ParseContext, Parsed
from spywall.limits import Budget, Limits
from spywall.samples import heif as s
from spywall.samples.heif import Item, Ref


def parse(data: bytes, limits: Limits | None = None) -> Parsed:
    return h.parse(data, ParseContext(Budget(limits or Limits())))


def structure(data: bytes) -> h.HeifFile:
    hf = parse(data).structure
    assert isinstance(hf, h.HeifFile)
    return hf


def test_pillow_avif_with_alpha() -> None:
    from PIL import Image, features

    if not features.check("avif"):
        pytest.skip("Pillow built without AVIF")
    buf = io.BytesIO()
    Image.new("RGBA", (40, 24), (1, 2, 3, 4)).save(buf, "AVIF")
    data = buf.getvalue()
    parsed = parse(data)
    hf = parsed.structure
    assert isinstance(hf, h.HeifFile)
    assert parsed.format == "avif"
    assert parsed.logical_end == len(data)
    assert hf.primary == 1
    assert set(hf.items.values()) == {"av01"}
    ispe = hf.prop(1, "ispe")
    assert ispe is not None
    assert (ispe.width, ispe.height) == (40, 24)
    [alpha] = [i for i in hf.items if hf.is_alpha(i)]
    assert any(r.type == "auxl" and r.from_id == alpha for r in hf.references)
    for loc in hf.locations.values():
        assert all(off + length <= len(data) for off, length in loc.extents)


def test_crafted_item_model() -> None:
    data = s.heif([s._image(1, s.pixi(10, 10, 10)), Item(2, "mski", (s.ispe(4, 4), s.mskc(8)),
                                                          bytes(16))],
                  [Ref("mask", 1, (2,))])
    hf = structure(data)
    assert hf.major_brand == "heic"
    assert hf.items == {1: "hvc1", 2: "mski"}
    assert hf.depth(1) == 10
    assert hf.locations[2].total_length == 16
    start = hf.locations[2].extents[0][0]
    assert data[start - 8 : start] == bytes(8)  # item 1's filler precedes the mask's data
    assert [r.type for r in hf.references] == ["mask"]


def _iloc_v2(base: int, offset: int, length: int) -> bytes:
    # offset 8 bytes, length 4 bytes, base_offset 8 bytes, index 0; item_count u32
    body = struct.pack(">HI", 0x8480, 1) + struct.pack(">IHHQH", 7, 0, 0, base, 1)
    return s.full("iloc", body + struct.pack(">QI", offset, length), version=2)


def test_iloc_version2_wide_fields_and_largesize() -> None:
    ftyp = s.box("ftyp", b"mif1" + bytes(4) + b"mif1heic")
    meta = s.full("meta", _iloc_v2(100, 20, 0))
    payload = bytes(300)
    mdat = struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 16 + len(payload)) + payload
    data = ftyp + meta + mdat
    parsed = parse(data)
    hf = parsed.structure
    assert isinstance(hf, h.HeifFile)
    assert hf.locations[7].extents == ((120, len(data) - 120),)  # zero length: to the end
    assert parsed.logical_end == len(data)
    assert [b.type for b in hf.boxes] == ["ftyp", "meta", "mdat"]


def test_size_zero_box_runs_to_the_end() -> None:
    data = s.box("ftyp", b"avif" + bytes(4) + b"avif") + bytes(4) + b"mdat" + bytes(50)
    hf = structure(data)
    assert hf.boxes[-1].end == len(data)


def test_truncated_and_hostile() -> None:
    good = s.heif([s._image(1, s.pixi(8, 8, 8))])
    cut = parse(good[:-3])
    assert cut.warnings
    assert cut.logical_end is not None
    assert cut.logical_end < len(good)
    with pytest.raises(FormatError):
        parse(b"\x00\x00\x00\x08free")
    ipma = s.full("ipma", struct.pack(">I", 0xFFFFFFFF))
    hostile = s.box("ftyp", b"heic" + bytes(4)) + s.full("meta", s.box("iprp", ipma))
    assert any("ipma entry count" in w for w in parse(hostile).warnings)
    capped = parse(s.heif([s._image(i, s.pixi(8)) for i in range(1, 40)]),
                   Limits(max_elements=20))
    # what was read before the cap is kept; the cap is reported (the engine fails closed)
    assert len(capped.incomplete) == 1
    assert "elements" in capped.incomplete[0]


def test_iloc_bad_field_size_is_a_warning() -> None:
    ftyp = s.box("ftyp", b"heic" + bytes(4))
    meta = s.full("meta", s.full("iloc", struct.pack(">HH", 0x3300, 0)))
    parsed = parse(ftyp + meta)
    assert any("field size of 3 bytes" in w for w in parsed.warnings)


def test_mask_extent_boundary() -> None:
    def mask(size: int, bits: int = 8) -> Parsed:
        item = Item(2, "mski", (s.ispe(10, 10), s.mskc(bits)), bytes(size))
        return parse(s.heif([s._image(1), item]))

    assert list(heif_mask_extent.detect(mask(100))) == []
    [hit] = heif_mask_extent.detect(mask(101))
    assert hit.detail["data_bytes"] == 101
    assert list(heif_mask_extent.detect(mask(500, bits=16))) == []


def test_overlay_depth_only_for_overlay_inputs() -> None:
    items = [Item(1, "grid", (s.ispe(64, 64),)), s._image(2, s.pixi(12, 12, 12)),
             s._image(4, s.pixi(8), s.ALPHA)]
    refs = [Ref("dimg", 1, (2,)), Ref("auxl", 4, (2,))]
    assert list(heif_overlay_alpha_depth.detect(parse(s.heif(items, refs)))) == []
    items[0] = Item(1, "iovl", (s.ispe(64, 64),))
    [hit] = heif_overlay_alpha_depth.detect(parse(s.heif(items, refs)))
    assert (hit.detail["colour_bits"], hit.detail["alpha_bits"]) == (12, 8)


def test_multiple_alpha_paths() -> None:
    a = s.pixi(8)
    direct = [s._image(1), s._image(2, a, s.ALPHA), s._image(3, a, s.ALPHA)]
    [hit] = heif_multiple_alpha.detect(parse(s.heif(direct, [Ref("auxl", 2, (1,)),
                                                              Ref("auxl", 3, (1,))])))
    assert hit.detail == {"image": 1, "alpha_planes": 2, "via_iden": False, "via_grid": False}
    # a depth map (not alpha) is not counted
    depth = [s._image(1), s._image(2, a, s.ALPHA),
             s._image(3, a, s.full("auxC", b"urn:mpeg:hevc:2015:auxid:2\x00"))]
    refs = [Ref("auxl", 2, (1,)), Ref("auxl", 3, (1,))]
    assert list(heif_multiple_alpha.detect(parse(s.heif(depth, refs)))) == []
    # iden loops are bounded
    loop = [s._image(1), Item(2, "iden"), Item(3, "iden"), s._image(4, a, s.ALPHA)]
    refs = [Ref("dimg", 2, (3,)), Ref("dimg", 3, (2,)), Ref("auxl", 4, (2,))]
    assert list(heif_multiple_alpha.detect(parse(s.heif(loop, refs)))) == []


def test_sniff_brands() -> None:
    assert h.sniff(s.box("ftyp", b"mif1" + bytes(4) + b"mif1")[:64])
    assert h.sniff(s.box("ftyp", b"isom" + bytes(4) + b"isomavif")[:64])
    assert not h.sniff(s.box("ftyp", b"isom" + bytes(4) + b"isommp42")[:64])
    assert not h.sniff(b"\x00\x00\x00\x08ftyp")


@pytest.mark.parametrize("config", [s.av1c, s.hvcc])
def test_depth_from_codec_configuration(config: Callable[[int], bytes]) -> None:
    items = [Item(1, "iovl", (s.ispe(64, 64),)), s._image(2, config(10)),
             s._image(3, config(8), s.ALPHA)]
    parsed = parse(s.heif(items, [Ref("dimg", 1, (2,)), Ref("auxl", 3, (2,))]))
    hf = parsed.structure
    assert isinstance(hf, h.HeifFile)
    assert (hf.depth(2), hf.depth(3), hf.depth(1)) == (10, 8, None)
    [hit] = heif_overlay_alpha_depth.detect(parsed)
    assert hit.detail["alpha"] == 3
    items[1] = s._image(2, config(12), s.pixi(8, 8, 8))  # pixi wins over the codec record
    assert list(heif_overlay_alpha_depth.detect(parse(s.heif(items, [
        Ref("dimg", 1, (2,)), Ref("auxl", 3, (2,))])))) == []
