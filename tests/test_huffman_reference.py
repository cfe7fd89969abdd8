"""The fast VP8L primitives against slow, obviously-correct references (hypothesis).

The table-size simulation is compared with a per-code walk of libwebp's bit-reversed key
(``GetNextKey``), as ``BuildHuffmanTable`` does it; the lookup-table decoder with a
bit-by-bit canonical decoder; the code-length reader (table decoding, 64-bit refills,
runs joined at the end) with a reader that takes one bit at a time.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.errors import SpywallError
from spywall.formats import huffman_tables as ht
from spywall.formats import vp8l
from spywall.formats.base import ParseContext
from spywall.limits import Budget
from spywall.samples import webp as sw


# -- the table-size simulation --------------------------------------------------------------
def _ref_next_key(key: int, length: int) -> int:
    step = 1 << (length - 1)
    while key & step:
        step >>= 1
    return (key & (step - 1)) + step if step else key


def _ref_simulate(hist: list[int], root_bits: int) -> tuple[int, bool, str]:
    """libwebp's sizing, one code at a time (no shortcut for codes within the root)."""
    count = hist + [0] * (16 - len(hist))
    symbols = sum(count[1:])
    if symbols == 0:
        return 0, False, "no symbol has a code"
    for n in range(1, 15):
        if count[n] > 1 << n:
            return 0, False, f"{count[n]} codes of length {n}"
    total = 1 << root_bits
    if symbols == 1:
        return total, True, ""
    num_open = num_nodes = 1
    key, low = 0, -1
    for n in range(1, 16):
        num_open = (num_open << 1) - count[n]
        num_nodes += num_open + count[n]
        if num_open < 0:
            return total, False, "over-subscribed"
        while count[n] > 0:
            if n > root_bits and key & (total_mask := (1 << root_bits) - 1) != low:
                length, left = n, 1 << (n - root_bits)
                while length < 15:
                    left -= count[length]
                    if left <= 0:
                        break
                    length += 1
                    left <<= 1
                total += 1 << (length - root_bits)
                low = key & total_mask
            key = _ref_next_key(key, n)
            count[n] -= 1
    if num_nodes != 2 * symbols - 1:
        return total, False, "incomplete tree"
    return total, True, ""


@st.composite
def histograms(draw: st.DrawFn) -> list[int]:
    """Near-complete histograms (the interesting ones), or any small counts."""
    if draw(st.booleans()):
        return draw(st.lists(st.integers(0, 40), min_size=1, max_size=16))
    hist, room = [0] * 16, 1 << 15  # free leaves at depth 15
    for n in draw(st.lists(st.integers(1, 15), max_size=600)):
        if room >= 1 << (15 - n):
            hist[n] += 1
            room -= 1 << (15 - n)
    n = draw(st.integers(1, 15))
    hist[n] += draw(st.integers(-1, 3)) if hist[n] else draw(st.integers(0, 3))
    return hist


@settings(max_examples=1500, deadline=None)
@given(histograms(), st.sampled_from((ht.ROOT_BITS, ht.LENGTHS_ROOT_BITS)))
def test_simulation_matches_the_per_code_walk(hist: list[int], root_bits: int) -> None:
    sim = ht.simulate_histogram(hist, root_bits)
    assert (sim.size, sim.valid, sim.problem) == _ref_simulate(list(hist), root_bits)


def test_crafted_histograms_match_the_per_code_walk() -> None:
    for hist in (sw.GREEN, sw.RED, sw.DISTANCE, [0] * 9 + [256, 300]):
        sim = ht.simulate_histogram(hist)
        assert (sim.size, sim.valid, sim.problem) == _ref_simulate(list(hist), ht.ROOT_BITS)


# -- the lookup-table decoder ---------------------------------------------------------------
@st.composite
def complete_lengths(draw: st.DrawFn) -> list[int]:
    """Code lengths of a random complete code over a random alphabet (leaves split)."""
    leaves = [0]
    for _ in range(draw(st.integers(1, 60))):
        i = draw(st.integers(0, len(leaves) - 1))
        if leaves[i] < ht.MAX_LENGTH:
            leaves += [leaves.pop(i) + 1] * 2
    lengths = leaves + [0] * draw(st.integers(0, 30))
    return draw(st.permutations(lengths))


