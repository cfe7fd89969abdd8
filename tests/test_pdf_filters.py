"""The capped PDF filter decoders, checked against qpdf's own decoders as the oracle."""

from __future__ import annotations

import os
import random
import time
import zlib

import pikepdf
import pytest

from spywall.errors import FormatError, LimitExceeded
from spywall.formats.pdf_filters import Params, decode_chain
from spywall.limits import Budget, Limits
from spywall.samples import pdf_jbig2 as s

MiB = 1 << 20


def qpdf_decode(raw: bytes, filters: list[str], parms: list[dict[str, int]] | None = None) -> bytes:
    """What qpdf makes of ``raw`` under ``filters`` (the oracle; it has no caps)."""
    pdf = pikepdf.new()
    st = pikepdf.Stream(pdf, raw)
    st.Filter = pikepdf.Array([pikepdf.Name("/" + f) for f in filters])
    if parms:
        st.DecodeParms = pikepdf.Array([pikepdf.Dictionary({"/" + k: v for k, v in p.items()})
                                        for p in parms])
    return bytes(st.read_bytes(pikepdf.StreamDecodeLevel.specialized))


def ours(raw: bytes, filters: list[str], parms: list[Params] | None = None,
         limits: Limits | None = None) -> bytes:
    chain = [(f, (parms or [{}] * len(filters))[i]) for i, f in enumerate(filters)]
    data, codec = decode_chain(raw, chain, Budget(limits or Limits()))
    assert codec is None
    return data


