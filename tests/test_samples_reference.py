"""Every sample gives the same full result with the fast PDF filters as with the
reference decoders (the standard library's ASCII85, the per-run RunLength and the
per-code LZW decoders): findings (rule, path, offset, message, detail), errors and
formats, not only the detector ids that tests/test_samples.py checks."""

from __future__ import annotations

import base64

import pytest

from spywall.engine import scan_bytes
from spywall.errors import FormatError
from spywall.formats import pdf_filters as pf
from spywall.samples import Sample, all_samples

SAMPLES = list(all_samples())


def a85_reference(data: bytes, params: pf.Params, sink: pf._Sink) -> None:
    body = data.translate(None, b"\x00\t\n\x0c\r ")
    end = body.find(b"~>")
    body = (body[:end] if end >= 0 else body).removeprefix(b"<~")
    try:
        sink.add(base64.a85decode(body), len(data))
    except ValueError as exc:
        raise FormatError(f"its ASCII85Decode data is damaged: {exc}") from exc


def lzw_reference(data: bytes, params: pf.Params, sink: pf._Sink) -> None:
    pf.lzw_codes(data, 1 if params.get("EarlyChange", 1) else 0, sink)


REFERENCE = {"ASCII85Decode": a85_reference, "RunLengthDecode": pf.run_length_runs,
             "LZWDecode": lzw_reference}


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_fast_filters_give_the_reference_result(sample: Sample,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fast = scan_bytes(sample.data, sample.name)
    for name, decoder in REFERENCE.items():
        monkeypatch.setitem(pf.DECODERS, name, decoder)
    reference = scan_bytes(sample.data, sample.name)
    assert fast == reference
    assert {f.rule for f in fast.findings} == set(sample.expected)
