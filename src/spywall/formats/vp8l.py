"""VP8L, the WebP lossless bit stream, read as far as the main image's prefix codes.

Read in the order libwebp's decoder reads it: header (0x2f, 14+14 bits size, alpha bit, 3
bits version 0); transforms (predictor, colour, subtract-green, colour indexing, each at
most once), whose sub-images are decoded because what follows them in the bit stream
can only be reached that way; colour cache bits (1..11); an optional entropy image (meta
prefix codes: number of groups = largest meta code + 1); then five prefix codes per group.
For every prefix code of every group, in the main image and in every sub-image, the
number of table entries libwebp builds is simulated (``huffman_tables.simulate``). The
main image's pixel data is never decoded.

Bounds: sub-image pixels are capped per sub-image (``MAX_SUBIMAGE_PIXELS``), per file
(``MAX_DECODED_PIXELS``) and for the one image whose values are kept, the entropy image
(``MAX_KEPT_PIXELS``), and charged to the budget; pixels are only stored for the entropy
image; a sub-image whose codes all have one symbol costs no loop at all; the time budget
is checked while decoding; the bit reader raises ``TruncatedError`` past its end.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import msgspec

from spywall.errors import FormatError, LimitExceeded, TruncatedError
from spywall.formats import huffman_tables as ht
from spywall.formats.base import ParseContext
from spywall.formats.huffman_tables import BitReader

SIGNATURE = 0x2F
CODE_NAMES = ("green", "red", "blue", "alpha", "distance")
ALPHABETS = (256 + 24, 256, 256, 256, 40)
# libwebp's fixed block per group: 630 per red/blue/alpha, 410 distance, 654 green,
# plus the colour cache's extra green entries (kTableSize = 2954 + CACHE_EXTRA[bits]).
BUDGETS = (654, 630, 630, 630, 410)
CACHE_EXTRA = (0, 2, 4, 8, 16, 32, 64, 128, 258, 514, 1026, 2050)
MAX_CACHE_BITS = 11
CODE_LENGTH_ORDER = (17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
TRANSFORMS = ("predictor", "colour", "subtract-green", "colour-indexing")
MAX_SUBIMAGE_PIXELS = 16 << 20
MAX_DECODED_PIXELS = 64 << 20
MAX_KEPT_PIXELS = 4 << 20
MAX_NOTABLE = 64
# (dx, dy) of the 120 short distance codes (WebP lossless spec, "LZ77 backward reference").
_DXDY = (
    "0,1 1,0 1,1 -1,1 0,2 2,0 1,2 -1,2 2,1 -2,1 2,2 -2,2 0,3 3,0 1,3 -1,3 3,1 -3,1 2,3 -2,3 "
    "3,2 -3,2 0,4 4,0 1,4 -1,4 4,1 -4,1 3,3 -3,3 2,4 -2,4 4,2 -4,2 0,5 3,4 -3,4 4,3 -4,3 5,0 "
    "1,5 -1,5 5,1 -5,1 2,5 -2,5 5,2 -5,2 4,4 -4,4 3,5 -3,5 5,3 -5,3 0,6 6,0 1,6 -1,6 6,1 -6,1 "
    "2,6 -2,6 6,2 -6,2 4,5 -4,5 5,4 -5,4 3,6 -3,6 6,3 -6,3 0,7 7,0 1,7 -1,7 5,5 -5,5 7,1 -7,1 "
    "4,6 -4,6 6,4 -6,4 2,7 -2,7 7,2 -7,2 3,7 -3,7 7,3 -7,3 5,6 -5,6 6,5 -6,5 8,0 4,7 -4,7 7,4 "
    "-7,4 8,1 8,2 6,6 -6,6 8,3 5,7 -5,7 7,5 -7,5 8,4 6,7 -6,7 7,6 -7,6 8,5 7,7 -7,7 8,6 8,7"
)
DISTANCE_MAP = tuple(tuple(int(v) for v in p.split(",")) for p in _DXDY.split())
# Code-length symbols 16 (repeat the previous non-zero length), 17 and 18 (zeros):
# extra bits, base repeat count; _RUNS[length][count]: every run a repeat can write.
_REPEAT_BITS = (2, 3, 7)
_REPEAT_BASE = (3, 3, 11)
_RUNS = tuple(tuple(bytes([n]) * r for r in range(139)) for n in range(16))


def block_size(cache_bits: int) -> int:
    """libwebp's kTableSize: table entries reserved per group of five codes."""
    return sum(BUDGETS) + CACHE_EXTRA[cache_bits]


