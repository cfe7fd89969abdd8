"""Containers spywall cannot open are reported, and the input is not called clean.

Every kind spywall cannot open (a zip member flagged encrypted, a zip member compressed
with WinZip AES, method 99, or a method no one defines; a PDF that needs a user password;
a PDF stream behind a filter no standard defines, alone or after FlateDecode) inside
every container spywall opens (none, a zip member stored or deflated, a PDF attachment,
data appended after a PNG, a JPEG or a GIF): an ``unsupported`` error entry names it, an
``incomplete-examination`` finding makes the verdict "not clean" (exit status 1, not 0),
and ``--allow-incomplete`` keeps the entry but drops the finding. Python's ``zipfile``
is the independent reader of the crafted zips' flags and methods, pikepdf of the PDFs'.
Then the payloads of ``samples/nesting.py`` under random stacks of up to three
containers, in any order.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.cli import main
from spywall.engine import scan_bytes
from spywall.incomplete import INCOMPLETE_RULE
from spywall.limits import Limits
from spywall.registry import all_detectors
from spywall.samples import all_samples
from spywall.samples import nesting as ns
from spywall.samples.containers import zip_of

SAMPLES = {s.name: s.data for s in all_samples()}
FONT = SAMPLES["adjust-glyph-short-loca.ttf"]
CVES = {d.info.id: set(d.info.cves) for d in all_detectors()}


def zip_method(data: bytes, name: str, method: int) -> bytes:
    """A zip whose one stored member claims compression ``method`` (99: WinZip AES)."""
    raw = bytearray(zip_of({name: data}, zipfile.ZIP_STORED))
    for at in (raw.find(b"PK\x03\x04") + 8, raw.find(b"PK\x01\x02") + 10):
        struct.pack_into("<H", raw, at, method)
    return bytes(raw)


# kind -> (the container spywall cannot open, with the crafted font inside; a word the
# error entry must say)
UNOPENED: dict[str, tuple[Callable[[], bytes], str]] = {
    "encrypted-zip": (lambda: ns.encrypted_zip(FONT, "font.ttf"), "encrypted"),
    "aes-zip": (lambda: zip_method(FONT, "font.ttf", 99), "compression method 99"),
    "unknown-zip-method": (lambda: zip_method(FONT, "font.ttf", 90), "compression method 90"),
    "locked-pdf": (lambda: SAMPLES["locked.pdf"], "encrypted PDF"),
    "unknown-filter": (lambda: ns.unknown_filter_pdf(FONT), "unknown filter /SpywallDecode"),
    "flate-then-unknown": (
        lambda: ns.unknown_filter_pdf(zlib.compress(FONT), ("/FlateDecode", "/SpywallDecode")),
        "unknown filter /SpywallDecode",
    ),
}
OUTERS = ["none", *sorted(ns.WRAPPERS)]


def test_the_crafted_containers_are_what_they_claim() -> None:
    """zipfile and pikepdf, not spywall, confirm each crafted container's trait."""
    import pikepdf

    with zipfile.ZipFile(io.BytesIO(UNOPENED["encrypted-zip"][0]())) as zf:
        assert zf.infolist()[0].flag_bits & 1
    for kind, method in (("aes-zip", 99), ("unknown-zip-method", 90)):
        with zipfile.ZipFile(io.BytesIO(UNOPENED[kind][0]())) as zf:
            info = zf.infolist()[0]
            assert info.compress_type == method
            with pytest.raises(NotImplementedError):
                zf.read(info)
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(UNOPENED["locked-pdf"][0]()))
    for kind in ("unknown-filter", "flate-then-unknown"):
        with pikepdf.open(io.BytesIO(UNOPENED[kind][0]())) as pdf:
            (spec,) = pdf.attachments.values()
            stream = spec.obj.EF.F
            assert "/SpywallDecode" in [str(f) for f in stream.Filter.wrap_in_array()]
            with pytest.raises(pikepdf.PdfError):
                stream.read_bytes()


@pytest.mark.parametrize("outer", OUTERS)
@pytest.mark.parametrize("kind", sorted(UNOPENED))
def test_unopened_container_is_not_clean(kind: str, outer: str) -> None:
    build, word = UNOPENED[kind]
    data = build()
    if outer != "none":
        data = ns.WRAPPERS[outer](data, "locked.bin")
    subject = scan_bytes(data, "x")
    errors = [e for e in subject.errors if e.code == "unsupported"]
    assert errors, subject.errors
    assert any(word in e.message for e in errors), errors
    incomplete = [f for f in subject.findings if f.rule == INCOMPLETE_RULE]
    assert incomplete
    assert any(word in f.message for f in incomplete)
    assert {f.rule for f in subject.findings} <= {INCOMPLETE_RULE, "appended-archive"}
    allowed = scan_bytes(data, "x", Limits(allow_incomplete=True))
    assert INCOMPLETE_RULE not in {f.rule for f in allowed.findings}
    assert [e.code for e in allowed.errors if e.code == "unsupported"]


def test_exit_status_is_not_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "locked.zip"
    path.write_bytes(UNOPENED["aes-zip"][0]())
    assert main(["scan", str(path), "-f", "json", "-j", "1", "-q"]) == 1
    assert main(["scan", str(path), "-f", "json", "-j", "1", "-q", "--allow-incomplete"]) == 0
    capsys.readouterr()


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(ns.PAYLOADS),
    st.booleans(),
    st.lists(st.sampled_from(sorted(ns.WRAPPERS)), min_size=1, max_size=3),
    st.data(),
)
def test_payload_under_any_stack_of_containers(
    payload: tuple[str, str, str], crafted: bool, stack: list[str], draw: st.DataObject
) -> None:
    """Up to three containers in any order (a specific one, such as WOFF2 for a font,
    drawn innermost when the payload fits one): the crafted payload is found with its
    CVE, the twin is not flagged (an archive after an image is a finding of its own)."""
    name = payload[0] if crafted else payload[1]
    data = SAMPLES[name]
    specific = [k for k, (_, suffix) in ns.SPECIFIC.items() if payload[0].endswith(suffix)]
    if specific and draw.draw(st.booleans()):
        data = ns.SPECIFIC[draw.draw(st.sampled_from(specific))][0](data, name)
    for i, outer in enumerate(stack):
        data = ns.WRAPPERS[outer](data, f"level{i}.bin")
    subject = scan_bytes(data, "x", Limits(max_depth=12))
    found = {f.rule for f in subject.findings} - {"appended-archive"}
    rule = payload[2]
    assert found == ({rule} if crafted else set()), (stack, subject.errors)
    for f in subject.findings:
        if f.rule == rule:
            assert set(f.cves) == CVES[rule]
