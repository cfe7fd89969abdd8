"""GIF samples: the CVE-2019-11932 proof-of-concept shape and CVE-2019-11933 resize
variants, built block by block from the GIF89a layout; benign controls written by Pillow.

The crafted frames carry a few bytes of LZW filler: the block structure the detectors
judge, not decodable pictures.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Sequence

import msgspec

from spywall.samples import Sample
from spywall.samples.containers import zip_of


class FrameSpec(msgspec.Struct, frozen=True):
    width: int
    height: int
    left: int = 0
    top: int = 0
    code_size: int = 2
    data: bytes = b"\x02\x4c\x01"


def sub_blocks(data: bytes) -> bytes:
    out = b"".join(bytes((len(data[i : i + 255]),)) + data[i : i + 255]
                   for i in range(0, len(data), 255))
    return out + b"\x00"


def gif(screen: tuple[int, int], frames: Sequence[FrameSpec], trailer: bool = True) -> bytes:
    """A GIF89a with a 4-entry global colour table and a graphic control per frame."""
    out = b"GIF89a" + struct.pack("<HHBBB", screen[0], screen[1], 0x81, 0, 0)
    out += bytes((0, 0, 0, 255, 255, 255, 200, 0, 0, 0, 200, 0))
    for f in frames:
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"
        out += b"\x2c" + struct.pack("<HHHHB", f.left, f.top, f.width, f.height, 0)
        out += bytes((f.code_size,)) + sub_blocks(f.data)
    return out + (b"\x3b" if trailer else b"")


def poc_11932() -> bytes:
    """24x10 screen, an 8x21 first frame, two 0x0F1C x 0 frames, then a normal frame."""
    return gif((24, 10), [FrameSpec(8, 21, data=bytes(64)), FrameSpec(0x0F1C, 0),
                          FrameSpec(0x0F1C, 0), FrameSpec(8, 8)])


def _crafted() -> Iterator[Sample]:
    yield Sample("cve-2019-11932-double-free.gif", poc_11932(),
                 frozenset({"gif-zero-area-frame"}), "public proof-of-concept shape")
    yield Sample("gif-single-zero-area.gif",
                 gif((16, 16), [FrameSpec(16, 16), FrameSpec(0, 16), FrameSpec(4, 4)]),
                 frozenset({"gif-zero-area-frame"}), "one zero-area frame (high)")
    yield Sample("cve-2019-11933-resize.gif",
                 gif((24, 10), [FrameSpec(8, 8), FrameSpec(200, 200, code_size=12),
                                FrameSpec(24, 10, data=bytes(600))]),
                 frozenset({"gif-frame-resize"}),
                 "a later 200x200 frame with LZW minimum code size 12")
    yield Sample("gif-frame-past-screen.gif",
                 gif((24, 10), [FrameSpec(24, 10), FrameSpec(8, 8, left=20, top=6)]),
                 frozenset({"gif-frame-resize"}), "a later frame past the screen (medium)")
    stage = zip_of({"stage.dex": b"dex\n035\x00" + bytes(64)})
    yield Sample("gif-appended-zip.gif", gif((8, 8), [FrameSpec(8, 8)]) + stage,
                 frozenset({"appended-archive"}), "archive after the trailer")
    yield Sample("gif-crafted-benign.gif", gif((8, 8), [FrameSpec(8, 8), FrameSpec(2, 2, 6, 6)]),
                 frozenset(), "frames inside the screen")


def _pillow() -> Iterator[Sample]:
    from PIL import Image, ImageDraw

    frames = []
    for i in range(6):
        im = Image.new("P", (64, 48), 0)
        im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
        ImageDraw.Draw(im).rectangle((4 + 6 * i, 10, 12 + 6 * i, 20), fill=1 + i % 3)
        frames.append(im)
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0,
                   optimize=True, comment=b"spywall benign control")
    yield Sample("benign-pillow-animated.gif", buf.getvalue(), frozenset(),
                 "Pillow crops later frames to the changed area: frames smaller than the screen")
    for name, opts in (("still", {}), ("interlaced", {"interlace": True})):
        buf = io.BytesIO()
        Image.new("RGB", (33, 17), (20, 200, 90)).save(buf, "GIF", **opts)
        yield Sample(f"benign-pillow-{name}.gif", buf.getvalue(), frozenset())
    buf = io.BytesIO()
    Image.new("1", (9, 9), 1).save(buf, "GIF")
    yield Sample("benign-pillow-1bit.gif", buf.getvalue(), frozenset())


def samples() -> Iterator[Sample]:
    yield from _crafted()
    yield from _pillow()