def budget(code: int, cache_bits: int) -> int:
    return BUDGETS[code] + (CACHE_EXTRA[cache_bits] if code == 0 else 0)


class CodeBuild(msgspec.Struct, frozen=True):
    code: str
    size: int
    budget: int
    valid: bool
    problem: str = ""


class GroupBuild(msgspec.Struct, frozen=True):
    """The table builds of one group of five prefix codes (fewer if reading stopped)."""

    index: int
    offset: int
    codes: tuple[CodeBuild, ...]
    block: int
    referenced: bool

    @property
    def total(self) -> int:
        return sum(c.size for c in self.codes)

    @property
    def over(self) -> tuple[CodeBuild, ...]:
        return tuple(c for c in self.codes if c.size > c.budget)


class ImageCodes(msgspec.Struct, frozen=True):
    """Prefix codes of one image in the stream: the main image or a sub-image.

    ``notable`` keeps the groups (at most ``MAX_NOTABLE``) whose build exceeds a code's
    budget or the group's block; ``over_groups`` counts all of them. ``past_allocation``
    is true when the running table use went past ``groups * block`` (a write past the end
    of the whole allocation in vulnerable libwebp).
    """

    role: str
    width: int
    height: int
    cache_bits: int
    groups: int
    groups_read: int
    notable: tuple[GroupBuild, ...]
    over_groups: int
    past_allocation: bool


class Bitstream(msgspec.Struct, frozen=True):
    offset: int
    source: str
    frame: int | None
    width: int
    height: int
    has_alpha: bool
    transforms: tuple[str, ...]
    images: tuple[ImageCodes, ...]
    error: str = ""
    pixels: int = 0


def _prefix_value(sym: int, br: BitReader) -> int:
    if sym < 4:
        return sym + 1
    extra = (sym - 2) >> 1
    return ((2 + (sym & 1)) << extra) + br.read(extra) + 1


def _subsample(size: int, bits: int) -> int:
    return (size + (1 << bits) - 1) >> bits


