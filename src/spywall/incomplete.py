"""Fail closed: an input that could not be examined completely is never reported clean.

Every command records a cap it hit (size, count, depth, decompression, time, buffered
bytes) as an error entry of code ``limit``. ``mark_incomplete`` adds, for each, a
``heuristic`` finding with rule ``incomplete-examination`` naming the cap and where it was
hit, so the command's exit status is 1, never 0; the findings made before the cap are
kept as they are. ``scan`` also counts what it could not open (code ``unsupported``: an
encrypted zip member or PDF, a PDF stream behind a filter no standard defines, a zip
compression method it cannot decompress): ``SCAN_CODES``. A device check counts every
entry its modules add for evidence they could not read (``mark_unread``: a malformed or
unknown artifact, not a missing one). ``--allow-incomplete`` (``allow=True``) leaves them
as error entries only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from spywall.report import (
    ErrorEntry,
    Finding,
    FindingKind,
    Location,
    Scalar,
    Severity,
    Subject,
)

INCOMPLETE_RULE = "incomplete-examination"
# Error codes that mean part of an input was not examined.
INCOMPLETE_CODES = frozenset({"limit"})
# The same for ``scan``: also the containers and streams it could not open.
SCAN_CODES = INCOMPLETE_CODES | {"unsupported"}
MAX_INCOMPLETE_FINDINGS = 16


def mark_incomplete(subject: Subject, allow: bool = False,
                    counts: Callable[[ErrorEntry], bool] | None = None,
                    codes: frozenset[str] = INCOMPLETE_CODES) -> Subject:
    """Add an ``incomplete-examination`` finding for each cap ``subject`` hit, and each
    part it could not open when ``codes`` has ``unsupported`` (at most
    ``MAX_INCOMPLETE_FINDINGS``; ``detail.limits_hit`` has the total). ``counts`` narrows
    which entries stand for data not examined."""
    if allow:
        return subject
    _add(subject, [e for e in subject.errors
                   if e.code in codes and (counts is None or counts(e))])
    return subject


def mark_unread(subject: Subject, entries: Sequence[ErrorEntry], module: str,
                allow: bool = False) -> None:
    """A device check module's share (``spywall.device.runner``): each of ``entries``
    (what it could not read, whatever the code: a cap, a malformed or unknown artifact, an
    unreadable file) becomes an ``incomplete-examination`` finding of ``module``."""
    if not allow:
        _add(subject, entries, module)


def _add(subject: Subject, hits: Sequence[ErrorEntry], module: str | None = None) -> None:
    for e in hits[:MAX_INCOMPLETE_FINDINGS]:
        if e.code == "limit":
            how, what = "examination stopped at a limit in", "what lies beyond it"
            why = "an exploit may be there" if module is None else "a trace may be there"
        elif e.code == "unsupported":
            how, what = "could not open a part of the input in", "what lies beyond it"
            why = "an exploit may be there"
        else:  # (a device check's artifact, malformed or of an unknown form)
            how, what = f"could not read ({e.code}) part of the evidence in", "what it holds"
            why = "a trace may be there"
        detail: dict[str, Scalar] = {"limit": e.message, "where": e.path,
                                     "limits_hit": len(hits)}
        if module is not None:
            detail["module"] = module
        subject.findings.append(Finding(
            rule=INCOMPLETE_RULE,
            title="Input not examined completely",
            kind=FindingKind.HEURISTIC,
            severity=Severity.MEDIUM,
            message=f"{how} {e.path}: {e.message}; {what} was not examined ({why})",
            path=e.path,
            object_sha256=subject.sha256,
            location=Location(module=module),
            detail=detail,
        ))