def _canonical(lengths: list[int]) -> dict[tuple[int, int], int]:
    """(code as read bit by bit, length) -> symbol."""
    out, code, prev = {}, 0, 0
    for n, s in sorted((n, s) for s, n in enumerate(lengths) if n):
        code <<= n - prev
        prev = n
        out[(code, n)] = s
        code += 1
    return out


def _ref_decode(br: ht.BitReader, codes: dict[tuple[int, int], int]) -> int:
    code = n = 0
    while (code, n) not in codes:
        code, n = code << 1 | br.read(1), n + 1
    return codes[(code, n)]


@settings(max_examples=400, deadline=None)
@given(complete_lengths(), st.binary(min_size=1, max_size=64))
def test_table_decoder_matches_bit_by_bit_decoding(lengths: list[int], data: bytes) -> None:
    codes = _canonical(lengths)
    if len(codes) == 1:  # one symbol reads no bits
        assert ht.decoder(lengths).table[0] >> 4 == next(iter(codes.values()))
        return
    fast, slow = ht.BitReader(data, 0, len(data)), ht.BitReader(data, 0, len(data))
    dec = ht.decoder(lengths)
    while True:
        try:
            want = _ref_decode(slow, codes)
        except SpywallError:
            break
        assert fast.decode(dec) == want
        assert fast.offset == slow.offset


# -- the code-length reader -----------------------------------------------------------------
def _ref_code_lengths(br: ht.BitReader, alphabet: int) -> list[int]:
    """VP8L ReadHuffmanCode's lengths, one bit at a time."""
    def bits(n: int) -> int:
        return sum(br.read(1) << i for i in range(n))

    lengths = [0] * alphabet
    if bits(1):
        two, wide = bits(1), bits(1)
        for s in [bits(8 if wide else 1)] + ([bits(8)] if two else []):
            if s < alphabet:
                lengths[s] = 1
        return lengths
    cl = [0] * 19
    for i in range(bits(4) + 4):
        cl[vp8l.CODE_LENGTH_ORDER[i]] = bits(3)
    if not ht.simulate(cl, ht.LENGTHS_ROOT_BITS).valid:
        raise vp8l.FormatError("a code-length code is not a valid prefix code")
    codes = _canonical(cl)
    left = alphabet
    if bits(1):
        left = 2 + bits(2 + 2 * bits(3))
        if left > alphabet:
            raise vp8l.FormatError(f"a prefix code of {left} symbols in an alphabet of {alphabet}")
    out: list[int] = []
    prev = 8
    while len(out) < alphabet and left > 0:
        left -= 1
        n = next(iter(codes.values())) if len(codes) == 1 else _ref_decode(br, codes)
        if n < 16:
            out.append(n)
            prev = n or prev
            continue
        run = bits((2, 3, 7)[n - 16]) + (3, 3, 11)[n - 16]
        if len(out) + run > alphabet:
            raise vp8l.FormatError("a code length repeat runs past the end of its alphabet")
        out += [prev if n == 16 else 0] * run
    return out + [0] * (alphabet - len(out))


def _outcome(read: object) -> tuple[object, ...]:
    try:
        return ("ok", read())  # type: ignore[operator]
    except SpywallError as exc:
        return (type(exc).__name__, str(exc))


@st.composite
def code_length_streams(draw: st.DrawFn) -> bytes:
    """A normal code with a random complete code-length code, then random bits; or
    random bytes (mostly rejected early)."""
    size = draw(st.sampled_from((0, 1, 8, 40, 200, 600, 1500)))
    tail = random.Random(draw(st.integers(0, 1 << 32))).randbytes(size)
    if draw(st.integers(0, 4)) == 0:
        return tail
    leaves = [0]
    for _ in range(draw(st.integers(0, 18))):
        i = draw(st.integers(0, len(leaves) - 1))
        if leaves[i] < 7:
            leaves += [leaves.pop(i) + 1] * 2
    if leaves == [0]:
        leaves = [draw(st.integers(1, 7))]  # one symbol: valid, reads no bits
    cl = draw(st.permutations(leaves + [0] * (19 - len(leaves))))
    w = sw.VP8LWriter().put(0, 1).put(15, 4)
    for sym in vp8l.CODE_LENGTH_ORDER:
        w.put(cl[sym], 3)
    if draw(st.booleans()):  # max_symbol
        w.put(1, 1).put(draw(st.integers(0, 7)), 3)
    return w.getvalue(pad=0) + tail


