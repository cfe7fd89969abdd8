"""Helpers the iOS modules share: finding artifacts, opening them, links in text, and
scanning attachments with the scan engine."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from spywall.device.base import (
    ArtifactMissing,
    CheckContext,
    Record,
    iso_apple,
    load_plist,
    url_host,
)
from spywall.device.sqlite import open_evidence
from spywall.ios.backup import Entry
from spywall.report import Scalar


class Evidence(Protocol):
    """What the iOS modules read: a backup (``backup.Backup``) or a filesystem dump
    (``fsdump.FsDump``), both addressed by (domain, relativePath) entries."""

    root: Path
    info: dict[str, object]
    entries: list[Entry]
    inputs: dict[str, str]

    @property
    def encrypted(self) -> bool: ...
    def get(self, domain: str, relative_path: str) -> Entry | None: ...
    def with_suffix(self, suffix: str) -> list[Entry]: ...
    def display(self, entry: Entry) -> str: ...
    def local_path(self, entry: Entry) -> Path: ...
    def size(self, entry: Entry) -> int: ...
    def read(self, entry: Entry, limit: int) -> bytes: ...
    def wal(self, entry: Entry) -> Path | None: ...


Ctx = CheckContext[Evidence]
Result = tuple[str, int, str]

SKIPPED: Result = ("skipped", 0, "artifact not in this backup")
MAX_LINKS_PER_TEXT = 64
MAX_ROWS = 5_000_000
_URL = re.compile(r"(?i)(?:\b[a-z][a-z0-9+.-]{1,15}://|\bwww\.)[^\s<>\"'`\x00-\x1f\x7f]{1,2048}")
_URL_B = re.compile(rb"(?i)(?:\bhttps?://|\bwww\.)[!#-;=?-~]{1,2048}")
_TRAIL = ".,;:!?)]}>'\""


MAX_TEXT = 4096


def scalar(value: object) -> Scalar:
    """A column value as a record keeps it: text and numbers as they are, a blob as its
    UTF-8 text (invalid bytes replaced), each text cut at ``MAX_TEXT``."""
    if isinstance(value, bytes):
        value = value[:MAX_TEXT * 4].decode("utf-8", "replace")
    if isinstance(value, str):
        return value[:MAX_TEXT]
    return value if isinstance(value, int | float) else None


def apple_field(value: object) -> str | None:
    """An Apple-epoch time as MVT writes one inside a record (``YYYY-MM-DD hh:mm:ss.ffffff``,
    UTC), None when absent or implausible."""
    from spywall.device.output import mvt_time

    iso = iso_apple(value) if isinstance(value, int | float) else None
    return mvt_time(iso) if iso else None


def ok(n: int, message: str = "") -> Result:
    return ("ok", n, message)


def links(text: str | None) -> list[str]:
    """URL-like substrings of ``text`` (bounded), trailing punctuation removed."""
    if not text or ("://" not in text and "www." not in text.lower()):
        return []
    out = []
    for m in _URL.finditer(text):
        out.append(m.group(0).rstrip(_TRAIL))
        if len(out) >= MAX_LINKS_PER_TEXT:
            break
    return out


def links_in_bytes(blob: bytes | None) -> list[str]:
    """URL-like ASCII runs in a binary blob (typedstream attributedBody, plists)."""
    if not blob:
        return []
    out = []
    for m in _URL_B.finditer(blob):
        out.append(m.group(0).decode("ascii").rstrip(_TRAIL))
        if len(out) >= MAX_LINKS_PER_TEXT:
            break
    return out


def host_of(url: str) -> str:
    return url_host(url).lower()


def first_entry(ctx: Ctx, candidates: Sequence[tuple[str, str]]) -> Entry | None:
    for domain, rel in candidates:
        e = ctx.evidence.get(domain, rel)
        if e is not None and e.is_file:
            return e
    return None


class single:  # noqa: N801 (used like the function it was)
    """A module over the first of ``candidates`` present (skipped when none is):
    ``fn(ctx, entry, display_path)``. ``weight``: the size of that file (times
    ``per_byte``, for a module whose bytes cost more than most), so that a check spread
    over processes starts the largest artifacts first."""

    def __init__(self, candidates: Sequence[tuple[str, str]],
                 fn: Callable[[Ctx, Entry, str], Result], per_byte: int = 1) -> None:
        self.candidates, self.fn, self.per_byte = candidates, fn, per_byte

    def __call__(self, ctx: Ctx) -> Result:
        entry = first_entry(ctx, self.candidates)
        if entry is None:
            return SKIPPED
        return self.fn(ctx, entry, ctx.evidence.display(entry))

    def weight(self, ctx: Ctx) -> int:
        entry = first_entry(ctx, self.candidates)
        return ctx.evidence.size(entry) * self.per_byte if entry is not None else 0


class every:  # noqa: N801 (used like the function it was)
    """A module over every file whose relativePath ends with ``suffix`` (any domain):
    ``fn(ctx, entry, display_path)`` returns the records it read. ``weight``: their
    total size."""

    def __init__(self, suffix: str, fn: Callable[[Ctx, Entry, str], int]) -> None:
        self.suffix, self.fn = suffix, fn

    def __call__(self, ctx: Ctx) -> Result:
        entries = ctx.evidence.with_suffix(self.suffix)
        if not entries:
            return SKIPPED
        n = absent = 0
        for e in entries:
            try:
                n += self.fn(ctx, e, ctx.evidence.display(e))
            except ArtifactMissing:  # listed, not stored: no data from that one
                absent += 1
        if absent == len(entries):
            return ("skipped", 0, f"no data: {absent} file(s) listed in Manifest.db but "
                    "not stored in the backup")
        return ok(n, f"{absent} file(s) listed but not stored" if absent else "")

    def weight(self, ctx: Ctx) -> int:
        return sum(ctx.evidence.size(e) for e in ctx.evidence.with_suffix(self.suffix))


@contextmanager
def database(ctx: Ctx, entry: Entry) -> Iterator[sqlite3.Connection]:
    """The entry's database, read-only and immutable (WAL applied on a private copy)."""
    b = ctx.evidence
    with open_evidence(b.local_path(entry), wal=b.wal(entry),
                       seconds=ctx.limits.seconds) as conn:
        yield conn


