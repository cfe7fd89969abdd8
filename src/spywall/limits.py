"""Budgets that bound every parser: sizes, counts, depth and time.

One ``Budget`` is made per top-level input and passed down to every parser that works on
it (including nested archive members and PDF streams), so the caps hold for the whole
input, not per piece.
"""

from __future__ import annotations

import time

import msgspec

from spywall.errors import LimitExceeded

MiB = 1024 * 1024


# (A struct's class attributes are its slot descriptors: read defaults off an instance,
# ``Limits().seconds``, not off the class.)
class Limits(msgspec.Struct, frozen=True):
    """Static caps. Defaults suit attachments; every cap can be raised from the CLI."""

    max_file_bytes: int = 1024 * MiB
    max_stream_bytes: int = 256 * MiB
    max_total_decompressed: int = 512 * MiB
    max_ratio: int = 1000
    max_depth: int = 8
    max_members: int = 20_000
    max_elements: int = 2_000_000
    seconds: float = 60.0
    hash_inputs: bool = True
    map_inputs: bool = True
    # Fail closed: an input whose examination stopped at a cap gains an
    # ``incomplete-examination`` finding (exit status 1). ``True`` only reports the cap
    # as an error entry (the behaviour before: such an input could exit 0).
    allow_incomplete: bool = False
    # The data (heap) ceiling of a scan worker process, in bytes (``RLIMIT_DATA``); 0:
    # ``memory_ceiling`` derives it from the caps. Only scan workers apply it.
    max_memory: int = 0
    # Open PDFs with qpdf (``False``: read from their raw bytes only; set by the scan
    # workers' supervisor when qpdf overran the hard time limit on this input).
    use_qpdf: bool = True


# A worker's own share of its memory ceiling: the interpreter, numpy, qpdf and the
# structures parsers keep (parsed elements are capped by ``max_elements``).
MEMORY_BASE = 1024 * MiB


def memory_ceiling(limits: Limits) -> int:
    """The memory ceiling of one scan worker: ``limits.max_memory``, or what the caps
    allow one input to hold at once: the input itself when it is read whole (PDF, zip),
    every decompressed byte, and ``MEMORY_BASE`` (2.5 GiB with the default caps)."""
    if limits.max_memory > 0:
        return limits.max_memory
    return MEMORY_BASE + limits.max_file_bytes + limits.max_total_decompressed


class Budget(msgspec.Struct):
    """Mutable account of what one top-level input has used."""

    limits: Limits = msgspec.field(default_factory=Limits)
    started: float = msgspec.field(default_factory=time.monotonic)
    decompressed: int = 0
    elements: int = 0

    def check_time(self) -> None:
        """Raise ``LimitExceeded`` once the per-input time budget is spent."""
        if time.monotonic() - self.started > self.limits.seconds:
            raise LimitExceeded(f"time budget of {self.limits.seconds:g}s exhausted")

    def charge_elements(self, n: int = 1) -> None:
        """Count parsed elements (segments, boxes, chunks...) against the cap."""
        self.elements += n
        if self.elements > self.limits.max_elements:
            raise LimitExceeded(f"more than {self.limits.max_elements} elements")
        if self.elements & 0x3FF == 0:
            self.check_time()

    def charge_decompressed(self, n: int, compressed: int) -> None:
        """Account decompressed output against the total and ratio caps."""
        self.decompressed += n
        if self.decompressed > self.limits.max_total_decompressed:
            raise LimitExceeded(
                f"decompressed output over {self.limits.max_total_decompressed} bytes"
            )
        if n > 1 * MiB and n > self.limits.max_ratio * max(compressed, 1):
            raise LimitExceeded(f"decompression ratio over {self.limits.max_ratio}:1")
        self.check_time()

    def stream_cap(self) -> int:
        """How many bytes one decompressed stream may still produce."""
        left = self.limits.max_total_decompressed - self.decompressed
        return max(0, min(self.limits.max_stream_bytes, left))