@settings(max_examples=1500, deadline=None)
@given(code_length_streams(), st.sampled_from((*vp8l.ALPHABETS, 280 + 2048)))
def test_code_length_reader_matches_bit_by_bit_reading(data: bytes, alphabet: int) -> None:
    fast = vp8l._Stream(ht.BitReader(data, 0, len(data)), ParseContext(Budget()))
    slow = ht.BitReader(data, 0, len(data))
    got = _outcome(lambda: list(fast.code_lengths(alphabet)))
    want = _outcome(lambda: _ref_code_lengths(slow, alphabet))
    assert got == want
    if want[0] == "ok":
        assert fast.br.offset == slow.offset


@settings(max_examples=300, deadline=None)
@given(complete_lengths())
def test_code_length_reader_reads_what_the_sample_writer_writes(lengths: list[int]) -> None:
    lengths = [min(n, 15) for n in lengths][:280]
    w = sw.VP8LWriter().normal(lengths)
    data = w.getvalue()
    stream = vp8l._Stream(ht.BitReader(data, 0, len(data)), ParseContext(Budget()))
    assert list(stream.code_lengths(len(lengths))) == lengths


# -- sub-image pixels (kept: the entropy image) ---------------------------------------------
def _ref_pixels(br: ht.BitReader, decs: list[ht.Decoder], width: int, n: int,
                cache_bits: int) -> list[int]:
    """LZ77 + colour cache decoding, one ``BitReader.decode`` call per symbol."""
    green, red, blue, alpha, dist = decs
    out: list[int] = []
    cache = [0] * (1 << cache_bits)

    def put(px: int) -> None:
        out.append(px)
        if cache_bits:
            cache[((0x1E35A7BD * px) & 0xFFFFFFFF) >> (32 - cache_bits)] = px

    while len(out) < n:
        g = br.decode(green)
        if g < 256:
            r, b, a = br.decode(red), br.decode(blue), br.decode(alpha)
            put(a << 24 | r << 16 | g << 8 | b)
        elif g < 280:
            length = vp8l._prefix_value(g - 256, br)
            code = vp8l._prefix_value(br.decode(dist), br)
            dx, dy = vp8l.DISTANCE_MAP[code - 1] if code <= 120 else (code - 120, 0)
            d = max(1, dx + dy * width) if code <= 120 else code - 120
            if d > len(out) or length > n - len(out):
                raise vp8l.FormatError(f"a copy of {length} pixels from {d} back reaches "
                                       "outside the image")
            for _ in range(length):
                put(out[-d])
        else:
            put(cache[g - 280])
    return out


@st.composite
def sub_image_codes(draw: st.DrawFn) -> tuple[list[ht.Decoder], int]:
    cache_bits = draw(st.sampled_from((0, 0, 3, 6)))
    rng = random.Random(draw(st.integers(0, 1 << 32)))
    decs = []
    for j, alphabet in enumerate(vp8l.ALPHABETS):
        alphabet += (1 << cache_bits) if j == 0 and cache_bits else 0
        leaves = draw(complete_lengths())[:alphabet]
        if sum(2.0 ** -n for n in leaves if n) != 1.0 and leaves.count(0) != len(leaves) - 1:
            leaves = [1, 1]
        lengths = leaves + [0] * (alphabet - len(leaves))
        rng.shuffle(lengths)
        if not any(lengths):
            lengths[rng.randrange(alphabet)] = 1
        decs.append(ht.decoder(lengths))
    return decs, cache_bits


@settings(max_examples=600, deadline=None)
@given(sub_image_codes(), st.integers(1, 12), st.integers(1, 12),
       st.sampled_from((0, 50, 800, 3000)), st.integers(0, 1 << 32))
def test_kept_sub_image_matches_symbol_by_symbol_decoding(
        codes: tuple[list[ht.Decoder], int], width: int, height: int, size: int,
        seed: int) -> None:
    decs, cache_bits = codes
    data = random.Random(seed).randbytes(size)
    n = width * height
    fast, slow = ht.BitReader(data, 0, len(data)), ht.BitReader(data, 0, len(data))
    ctx = ParseContext(Budget())
    got = _outcome(lambda: list(vp8l._decode_pixels(fast, decs, width, n, cache_bits,
                                                    True, ctx)))
    want = _outcome(lambda: _ref_pixels(slow, decs, width, n, cache_bits))
    if all(d.bits == 0 for d in decs[:4]):  # no bits read: the one-pixel shortcut
        return
    assert got == want
    if want[0] == "ok":
        assert fast.offset == slow.offset