def plist(ctx: Ctx, entry: Entry) -> object:
    return load_plist(ctx.evidence.read(entry, 64 * 1024 * 1024))


def strings(obj: object, limit: int = 100_000) -> Iterator[str]:
    """Every string in a plist structure, breadth first, at most ``limit`` items visited."""
    todo: list[object] = [obj]
    seen = 0
    while todo and seen < limit:
        cur = todo.pop()
        seen += 1
        if isinstance(cur, str):
            yield cur
        elif isinstance(cur, dict):
            todo.extend(cur.keys())
            todo.extend(cur.values())
        elif isinstance(cur, list | tuple):
            todo.extend(cur)


def check_links(ctx: Ctx, found: Sequence[str], rec: Record, path: str, what: str,
                detail: dict[str, Scalar] | None = None) -> int:
    n = 0
    url = ctx.lookup.url
    for u in found:
        if url(u):  # memoised by host; most links match nothing
            n += ctx.check("url", u, rec=rec, path=path, what=what, detail=detail)
    return n


def scan_attachment(ctx: Ctx, entry: Entry, rec: Record, detail: dict[str, Scalar]) -> bool:
    """Scan one attachment with the engine; re-attach its findings and errors. False when
    the evidence lists the file but does not hold it."""
    if not ctx.scan_attachments:
        return True
    b = ctx.evidence
    path = b.display(entry)
    try:
        data = b.read(entry, ctx.limits.max_file_bytes)
    except ArtifactMissing:
        return False
    from spywall import engine  # the scan engine (and qpdf) only once an attachment exists

    sub = engine.scan_bytes(data, path, ctx.limits)
    for f in sub.findings:
        f.detail.update(detail)
        f.location.module, f.location.timestamp = rec.module, rec.timestamp
        f.location.record = rec.event
        ctx.add(rec, f)
    ctx.scanned(sub.errors)
    ctx.subject.objects += sub.objects
    return True
