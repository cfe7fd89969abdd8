"""GIF block walk and the two android-gif-drawable detectors."""

from __future__ import annotations

import pytest

from spywall.detectors import gif_frame_resize, gif_zero_area_frame
from spywall.errors import FormatError
from spywall.formats import gif as g
from spywall.formats.base import ParseContext, Parsed
from spywall.limits import Budget, Limits
from spywall.samples import gif as s
from spywall.samples.gif import FrameSpec


def parse(data: bytes, limits: Limits | None = None) -> Parsed:
    return g.parse(data, ParseContext(Budget(limits or Limits())))


def structure(data: bytes) -> g.GifFile:
    gf = parse(data).structure
    assert isinstance(gf, g.GifFile)
    return gf


def test_poc_shape_is_parsed() -> None:
    data = s.poc_11932()
    parsed = parse(data)
    gf = parsed.structure
    assert isinstance(gf, g.GifFile)
    assert (gf.version, gf.width, gf.height, gf.global_colours) == ("89a", 24, 10, 4)
    assert [(f.width, f.height) for f in gf.frames] == [(8, 21), (0x0F1C, 0), (0x0F1C, 0),
                                                        (8, 8)]
    assert gf.frames[0].data_bytes == 64
    assert gf.extensions == 4
    assert gf.trailer
    assert parsed.logical_end == len(data)
    assert data[gf.frames[2].offset] == 0x2C


def test_pillow_animation_frames_and_end() -> None:
    sample = next(x for x in s.samples() if x.name == "benign-pillow-animated.gif")
    parsed = parse(sample.data + b"junk")
    gf = parsed.structure
    assert isinstance(gf, g.GifFile)
    assert len(gf.frames) == 6
    assert any(f.area < gf.width * gf.height for f in gf.frames[1:])
    assert all(f.lzw_min_code_size in range(2, 9) for f in gf.frames)
    assert parsed.logical_end == len(sample.data)


def test_truncated_gif_keeps_its_frames() -> None:
    data = s.poc_11932()
    third = structure(data).frames[2].offset
    cut = data[: third + 11]  # the third descriptor, then its data cut short
    parsed = parse(cut)
    gf = parsed.structure
    assert isinstance(gf, g.GifFile)
    assert parsed.logical_end is None
    assert parsed.warnings
    assert not gf.trailer
    assert [f.area for f in gf.frames].count(0) == 2
    assert [h.severity for h in gif_zero_area_frame.detect(parsed)] == [None, None]


def test_unknown_block_ends_the_gif() -> None:
    data = s.gif((4, 4), [FrameSpec(4, 4)], trailer=False) + b"\x99rest"
    parsed = parse(data)
    assert parsed.logical_end == len(data) - 5
    assert "starts no GIF block" in parsed.warnings[0]


def test_not_a_gif() -> None:
    with pytest.raises(FormatError):
        parse(b"GIF90a" + bytes(20))


def test_sub_blocks_of_any_length() -> None:
    data = s.gif((4, 4), [FrameSpec(4, 4, data=bytes(1000))])
    assert structure(data).frames[0].data_bytes == 1000


def test_block_budget() -> None:
    data = s.gif((4, 4), [FrameSpec(1, 1)] * 50)
    parsed = parse(data, Limits(max_elements=20))
    # The frames read before the cap are kept (detectors run on them), and the cap is
    # reported, so the engine fails closed.
    assert len(parsed.incomplete) == 1
    assert "elements" in parsed.incomplete[0]
    gf = parsed.structure
    assert isinstance(gf, g.GifFile)
    assert 0 < len(gf.frames) < 50


def test_single_zero_area_is_high_two_are_critical() -> None:
    one = parse(s.gif((8, 8), [FrameSpec(8, 8), FrameSpec(0, 5)]))
    assert [h.severity and h.severity.value for h in gif_zero_area_frame.detect(one)] == [
        "high"]
    two = parse(s.gif((8, 8), [FrameSpec(0, 0), FrameSpec(5, 0)]))
    hits = list(gif_zero_area_frame.detect(two))
    assert [h.detail["frame"] for h in hits] == [0, 1]
    assert all(h.severity is None for h in hits)


@pytest.mark.parametrize(("frames", "expected"), [
    ([FrameSpec(8, 8), FrameSpec(30, 30, code_size=9)], ["high"]),
    ([FrameSpec(8, 8), FrameSpec(30, 30, code_size=1)], ["high"]),
    ([FrameSpec(8, 8), FrameSpec(30, 30, code_size=8)], ["medium"]),
    ([FrameSpec(8, 8), FrameSpec(4, 4, code_size=12)], []),      # invalid but not larger
    ([FrameSpec(40, 40), FrameSpec(4, 4)], []),                  # the first frame is not judged
    ([FrameSpec(8, 8), FrameSpec(10, 10, left=11, top=10, code_size=3)], ["medium"]),
    ([FrameSpec(8, 8), FrameSpec(0x0F1C, 0, code_size=12)], []),  # zero area: other detector
])
def test_frame_resize_conditions(frames: list[FrameSpec], expected: list[str]) -> None:
    parsed = parse(s.gif((20, 20), frames))
    got = [(h.severity or gif_frame_resize.DETECTOR.info.severity).value
           for h in gif_frame_resize.detect(parsed)]
    assert got == expected
