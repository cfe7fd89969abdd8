"""Crafted and benign sample generators, built by code from public facts.

Every generator module exposes ``samples() -> Iterator[Sample]``. A ``Sample`` names the
detector ids that must fire on it (empty for a benign control), so tests are a table of
sample -> expected detector ids, and ``make demo`` writes the same samples to disk.
Nothing here is a working exploit: the samples carry the trigger *structure* only.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import msgspec

# Generator modules, registered explicitly (module path under spywall.samples).
SAMPLE_MODULES: tuple[str, ...] = (
    "spywall.samples.containers",
    "spywall.samples.heif",
    "spywall.samples.gif",
    "spywall.samples.webp",
    "spywall.samples.truetype",
    "spywall.samples.woff",
    "spywall.samples.pdf_jbig2",
    "spywall.samples.jbig2_coded",
    "spywall.samples.tiff_dng",
    "spywall.samples.tiff_embedded",
    "spywall.samples.polyglot",
    "spywall.samples.nesting",
)


class Sample(msgspec.Struct, frozen=True):
    name: str
    data: bytes
    expected: frozenset[str]
    note: str = ""


def all_samples() -> Iterator[Sample]:
    for mod in SAMPLE_MODULES:
        yield from importlib.import_module(mod).samples()
