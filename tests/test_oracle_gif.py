"""GIF frame geometry against an independent reader: Pillow's GifImagePlugin.

For every GIF sample and for random crafted GIFs, Pillow walks the frames (decoding each,
truncated LZW data tolerated): its frame count, each frame's extent, LZW minimum code size
and data offset must equal spywall's reading. Where Pillow grows its raster past the
logical screen for a later frame, gif-frame-resize must flag that frame; where Pillow
cannot load a frame because its tile is empty (zero area), gif-zero-area-frame must flag it.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.detectors import gif_frame_resize, gif_zero_area_frame
from spywall.formats import gif
from spywall.formats.base import ParseContext
from spywall.limits import Budget
from spywall.samples import all_samples
from spywall.samples.gif import FrameSpec
from spywall.samples.gif import gif as make_gif

GIFS = [s for s in all_samples() if s.data[:6] in (b"GIF87a", b"GIF89a")]


def pillow_frames(data: bytes) -> tuple[int, list[tuple[tuple[int, ...], int, int, bool]],
                                        int | None]:
    """(frame count, per frame reached: (extent, code size, data offset, raster grew),
    index of the frame Pillow could not load or None)."""
    from PIL import Image, ImageFile

    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        im = Image.open(io.BytesIO(data))
        count = getattr(im, "n_frames", 1)
        out: list[tuple[tuple[int, ...], int, int, bool]] = []
        for i in range(count):
            size = im.size
            try:
                im.seek(i)
            except ValueError:  # loading frame i - 1 failed
                return count, out, i - 1
            tile = im.tile[0]
            out.append((tuple(im.dispose_extent), tile[3][0], tile[2], im.size != size))
        try:
            im.load()
        except ValueError:
            return count, out, count - 1
        return count, out, None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def check_against_pillow(data: bytes, label: str) -> None:
    parsed = gif.parse(data, ParseContext(Budget()))
    g = parsed.structure
    assert isinstance(g, gif.GifFile)
    count, seen, failed = pillow_frames(data)
    assert count == len(g.frames), label
    resized = {h.detail["frame"] for h in gif_frame_resize.detect(parsed)}
    zero = {h.detail["frame"] for h in gif_zero_area_frame.detect(parsed)}
    for f, (extent, code, offset, grew) in zip(g.frames, seen, strict=False):
        assert extent == (f.left, f.top, f.left + f.width, f.top + f.height), label
        assert code == f.lzw_min_code_size, label
        assert offset == f.offset + 10 + 3 * f.local_colours + 1, label
        if grew and f.index > 0 and f.area:
            assert f.index in resized, (label, f.index)
    if failed is not None:
        assert failed in zero, (label, failed)


@pytest.mark.parametrize("sample", GIFS, ids=[s.name for s in GIFS])
def test_gif_samples_agree_with_pillow(sample: object) -> None:
    check_against_pillow(sample.data, sample.name)  # type: ignore[attr-defined]


def test_there_are_crafted_and_benign_gifs() -> None:
    assert any(s.expected for s in GIFS)
    assert any(not s.expected for s in GIFS)


FRAME = st.builds(FrameSpec, st.integers(0, 40), st.integers(0, 40), st.integers(0, 30),
                  st.integers(0, 30), st.sampled_from([2, 3, 8, 9, 12]))


@settings(max_examples=120, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.lists(FRAME, min_size=1, max_size=5))
def test_random_gifs_agree_with_pillow(w: int, h: int, frames: list[FrameSpec]) -> None:
    check_against_pillow(make_gif((w, h), frames), f"{w}x{h} {frames}")
