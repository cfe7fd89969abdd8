"""Large inputs are memory-mapped: every sample must scan the same way mapped or read."""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest

from spywall import engine
from spywall.limits import Limits
from spywall.report import as_dict
from spywall.samples import all_samples

SAMPLES = list(all_samples())


def _dump(subject: engine.Subject) -> dict[str, object]:
    return as_dict(subject)


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_every_sample_scans_the_same_mapped_and_read(
    sample: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spywall.samples import Sample

    assert isinstance(sample, Sample)
    if not sample.data:
        pytest.skip("an empty file cannot be mapped")
    f = tmp_path / sample.name.replace("/", "_")
    f.write_bytes(sample.data)
    monkeypatch.setattr(engine, "MAP_MIN_BYTES", 1)
    mapped = engine.scan_path(str(f), Limits())
    read = engine.scan_path(str(f), Limits(map_inputs=False))
    assert _dump(mapped) == _dump(read)
    assert {x.rule for x in mapped.findings} == set(sample.expected)


def test_big_files_are_mapped_and_released(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "big.bin"
    f.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * (engine.MAP_MIN_BYTES + 10))
    seen: list[object] = []
    real = engine.scan_bytes

    def spy(data: bytes, path: str, limits: Limits | None = None, *,
            started: float | None = None, cache: object = None) -> engine.Subject:
        seen.append(data)
        return real(data, path, limits)

    monkeypatch.setattr(engine, "scan_bytes", spy)
    subject = engine.scan_path(str(f), Limits())
    assert isinstance(seen[0], mmap.mmap)
    assert seen[0].closed
    assert subject.format == "png"
    assert subject.errors
    engine.scan_path(str(f), Limits(map_inputs=False))
    assert isinstance(seen[1], bytes)
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 100)
    engine.scan_path(str(small), Limits())
    assert isinstance(seen[2], bytes)


def test_formats_read_whole_are_read_not_mapped(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from spywall.samples.containers import zip_of
    from spywall.samples.pdf_jbig2 import text_pdf

    seen: list[object] = []
    real = engine.scan_bytes

    def spy(data: bytes, path: str, limits: Limits | None = None, *,
            started: float | None = None, cache: object = None) -> engine.Subject:
        seen.append(type(data))
        return real(data, path, limits)

    monkeypatch.setattr(engine, "scan_bytes", spy)
    monkeypatch.setattr(engine, "MAP_MIN_BYTES", 1)
    for name, data in (("a.pdf", text_pdf()), ("b.zip", zip_of({"x": b"y"})),
                       ("c.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)):
        (tmp_path / name).write_bytes(data)
        engine.scan_path(str(tmp_path / name), Limits())
    assert seen == [bytes, bytes, mmap.mmap]
