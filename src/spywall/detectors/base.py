"""The contract between the engine and a detector module.

A detector module exposes ``DETECTOR = Detector(info=DetectorInfo(...), detect=fn)``.
``fn(parsed)`` receives the ``Parsed`` result of one of the formats named in
``info.formats`` and yields ``Hit`` objects. The module docstring (and the detect
function's) states the exact condition that makes a hit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import msgspec

from spywall.formats.base import Parsed
from spywall.report import FindingKind, Severity

Detail = Mapping[str, str | int | float | bool | None]


class DetectorInfo(msgspec.Struct, frozen=True):
    id: str
    title: str
    formats: tuple[str, ...]
    severity: Severity
    kind: FindingKind = FindingKind.EXPLOIT
    cves: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    description: str = ""


class Hit(msgspec.Struct, frozen=True):
    """One match of a detector's condition at one place in the object."""

    message: str
    offset: int | None = None
    detail: Detail = msgspec.field(default_factory=dict)
    severity: Severity | None = None


class Detector(msgspec.Struct, frozen=True):
    info: DetectorInfo
    detect: Callable[[Parsed], Iterable[Hit]]
