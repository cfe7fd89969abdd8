"""Data-driven: every generated sample -> exactly the expected detector ids."""

from __future__ import annotations

import pytest

from spywall.engine import scan_bytes
from spywall.samples import Sample, all_samples

SAMPLES = list(all_samples())


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_sample_gives_expected_detectors(sample: Sample) -> None:
    subject = scan_bytes(sample.data, sample.name)
    fired = {f.rule for f in subject.findings}
    assert fired == set(sample.expected), (sample.note, subject.findings, subject.errors)
    for f in subject.findings:
        assert f.path.startswith(sample.name)
        assert f.object_sha256
        assert len(f.object_sha256) == 64


def test_every_detector_has_positive_and_negative_samples() -> None:
    from spywall.registry import all_detectors

    fired = set().union(*(s.expected for s in SAMPLES))
    missing = {d.info.id for d in all_detectors()} - fired
    assert not missing, f"detectors with no crafted sample: {missing}"
    assert any(not s.expected for s in SAMPLES), "no benign control"
