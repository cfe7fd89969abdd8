"""The contract between the engine and a format module.

A format module exposes ``SPEC = FormatSpec(...)``. ``sniff(head)`` looks only at the first
bytes (``SNIFF_BYTES``, 1 KiB) and must be cheap; it lives in ``formats.magic``, so that the
engine sniffs without importing parsers. ``parse(data, ctx)`` returns ``Parsed``.
Containers return ``children`` (an iterable, produced lazily) that the engine scans as
objects of their own; every format reports its ``logical_end`` so the engine can look at
data appended after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from spywall.formats.magic import SNIFF_BYTES as SNIFF_BYTES  # the sniffers' window
from spywall.limits import Budget


class Child(msgspec.Struct, frozen=True):
    """An object inside a container, scanned by the engine in memory.

    ``name`` is the member name as the container spells it (never used as a file system
    path). ``format`` forces a format for data that has no magic of its own (for example
    JBIG2 segments embedded in a PDF, format ``"jbig2-embedded"``). A member that could
    not be extracted is yielded with ``error`` set (and no data); the engine reports it
    and goes on with the next member; ``code`` is the error entry's code (``limit`` for a
    member that passed a cap, which makes the input incomplete).
    """

    name: str
    data: bytes
    format: str | None = None
    error: str | None = None
    code: str = "malformed"


class ParseContext(msgspec.Struct):
    """What a parser may use: the budget for this input and its nesting depth."""

    budget: Budget
    depth: int = 0
    path: str = ""


class Parsed(msgspec.Struct):
    """Result of parsing one object.

    ``structure`` is the format's own typed structure, read by its detectors.
    ``logical_end`` is the offset where the format's own data ends (``None`` if unknown
    or if the format runs to the end by definition). ``children`` are contained objects.
    ``warnings`` are non-fatal parse problems, reported as error entries of kind
    ``malformed`` without stopping detection. ``incomplete`` names each cap the parser
    hit and where: ``structure`` then holds what was read before it (detectors still
    run on it), and the engine records a ``limit`` error entry for each.
    """

    format: str
    structure: object = None
    logical_end: int | None = None
    children: Iterable[Child] = ()
    warnings: list[str] = msgspec.field(default_factory=list)
    incomplete: list[str] = msgspec.field(default_factory=list)


class FormatSpec(msgspec.Struct, frozen=True):
    """A registered format: a name, a content sniffer and a parser."""

    name: str
    description: str
    sniff: Callable[[bytes], bool]
    parse: Callable[[bytes, ParseContext], Parsed]
    container: bool = False
    # The parser reads (nearly) every byte, or copies the data whole: a large input is
    # then read into memory rather than mapped, since mapping would only add page faults.
    dense: bool = False
