"""The vectorised PDF filter decoders against independent decoders, malformed input too.

Oracles: ``base64.a85decode`` (the standard library's ASCII85, which the PDF decoder
matches after its own end-marker and white-space handling), ``bytes.fromhex``,
imagecodecs' PackBits and qpdf's own decoders (through pikepdf).
"""

from __future__ import annotations

import base64
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.errors import FormatError, LimitExceeded
from spywall.formats import pdf_filters as pf
from spywall.limits import Budget, Limits, MiB

A85_ALPHABET = bytes(range(0x21, 0x76)) + b"z~<> \n\r\t\x0b\x0c\x00yvwx\x80\xff"


def run(decoder: str, data: bytes, limits: Limits | None = None) -> tuple[str, bytes | str]:
    sink = pf._Sink(Budget(limits or Limits()), decoder)
    try:
        pf.DECODERS[decoder](data, {}, sink)
    except FormatError as exc:
        return "error", str(exc)
    return "ok", sink.result()


def a85_reference(data: bytes) -> tuple[str, bytes | str]:
    """The stream's data up to ``~>``, white space dropped, through base64.a85decode."""
    body = data.translate(None, b"\x00\t\n\x0c\r ")
    end = body.find(b"~>")
    body = (body[:end] if end >= 0 else body).removeprefix(b"<~")
    try:
        return "ok", base64.a85decode(body)
    except ValueError as exc:
        return "error", f"its ASCII85Decode data is damaged: {exc}"


@st.composite
def a85_inputs(draw: st.DrawFn) -> bytes:
    """Valid encodings (with z groups, wrapping, markers), then a few mutations."""
    kind = draw(st.sampled_from(["encoded", "alphabet"]))
    if kind == "encoded":
        raw = draw(st.binary(max_size=300))
        if draw(st.booleans()):
            raw = raw[:8] + bytes(draw(st.integers(0, 40))) + raw[8:]  # runs of 0 -> 'z'
        data = bytearray(base64.a85encode(raw, wrapcol=draw(st.integers(0, 80)),
                                          adobe=draw(st.booleans())))
    else:
        data = bytearray(draw(st.lists(st.sampled_from(list(A85_ALPHABET)), max_size=60)))
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.sampled_from(list(A85_ALPHABET)))
    return bytes(data)


@settings(max_examples=600, deadline=None)
@given(a85_inputs())
def test_ascii85_matches_a85decode(data: bytes) -> None:
    assert run("ASCII85Decode", data) == a85_reference(data)


