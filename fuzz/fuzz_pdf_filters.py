"""Differential fuzzing of the fast PDF filter paths against their reference decoders.

The first byte picks the filter and the caps; the rest is the stream. The fast path and
the reference must agree exactly: same output, or the same error (type and message).
"""

import base64
import sys

import atheris

with atheris.instrument_imports():
    from spywall.errors import SpywallError
    from spywall.formats import pdf_filters as pf
    from spywall.limits import Budget, Limits


def _a85_reference(data: bytes, sink: "pf._Sink") -> None:
    body = data.translate(None, b"\x00\t\n\x0c\r ")
    end = body.find(b"~>")
    body = (body[:end] if end >= 0 else body).removeprefix(b"<~")
    try:
        sink.add(base64.a85decode(body), len(data))
    except ValueError as exc:
        raise pf.FormatError(f"its ASCII85Decode data is damaged: {exc}") from exc


PAIRS = (
    ("ASCII85Decode", lambda d, s: pf.ascii85(d, {}, s), _a85_reference),
    ("RunLengthDecode", lambda d, s: pf.run_length(d, {}, s),
     lambda d, s: pf.run_length_runs(d, {}, s)),
    ("LZWDecode", lambda d, s: pf.lzw(d, {}, s), lambda d, s: pf.lzw_codes(d, 1, s)),
)
CAPS = (64, 4096, 1 << 20)


def _outcome(fn, data: bytes, limits: Limits, name: str) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    sink = pf._Sink(Budget(limits), name)
    try:
        fn(data, sink)
    except SpywallError as exc:
        return type(exc).__name__, str(exc)
    return "ok", sink.result()


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    name, fast, reference = PAIRS[data[0] % len(PAIRS)]
    limits = Limits(max_stream_bytes=CAPS[data[0] // 3 % len(CAPS)], seconds=5)
    body = data[1:]
    if name == "LZWDecode" and data[0] & 0x80:
        body = b"\x80" + body  # a leading clear code, so that the planned path is tried
    assert _outcome(fast, body, limits, name) == _outcome(reference, body, limits, name)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
