"""Polyglots: one file that two formats claim. A GIF whose first KiB also holds a PDF
header is a GIF to one reader and a PDF to another (PDF readers look for the header
anywhere in the first 1024 bytes); the engine must examine both readings."""

from __future__ import annotations

from collections.abc import Iterator

from spywall.samples import Sample
from spywall.samples.gif import FrameSpec, gif
from spywall.samples.pdf_jbig2 import OVERFLOW, forcedentry_segments, jbig2_pdf, join


def samples() -> Iterator[Sample]:
    image = gif((8, 8), [FrameSpec(8, 8)])
    pdf = jbig2_pdf(join(forcedentry_segments()), ["FlateDecode"])
    yield Sample("gif-pdf-polyglot.gif", image + pdf, OVERFLOW,
                 "a valid GIF with a FORCEDENTRY PDF after its trailer, header within 1 KiB")
    yield Sample("gif-then-benign-text.gif", image + b"%PDF- is mentioned here\n" * 4,
                 frozenset(), "a PDF header that leads nowhere is an error entry, not a finding")