@pytest.mark.parametrize("size", [0, 1, 4, 5, 999, pf._A85_CHUNK + 3, 3 * pf._A85_CHUNK // 4])
def test_ascii85_across_chunk_boundaries(size: int) -> None:
    # zero runs put 'z' groups at and around the 4 MiB chunk boundaries
    raw = bytes(range(256)) * (size // 256) + bytes(size % 256)
    data = base64.a85encode(raw, wrapcol=75) + b"~>"
    assert run("ASCII85Decode", data) == ("ok", raw)


def test_ascii85_error_after_a_chunk_boundary_is_the_reference_error() -> None:
    data = base64.a85encode(bytes(range(256)) * 20_000)
    data = data[: pf._A85_CHUNK + 7] + b"v" + data[pf._A85_CHUNK + 8 :]
    assert run("ASCII85Decode", data) == a85_reference(data)
    assert run("ASCII85Decode", data)[0] == "error"


def test_ascii85_output_cap_holds_for_z_runs() -> None:
    limits = Limits(max_stream_bytes=MiB, max_total_decompressed=4 * MiB)
    with pytest.raises(LimitExceeded, match="stream cap"):
        run("ASCII85Decode", b"z" * (MiB // 4 + 1), limits)
    assert run("ASCII85Decode", b"z" * (MiB // 4), limits) == ("ok", bytes(MiB))


def rl_runs(data: bytes, limits: Limits | None = None) -> tuple[str, bytes | str]:
    sink = pf._Sink(Budget(limits or Limits()), "RunLengthDecode")
    pf.run_length_runs(data, {}, sink)
    return "ok", sink.result()


@st.composite
def rl_inputs(draw: st.DrawFn) -> bytes:
    """Valid run-length data (literal and repeat runs, end-of-data bytes), then cut or
    mutated: a final run cut short is the case PackBits and qpdf read differently."""
    out = bytearray()
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["literal", "repeat", "eod"]))
        if kind == "literal":
            body = draw(st.binary(min_size=1, max_size=128))
            out += bytes([len(body) - 1]) + body
        elif kind == "repeat":
            out += bytes([draw(st.integers(129, 255)), draw(st.integers(0, 255))])
        else:
            out.append(128)
    if out and draw(st.booleans()):
        del out[draw(st.integers(0, len(out) - 1)) :]
    return bytes(out) + draw(st.binary(max_size=4))


@settings(max_examples=600, deadline=None)
@given(rl_inputs())
def test_run_length_fast_path_matches_the_per_run_decoder(data: bytes) -> None:
    assert run("RunLengthDecode", data) == rl_runs(data)


def test_run_length_matches_qpdf_on_a_large_stream() -> None:
    import pikepdf

    from spywall.samples.pdf_jbig2 import encode

    raw = bytes(range(256)) * 3000 + bytes(50_000) + b"abc" * 9000
    enc = encode(raw, ["RunLengthDecode"])
    pdf = pikepdf.new()
    stream = pikepdf.Stream(pdf, enc)
    stream.Filter = pikepdf.Name.RunLengthDecode
    qpdf = stream.read_bytes(pikepdf.StreamDecodeLevel.specialized)
    assert run("RunLengthDecode", enc) == ("ok", raw) == ("ok", qpdf)


def test_run_length_cap_holds_on_both_paths() -> None:
    limits = Limits(max_stream_bytes=MiB, max_total_decompressed=4 * MiB)
    bomb = b"\x81\x00" * (MiB // 128 + 1)  # 128 bytes per pair: just over 1 MiB
    with pytest.raises(LimitExceeded, match="stream cap"):
        run("RunLengthDecode", bomb, limits)
    with pytest.raises(LimitExceeded, match="stream cap"):
        rl_runs(bomb, limits)
    assert run("RunLengthDecode", bomb[:-2], limits) == ("ok", bytes(MiB))


Outcome = tuple[str, bytes | str]


def lzw_both(data: bytes, limits: Limits) -> tuple[Outcome, Outcome]:
    """(the planned C path, the per-code reference) on ``data``, errors included."""
    out = []
    for fn in (lambda d, s: pf.lzw(d, {}, s), lambda d, s: pf.lzw_codes(d, 1, s)):
        sink = pf._Sink(Budget(limits), "LZWDecode")
        try:
            fn(data, sink)
        except (FormatError, LimitExceeded) as exc:
            out.append((type(exc).__name__, str(exc)))
        else:
            out.append(("ok", sink.result()))
    return out[0], out[1]


@st.composite
def lzw_inputs(draw: st.DrawFn) -> bytes:
    """Real encodings of repetitive data (long table entries), then bit flips or cuts."""
    from spywall.samples.pdf_jbig2 import lzw_encode

    alphabet = draw(st.binary(min_size=1, max_size=6))
    n = draw(st.integers(0, 3000))
    seed = draw(st.integers(0, 1 << 30))
    data = bytes(alphabet[(seed * (i + 7) >> 3) % len(alphabet)] for i in range(n))
    enc = bytearray(lzw_encode(data))
    kind = draw(st.sampled_from(["valid", "flip", "cut"]))
    if enc and kind == "flip":
        for _ in range(draw(st.integers(1, 3))):
            enc[draw(st.integers(0, len(enc) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif kind == "cut":
        del enc[draw(st.integers(0, len(enc))) :]
    return bytes(enc)


@settings(max_examples=200, deadline=None)
@given(lzw_inputs(), st.sampled_from([64, 4096, 256 * MiB]), st.sampled_from([2, 1000]))
def test_lzw_planned_path_matches_the_per_code_decoder(data: bytes, cap: int,
                                                       ratio: int) -> None:
    limits = Limits(max_stream_bytes=cap, max_ratio=ratio)
    fast, reference = lzw_both(data, limits)
    assert fast == reference


def test_lzw_planned_path_is_taken_and_matches_qpdf() -> None:
    import pikepdf

    from spywall.formats import pdf_lzw
    from spywall.samples.pdf_jbig2 import lzw_encode

    raw = b"".join(b"%d spywall " % (i % 977) for i in range(40_000))
    enc = lzw_encode(raw)
    assert pdf_lzw.plan(enc, 1, 256 * MiB, 1000) == (len(raw), None)
    pdf = pikepdf.new()
    stream = pikepdf.Stream(pdf, enc)
    stream.Filter = pikepdf.Name.LZWDecode
    assert run("LZWDecode", enc) == ("ok", raw) == ("ok", stream.read_bytes())


@cache
def _zeros_lzw() -> bytes:
    from spywall.samples.pdf_jbig2 import lzw_encode

    return lzw_encode(bytes(3 * MiB))


@pytest.mark.parametrize(("ratio", "refused"), [(10**6, "cap"), (100, "ratio")])
def test_lzw_bomb_is_refused_by_the_plan_with_the_reference_error(ratio: int,
                                                                  refused: str) -> None:
    from spywall.formats import pdf_lzw

    enc = _zeros_lzw()
    limits = Limits(max_stream_bytes=2 * MiB, max_ratio=ratio)
    assert pdf_lzw.plan(enc, 1, 2 * MiB + 1, ratio) == (0, refused)
    fast, reference = lzw_both(enc, limits)
    assert fast == reference
    assert fast[0] == "LimitExceeded"
