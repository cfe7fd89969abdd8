"""Meta-test: every registered detector and format is complete and consistent."""

from __future__ import annotations

import re

import pytest

from spywall.registry import all_detectors, all_formats, format_names
from spywall.report import FindingKind

CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
DETECTORS = all_detectors()
FORMATS = all_formats()


@pytest.mark.parametrize("det", DETECTORS, ids=[d.info.id for d in DETECTORS])
def test_detector_metadata(det) -> None:  # type: ignore[no-untyped-def]
    info = det.info
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", info.id)
    assert info.title
    assert info.references
    assert len(info.description.strip()) > 80, "docstring must state the exact condition"
    assert set(info.formats) <= format_names(), info.formats
    assert all(CVE.match(c) for c in info.cves)
    if info.kind == FindingKind.EXPLOIT:
        assert info.cves, "an exploit detector names its CVEs"


def test_ids_unique() -> None:
    ids = [d.info.id for d in DETECTORS]
    assert len(ids) == len(set(ids))
    names = [f.name for f in FORMATS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("spec", FORMATS, ids=[f.name for f in FORMATS])
def test_format_sniffers_are_total(spec) -> None:  # type: ignore[no-untyped-def]
    for head in (b"", b"\x00", bytes(range(64)), b"\xff" * 64):
        assert spec.sniff(head) in (True, False)
