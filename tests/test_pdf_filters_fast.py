"""The vectorised PDF filter decoders against independent decoders, malformed input too.

Oracles: ``base64.a85decode`` (the standard library's ASCII85, which the PDF decoder
matches after its own end-marker and white-space handling), ``bytes.fromhex``,
imagecodecs' PackBits and qpdf's own decoders (through pikepdf).
"""

from __future__ import annotations

import base64

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
        return "error", f"bad ASCII85Decode data: {exc}"


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