def sample_bytes(n: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    words = [rnd.randbytes(rnd.randint(1, 6)) for _ in range(40)]
    return b"".join(rnd.choice(words) for _ in range(n))[:n]


@pytest.mark.parametrize("name", ["FlateDecode", "ASCIIHexDecode", "ASCII85Decode",
                                  "LZWDecode", "RunLengthDecode"])
@pytest.mark.parametrize("size", [0, 1, 5, 4099, 60_000])
def test_roundtrip_matches_qpdf(name: str, size: int) -> None:
    data = sample_bytes(size)
    raw = s.encode(data, [name])
    assert ours(raw, [name]) == data == qpdf_decode(raw, [name])


def test_lzw_without_early_change_matches_qpdf() -> None:
    data = sample_bytes(30_000, seed=7)
    raw = s.lzw_encode(data, early=0)
    params: list[dict[str, int]] = [{"EarlyChange": 0}]
    assert ours(raw, ["LZWDecode"], params) == data == qpdf_decode(raw, ["LZWDecode"], params)


def test_run_length_repeat_runs_match_qpdf() -> None:
    raw = b"\x02abc" + bytes([257 - 100]) + b"z" + b"\x00!" + bytes([129]) + b"q\x80"
    expected = b"abc" + b"z" * 100 + b"!" + b"q" * 128
    assert ours(raw, ["RunLengthDecode"]) == expected == qpdf_decode(raw, ["RunLengthDecode"])
    # 128 is end of data (ISO 32000-1 7.4.5), but qpdf reads on: so do we (a superset)
    more = raw + b"\x02unk"
    assert ours(more, ["RunLengthDecode"]) == expected + b"unk" == qpdf_decode(
        more, ["RunLengthDecode"])


def test_ascii_forms_whitespace_and_odd_digits() -> None:
    assert ours(b" 48 65\n6c6C 6>", ["ASCIIHexDecode"]) == b"Hell`"
    assert ours(b"<~87cURD]i,\"Ebo80~>", ["ASCII85Decode"]) == b"Hello World!"
    assert ours(b"z 87c\nU~>", ["ASCII85Decode"]) == b"\x00\x00\x00\x00Hel"


def png_predict(data: bytes, row: int, bpp: int) -> bytes:
    """PNG-predict rows cycling through the five row types (an encoder for the test)."""
    out, prev = bytearray(), bytes(row)
    for n, start in enumerate(range(0, len(data), row)):
        cur = data[start : start + row]
        kind = n % 5
        enc = bytearray()
        for i, x in enumerate(cur):
            a = cur[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            paeth = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
            pred = (0, a, b, (a + b) >> 1, paeth)[kind]
            enc.append((x - pred) & 0xFF)
        out += bytes([kind]) + enc
        prev = cur
    return bytes(out)


@pytest.mark.parametrize(("colors", "columns"), [(1, 17), (3, 10), (4, 1)])
def test_png_predictor_matches_qpdf(colors: int, columns: int) -> None:
    row = colors * columns
    data = sample_bytes(row * 23, seed=colors)
    raw = zlib.compress(png_predict(data, row, colors))
    params = {"Predictor": 15, "Colors": colors, "Columns": columns, "BitsPerComponent": 8}
    assert ours(raw, ["FlateDecode"], [params]) == data
    assert qpdf_decode(raw, ["FlateDecode"], [params]) == data


def test_tiff_predictor_matches_qpdf() -> None:
    data = sample_bytes(3 * 9 * 11, seed=3)
    enc = bytearray(data)
    for start in range(0, len(data), 27):
        for i in range(start + 26, start + 2, -1):
            enc[i] = (data[i] - data[i - 3]) & 0xFF
    raw = zlib.compress(bytes(enc))
    params = {"Predictor": 2, "Colors": 3, "Columns": 9, "BitsPerComponent": 8}
    assert ours(raw, ["FlateDecode"], [params]) == data == qpdf_decode(raw, ["FlateDecode"],
                                                                       [params])


def test_bad_predictor_parameters() -> None:
    raw = zlib.compress(b"\x00abc")
    with pytest.raises(FormatError, match="unusable predictor values"):
        ours(raw, ["FlateDecode"], [{"Predictor": 12, "Colors": 0}])
    with pytest.raises(FormatError, match="has type"):
        ours(zlib.compress(b"\x09abc"), ["FlateDecode"], [{"Predictor": 12, "Columns": 3}])


def test_flate_with_bad_checksum_is_read_as_raw_deflate() -> None:
    raw = zlib.compress(b"content that matters")
    assert ours(raw[:-4] + b"\x00\x00\x00\x00", ["FlateDecode"]) == b"content that matters"
    with pytest.raises(FormatError):
        ours(b"\x78\x9c\xff\xff\xff\xff", ["FlateDecode"])


def test_image_codec_ends_the_chain() -> None:
    raw = zlib.compress(b"\xff\xd8\xff jpeg bytes")
    chain: list[tuple[str, Params]] = [("Fl", {}), ("DCT", {}), ("FlateDecode", {})]
    assert decode_chain(raw, chain, Budget()) == (b"\xff\xd8\xff jpeg bytes", "DCTDecode")


def test_chain_cap_and_unknown_filters() -> None:
    with pytest.raises(FormatError, match="over the cap"):
        decode_chain(b"", [("Crypt", {})] * 9, Budget())
    with pytest.raises(FormatError, match="unknown filter"):
        decode_chain(b"x", [("BogusDecode", {})], Budget())
    with pytest.raises(FormatError):
        ours(b"zz>", ["ASCIIHexDecode"])
    with pytest.raises(FormatError):
        ours(b"\xff\xff\xff", ["LZWDecode"])


def test_bomb_stops_early_on_ratio() -> None:
    comp = zlib.compressobj(9)
    raw = b"".join(comp.compress(bytes(MiB)) for _ in range(64)) + comp.flush()
    budget = Budget()
    t = time.monotonic()
    with pytest.raises(LimitExceeded, match="1000:1"):
        decode_chain(raw, [("FlateDecode", {})], budget)
    assert time.monotonic() - t < 120  # a hang guard, not a speed test
    assert budget.decompressed == 0


def test_stream_cap_applies_to_incompressible_output() -> None:
    data = os.urandom(3 * MiB)
    raw = s.encode(data, ["ASCIIHexDecode"])
    with pytest.raises(LimitExceeded, match="stream cap"):
        ours(raw, ["ASCIIHexDecode"], limits=Limits(max_stream_bytes=2 * MiB))
    assert ours(raw, ["ASCIIHexDecode"], limits=Limits(max_stream_bytes=4 * MiB)) == data


def test_lzw_bomb_is_capped() -> None:
    raw = s.lzw_encode(bytes(MiB // 2))
    with pytest.raises(LimitExceeded, match="stream cap"):
        ours(raw, ["LZWDecode"], limits=Limits(max_stream_bytes=MiB // 4))