class _Stream:
    """State of one VP8L bit stream being read."""

    def __init__(self, br: BitReader, ctx: ParseContext) -> None:
        self.br = br
        self.ctx = ctx
        self.images: list[ImageCodes] = []
        self.transforms: list[str] = []
        self.pixels_left = MAX_DECODED_PIXELS
        self.xsize = 0
        self.height = 0

    # -- prefix codes ----------------------------------------------------------------
    def code_lengths(self, alphabet: int) -> bytes:
        br = self.br
        if br.read(1):  # simple code: one or two symbols, symbols past the alphabet ignored
            lengths = bytearray(alphabet)
            two = br.read(1)
            sym = br.read(8 if br.read(1) else 1)
            syms = (sym, br.read(8)) if two else (sym,)
            for s in syms:
                if s < alphabet:
                    lengths[s] = 1
            return bytes(lengths)
        cl = bytearray(len(CODE_LENGTH_ORDER))
        count = br.read(4) + 4
        packed = br.read(3 * count)  # the code-length code's lengths, 3 bits each
        for i in range(count):
            cl[CODE_LENGTH_ORDER[i]] = packed >> 3 * i & 7
        if not ht.simulate(cl, ht.LENGTHS_ROOT_BITS).valid:
            raise FormatError("a code-length code is not a valid prefix code")
        dec = ht.small_decoder(bytes(cl))
        max_symbol = alphabet
        if br.read(1):
            max_symbol = 2 + br.read(2 + 2 * br.read(3))
            if max_symbol > alphabet:
                raise FormatError(f"a prefix code of {max_symbol} symbols in an alphabet of "
                                  f"{alphabet}")
        return _read_lengths(br, dec, alphabet, max_symbol)

    def groups(self, role: str, cache_bits: int, count: int,
               metas: set[int] | None = None) -> list[bytes]:
        """Read ``count`` groups, simulating every table build; lengths of group 0 kept.

        ``metas``: when libwebp remaps group indices (too many groups), the ones the
        entropy image uses; the others are read without any table being written.
        """
        block = block_size(cache_bits)
        allocated = block * (count if metas is None else len(metas))

        def referenced(index: int) -> bool:
            return metas is None or index in metas

        notable: list[GroupBuild] = []
        over = done = used = 0
        past = False
        first: list[bytes] = []
        builds: list[CodeBuild] = []
        start = self.br.offset
        try:
            for index in range(count):
                self.ctx.budget.charge_elements(5)
                builds, start, ref = [], self.br.offset, referenced(index)
                for j, alphabet in enumerate(ALPHABETS):
                    lengths = self.code_lengths(alphabet + ((1 << cache_bits) if j == 0
                                                            and cache_bits else 0))
                    sim = ht.simulate(lengths)
                    builds.append(CodeBuild(CODE_NAMES[j], sim.size, budget(j, cache_bits),
                                            sim.valid, sim.problem))
                    used += sim.size if ref else 0
                    past = past or used > allocated
                    if not sim.valid:
                        raise FormatError(f"{role}, group {index}: the {CODE_NAMES[j]} code is "
                                          f"not a valid prefix code ({sim.problem or 'no table'})")
                    if index == 0:
                        first.append(lengths)
                group = GroupBuild(index, start, tuple(builds), block, ref)
                builds = []
                done += 1
                if group.over or group.total > block:
                    over += 1
                    if len(notable) < MAX_NOTABLE:
                        notable.append(group)
        finally:
            if builds:
                group = GroupBuild(done, start, tuple(builds), block, referenced(done))
                if group.over or group.total > block:
                    over += 1
                    notable.append(group)
            self.images.append(ImageCodes(role, self.xsize, self.height, cache_bits, count,
                                          done, tuple(notable), over, past))
        return first

    def cache_bits(self) -> int:
        if not self.br.read(1):
            return 0
        bits = self.br.read(4)
        if not 1 <= bits <= MAX_CACHE_BITS:
            raise FormatError(f"colour cache bits {bits} (WebP allows 1..{MAX_CACHE_BITS})")
        return bits

    # -- sub-images ------------------------------------------------------------------
    def sub_image(self, role: str, width: int, height: int, keep: bool) -> array[int]:
        """Decode a sub-image (no transforms, one group); pixels kept only if ``keep``."""
        n = width * height
        if n > min(self.pixels_left, MAX_SUBIMAGE_PIXELS) or (keep and n > MAX_KEPT_PIXELS):
            raise LimitExceeded(f"{role} of {width}x{height} over the pixel cap")
        self.pixels_left -= n
        self.ctx.budget.charge_elements(1 + n // 1024)
        saved = self.xsize, self.height
        self.xsize, self.height = width, height
        cache_bits = self.cache_bits()
        lengths = self.groups(role, cache_bits, 1)
        self.xsize, self.height = saved
        decs = [ht.decoder(lens) for lens in lengths]
        return _decode_pixels(self.br, decs, width, n, cache_bits, keep, self.ctx)

    def transform(self, kind: int) -> None:
        br = self.br
        if kind in (0, 1):
            bits = br.read(3) + 2
            self.sub_image(f"{TRANSFORMS[kind]} transform image", _subsample(self.xsize, bits),
                           _subsample(self.height, bits), keep=False)
        elif kind == 3:
            colours = br.read(8) + 1
            self.sub_image("colour-indexing palette", colours, 1, keep=False)
            bits = 0 if colours > 16 else 1 if colours > 4 else 2 if colours > 2 else 3
            self.xsize = _subsample(self.xsize, bits)

    def level0(self, width: int, height: int) -> None:
        """An image stream with transforms and meta prefix codes (main image, ALPH)."""
        self.xsize, self.height = width, height
        br = self.br
        seen = 0
        while br.read(1):
            kind = br.read(2)
            if seen & (1 << kind):
                raise FormatError(f"{TRANSFORMS[kind]} transform repeated (WebP allows each once)")
            seen |= 1 << kind
            self.transforms.append(TRANSFORMS[kind])
            self.transform(kind)
        cache_bits = self.cache_bits()
        count, used = 1, None
        if br.read(1):
            bits = br.read(3) + 2
            pixels = self.sub_image("entropy image", _subsample(self.xsize, bits),
                                    _subsample(height, bits), keep=True)
            metas = {(p >> 8) & 0xFFFF for p in pixels}
            count = max(metas) + 1
            # libwebp reads unreferenced groups without a table once there are too many.
            if count > 1000 or count > self.xsize * height:
                used = metas
        self.groups("main image", cache_bits, count, used)


def _read_lengths(br: BitReader, dec: ht.Decoder, alphabet: int, max_symbol: int) -> bytes:
    """Decode the code lengths of a normal code (hot loop: the bit window is held in
    locals, refilled 8 bytes at a time and handed back to ``br``; lengths are collected
    as ready-made byte strings and joined once)."""
    table, mask = dec.table, (1 << dec.bits) - 1
    data, pos, end = br.data, br.pos, br.end
    val, nbits = br.val, br.nbits
    sym, prev = 0, 8
    out: list[bytes] = []
    put = out.append
    try:
        while sym < alphabet and max_symbol > 0:
            max_symbol -= 1
            if nbits < 32 and pos < end:
                take = min(8, end - pos)
                val |= int.from_bytes(data[pos : pos + take], "little") << nbits
                nbits += take * 8
                pos += take
            e = table[val & mask]
            k = e & 15
            if k > nbits:
                raise TruncatedError(f"the compressed data ends early, at offset {end}")
            val >>= k
            nbits -= k
            if e < 256:  # a literal length 0..15
                n = e >> 4
                put(_RUNS[n][1])
                sym += 1
                if n:
                    prev = n
                continue
            n = (e >> 4) - 16  # 16: repeat the previous non-zero length; 17, 18: zeros
            k = _REPEAT_BITS[n]
            if k > nbits:
                raise TruncatedError(f"the compressed data ends early, at offset {end}")
            repeat = (val & ((1 << k) - 1)) + _REPEAT_BASE[n]
            val >>= k
            nbits -= k
            sym += repeat
            if sym > alphabet:
                raise FormatError("a code length repeat runs past the end of its alphabet")
            put(_RUNS[0 if n else prev][repeat])
    finally:
        br.pos, br.val, br.nbits = pos, val, nbits
    return b"".join(out).ljust(alphabet, b"\0")


def _backref(br: BitReader, g: int, dist: ht.Decoder, width: int, pos: int, n: int
             ) -> tuple[int, int]:
    """(distance, length) of an LZ77 copy whose length prefix is green symbol ``g``."""
    length = _prefix_value(g - 256, br)
    code = _prefix_value(br.decode(dist), br)
    if code > 120:
        d = code - 120
    else:
        dx, dy = DISTANCE_MAP[code - 1]
        d = max(1, dx + dy * width)
    if d > pos or length > n - pos:
        raise FormatError(f"a copy of {length} pixels from {d} back reaches outside the image")
    return d, length


def _decode_pixels(br: BitReader, decs: Sequence[ht.Decoder], width: int, n: int,
                   cache_bits: int, keep: bool, ctx: ParseContext) -> array[int]:
    """LZ77 + colour cache decoding of a sub-image; pixel values only if ``keep``."""
    green, red, blue, alpha, dist = decs
    if not (green.bits or red.bits or blue.bits or alpha.bits):
        # One symbol per code: every pixel is the same and costs no bits (a copy at pixel
        # 0 would be out of range, a cache that only ever held zeros stays zero).
        g, r, b, a = (d.table[0] >> 4 for d in (green, red, blue, alpha))
        if 256 <= g < 280:
            raise FormatError("a copy from earlier pixels at the first pixel of an image")
        return array("I", [a << 24 | r << 16 | g << 8 | b if g < 256 else 0]) * (n * keep)
    if not keep:
        _skip_pixels(br, decs, width, n, ctx)
        return array("I")
    out = array("I", bytes(4 * n))
    cache = [0] * (1 << cache_bits) if cache_bits else []
    shift = 32 - cache_bits
    # Hot loop: the bit window is held in locals (as in _skip_pixels).
    codes = [(d.table, (1 << d.bits) - 1, at)
             for d, at in ((green, 8), (red, 16), (blue, 0), (alpha, 24))]
    val, nbits = br.val, br.nbits
    pos = steps = 0
    while pos < n:
        steps += 1
        if steps & 0xFFF == 0:
            ctx.budget.check_time()
        if nbits < 64:
            br.val, br.nbits = val, nbits
            br.fill()
            val, nbits = br.val, br.nbits
        px = 0
        for table, mask, at in codes:
            e = table[val & mask]
            if e & 15 > nbits:
                raise TruncatedError(f"the compressed data ends early, at offset {br.end}")
            val >>= e & 15
            nbits -= e & 15
            if e >= 256 << 4:  # green 256..: a back reference or a colour cache index
                break
            px |= (e >> 4) << at
        else:
            out[pos] = px
            if cache:
                cache[((0x1E35A7BD * px) & 0xFFFFFFFF) >> shift] = px
            pos += 1
            continue
        g = e >> 4
        if g < 280:
            br.val, br.nbits = val, nbits
            d, length = _backref(br, g, dist, width, pos, n)
            val, nbits = br.val, br.nbits
            for i in range(pos, pos + length):
                out[i] = px = out[i - d]
                if cache:
                    cache[((0x1E35A7BD * px) & 0xFFFFFFFF) >> shift] = px
            pos += length
        else:
            out[pos] = px = cache[g - 280]
            cache[((0x1E35A7BD * px) & 0xFFFFFFFF) >> shift] = px
            pos += 1
    br.val, br.nbits = val, nbits
    return out


def _skip_pixels(br: BitReader, decs: Sequence[ht.Decoder], width: int, n: int,
                 ctx: ParseContext) -> None:
    """Move the bit reader past a sub-image's pixels without keeping them (hot loop:
    the bit window is held in locals and handed back to ``br`` around copies)."""
    green, red, blue, alpha, dist = decs
    gt, gm = green.table, (1 << green.bits) - 1
    rest = [(d.table, (1 << d.bits) - 1) for d in (red, blue, alpha) if d.bits]
    val, nbits = br.val, br.nbits
    pos = steps = 0
    while pos < n:
        steps += 1
        if steps & 0xFFF == 0:
            ctx.budget.check_time()
        if nbits < 64:
            br.val, br.nbits = val, nbits
            br.fill()
            val, nbits = br.val, br.nbits
        e = gt[val & gm]
        if e & 15 > nbits:
            raise TruncatedError(f"the compressed data ends early, at offset {br.end}")
        val >>= e & 15
        nbits -= e & 15
        g = e >> 4
        if g < 256:
            for table, mask in rest:
                e = table[val & mask]
                if e & 15 > nbits:
                    raise TruncatedError(f"the compressed data ends early, at offset {br.end}")
                val >>= e & 15
                nbits -= e & 15
            pos += 1
        elif g < 280:
            br.val, br.nbits = val, nbits
            pos += _backref(br, g, dist, width, pos, n)[1]
            val, nbits = br.val, br.nbits
        else:
            pos += 1
    br.val, br.nbits = val, nbits


def read_stream(data: bytes, start: int, end: int, ctx: ParseContext, source: str,
                frame: int | None, size: tuple[int, int] | None = None,
                pixels_left: int = MAX_DECODED_PIXELS) -> Bitstream:
    """Read a VP8L chunk (``size=None``: with its header) or headerless ALPH data.

    Problems stop the reading; what was simulated until then is kept and the problem
    is returned in ``Bitstream.error`` (a rejected tree is reported after its build).
    """
    br = BitReader(data, start, end)
    width, height = size or (0, 0)
    alpha = True
    stream = _Stream(br, ctx)
    stream.pixels_left = pixels_left
    error = ""
    try:
        if size is None:
            if br.read(8) != SIGNATURE:
                raise FormatError("the signature byte is not 0x2f")
            width, height = br.read(14) + 1, br.read(14) + 1
            alpha = bool(br.read(1))
            if version := br.read(3):
                raise FormatError(f"version {version} (WebP defines only 0)")
        stream.level0(width, height)
    except (FormatError, LimitExceeded) as exc:
        error = str(exc) if isinstance(exc, FormatError) else f"limit: {exc}"
    return Bitstream(start, source, frame, width, height, alpha, tuple(stream.transforms),
                     tuple(stream.images), error, pixels_left - stream.pixels_left)
