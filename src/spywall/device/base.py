"""The device-check framework shared by ``check-ios`` and ``check-android``.

A check is a list of *modules*. Each module reads one artifact of the evidence (a database,
a plist, a text dump), records what it saw for the timeline, and matches values against
the indicator index through its ``CheckContext``. The runner (``device.runner``) calls
every module in turn; a module that meets a malformed or unknown artifact fails alone
(its ``ModuleRun`` says ``error`` or ``schema-unknown``) and the others go on.
"""

from __future__ import annotations

import plistlib
import re
import sqlite3
import time
import xml.parsers.expat
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from spywall.errors import FormatError, LimitExceeded, SpywallError
from spywall.iocs import Indicator, IocIndex
from spywall.iocs.index import MAX_QUERY
from spywall.iocs.model import norm_domain
from spywall.limits import Limits
from spywall.report import (
    ErrorEntry,
    Finding,
    FindingKind,
    Location,
    ModuleRun,
    Scalar,
    Severity,
    Subject,
)

E = TypeVar("E")

# Seconds between the Unix epoch and Apple's (Core Data / Cocoa) epoch, 2001-01-01.
APPLE_EPOCH = 978_307_200
# Plausible unix-seconds range for evidence timestamps (1990 .. 2100).
_TS_MIN, _TS_MAX = 631_152_000, 4_102_444_800


class SchemaUnknown(SpywallError):
    """An artifact is present but its schema is not one the module knows."""

    code = "schema"


class ArtifactMissing(SpywallError):
    """The evidence names an artifact whose content it does not hold (a backup's
    Manifest.db lists a file that was not stored): no data, not a broken artifact."""

    code = "missing"


class Record(msgspec.Struct, frozen=True, gc=False):
    """One timeline entry: when, what, and the module's own fields.

    Immutable, and built in C (a large backup makes tens of thousands: a named tuple's
    ``__new__`` is Python code, 0.23 us a record against 0.06, measured). It holds no
    cycle, so the collector need not track it."""

    module: str
    timestamp: str | None
    event: str
    data: dict[str, Scalar]


class Batch(msgspec.Struct, frozen=True):
    """Records of one module given as columns: record ``i`` is ``Record(module,
    stamps[i], events[i], {name: column[i] for name, column in fields.items()})``.

    A large table (every message, every visit) is read as columns; when the run renders
    a result folder, the renderer reads them as they are, and no record object or field
    dict is made for a row that carries no finding (``CheckContext.batch``)."""

    module: str
    stamps: list[str | None]
    events: list[str]
    fields: dict[str, Sequence[Scalar]]

    def __len__(self) -> int:
        return len(self.stamps)

    def records(self) -> list[Record]:
        """The batch as record objects (a run that renders no folder keeps those)."""
        names, module = list(self.fields), self.module
        return [Record(module, ts, ev, dict(zip(names, values, strict=True)))
                for ts, ev, *values in zip(self.stamps, self.events, *self.fields.values(),
                                           strict=True)]


MAX_MEMO = 500_000
_AUTHORITY = re.compile(r"[^/?#]*")


def url_host(url: str) -> str:
    """The host part of a URL the way ``IocIndex.match_url`` takes it (scheme-less allowed):
    after the first ``://``, up to the first ``/``, ``?`` or ``#``, after any ``user@``."""
    text = url.strip()
    i = text.find("://")
    m = _AUTHORITY.match(text, i + 3 if i >= 0 else 0)
    return m.group().rpartition("@")[2] if m else ""


class Lookup:
    """Memoised indicator look-ups: evidence repeats values (hosts, processes, senders).

    A URL matches through its host (memoised per host: a history holds many pages of few
    sites) and, only when the index holds URL indicators, through the exact URL as well:
    the same answer as ``IocIndex.match_url``, which does both every time.
    """

    def __init__(self, index: IocIndex) -> None:
        self.index = index
        self.memo: dict[tuple[str, str], list[Indicator]] = {}
        self.url_exact = any(i.kind == "url" for i in index.indicators)
        self._url_sites = index.url_sites() if self.url_exact else set()
        self._site_may_match: dict[str, bool] = {}   # raw host part -> in _url_sites

    def _may_match_exactly(self, value: str) -> bool:
        """Whether ``value`` could equal an exact URL indicator: its host part (before the
        first ``/``, as ``norm_url`` cuts it), normalised once per distinct host part, is
        one of the indicators'. A history holds many pages of few sites."""
        text = value.strip()
        i = text.find("://")
        part = (text[i + 3:] if i >= 0 else text).partition("/")[0]
        known = self._site_may_match.get(part)
        if known is None:
            known = norm_domain(part) in self._url_sites
            if len(self._site_may_match) < MAX_MEMO:
                self._site_may_match[part] = known
        return known

    def match(self, kind: str, value: str) -> list[Indicator]:
        if kind == "url":
            return self.url(value)
        key = (kind, value)
        hits = self.memo.get(key)
        if hits is None:
            hits = self.index.match(kind, value)
            if len(self.memo) < MAX_MEMO:
                self.memo[key] = hits
        return hits

    def url(self, value: str) -> list[Indicator]:
        """``match("url", value)``: by host (memoised), and exactly when the index holds
        URL indicators. A column of URLs goes faster through ``urls``."""
        if not value or len(value) > MAX_QUERY:
            return []
        host = url_host(value)
        by_host = self.match("host", host) if host else []
        if self.url_exact and self._may_match_exactly(value):
            exact = self.index.match_url_exact(value)
            if exact:
                return exact + by_host
        return by_host

    def urls(self, values: Sequence[str]) -> list[list[Indicator]]:
        """``[self.url(v) for v in values]``, for a column of URLs (a browser history):
        every host is cut out by one regular-expression pass over the joined column, and
        each distinct host matched once; exact URL indicators are looked up only for the
        values whose host part is one of theirs. Values that would break the line
        alignment (a newline inside) or long ones take ``url`` one by one."""
        if not values:
            return []
        text = "\n".join(values)
        if text.count("\n") != len(values) - 1 or max(map(len, values)) > MAX_QUERY:
            return [self.url(v) for v in values]
        hosts = _HOSTS.findall(text)
        if len(hosts) != len(values):  # (cannot happen: one match per line)
            return [self.url(v) for v in values]
        if self.url_exact:       # exact URL indicators too, for the few that may match
            exact = [self.index.match_url_exact(v) if v and self._may_match_exactly(v)
                     else [] for v in values]
            by = self._hosts(hosts)
            return [e + by[h] if e else by[h] for e, h in zip(exact, hosts, strict=True)]
        by_host = self._hosts(hosts)
        return [by_host[h] for h in hosts]

    def _hosts(self, hosts: list[str]) -> dict[str, list[Indicator]]:
        """Each distinct host of a column matched once (memoised)."""
        memo = self.memo
        by_host: dict[str, list[Indicator]] = {"": []}
        for host in set(hosts):
            if host:
                got = memo.get(("host", host))
                by_host[host] = got if got is not None else self.match("host", host)
        return by_host


# The host of each line of joined URLs, as ``url_host`` cuts it: after the first "://"
# (or from the start of the line), after the last "@" of the authority, up to "/?#".
_HOSTS = re.compile(r"^(?:[^\n]*?://)?(?:[^/?#\n]*@)?([^/?#\n@]*)", re.M)


class CheckContext(Generic[E]):
    """What a module sees: the evidence, the index, and where results go.

    (A plain class: it holds a look-up memo made from the index, and is built once per
    check, so neither a dataclass nor a struct buys anything.)"""

    def __init__(self, evidence: E, index: IocIndex, subject: Subject,
                 limits: Limits | None = None, *, timeline: bool = True,
                 scan_attachments: bool = True, lookup: Lookup | None = None) -> None:
        self.evidence = evidence
        self.index = index
        self.subject = subject
        self.limits = limits if limits is not None else Limits()
        self.records: dict[str, list[Record]] = {}
        self.detected: dict[str, list[Record]] = {}
        self.timeline = timeline
        self.scan_attachments = scan_attachments
        self.lookup = lookup if lookup is not None else Lookup(index)
        # The rendered parts of the result folder, when the run rendered them (ModulePart).
        self.parts: list[Any] | None = None
        # When the run renders a result folder, the batches of records a module gave as
        # columns, each with the number of that module's records that came before it.
        self.columns = False
        self.batches: dict[str, list[tuple[int, Batch]]] = {}
        # The error entries of files the scan engine examined (``scanned``), by identity
        # (the entries are kept, so no identity is reused while they are here).
        self._scanned: dict[int, ErrorEntry] = {}

    def view(self) -> CheckContext[E]:
        """A context for one module run: the same evidence, index, limits, options and
        look-up memo, with a subject, records and findings of its own (``parallel``
        merges them in module order)."""
        # (the memo is shared: what one module looked up, the next one need not)
        view = CheckContext(self.evidence, self.index,
                            Subject(path=self.subject.path, objects=0), self.limits,
                            timeline=self.timeline, scan_attachments=self.scan_attachments,
                            lookup=self.lookup)
        view.columns = self.columns
        return view

    def any_hit(self, kind: str, values: Iterable[str]) -> bool:
        """Whether any value matches (memoised). With ``timeline`` off, a module may skip
        building records for rows that match nothing."""
        return any(self.lookup.match(kind, v) for v in values if v)

    def record(self, module: str, timestamp: str | None, event: str,
               data: dict[str, Scalar]) -> Record:
        rec = Record(module, timestamp, event, data)
        self.records.setdefault(module, []).append(rec)
        return rec

    def extend(self, module: str, recs: list[Record]) -> None:
        """Add records a module built itself (its hot loop appends to a local list)."""
        if recs:
            self.records.setdefault(module, []).extend(recs)

    def batch(self, batch: Batch) -> None:
        """Add records a module gave as columns (after the records it added before):
        kept as columns when the run renders a result folder (``columns``, set by the
        runner), else made into records (``extend``). A record that carries a finding is
        made by the module as well, for the finding."""
        if not batch.stamps:
            return
        if self.columns:  # (the module's place among the others: where it first recorded)
            before = len(self.records.setdefault(batch.module, []))
            self.batches.setdefault(batch.module, []).append((before, batch))
        else:
            self.extend(batch.module, batch.records())

    def scanned(self, errors: Sequence[ErrorEntry]) -> None:
        """Add the error entries of a file the scan engine examined (an attachment). The
        engine judged them itself (its own ``incomplete-examination`` findings for a cap
        or a part it could not open; a malformed file was examined as far as it goes),
        so they are not evidence a module left unread (``unread_since``)."""
        self.subject.errors.extend(errors)
        self._scanned.update((id(e), e) for e in errors)

    def unread_since(self, start: int) -> list[ErrorEntry]:
        """The error entries added from position ``start`` on, but for the scanned
        files' (``scanned``): evidence a module could not read."""
        return [e for e in self.subject.errors[start:] if id(e) not in self._scanned]

    def count(self, module: str) -> int:
        """The records of ``module`` so far, those in batches included."""
        return len(self.records.get(module, ())) + sum(
            len(b) for _, b in self.batches.get(module, ()))

    def add(self, rec: Record | None, finding: Finding) -> None:
        """Append a finding (made elsewhere, e.g. by the scan engine) tied to ``rec``."""
        self.subject.findings.append(finding)
        if rec is not None:
            seen = self.detected.setdefault(rec.module, [])
            if not seen or seen[-1] is not rec:
                seen.append(rec)

    def check(self, kind: str, value: str | None, *, rec: Record | None, path: str,
              what: str, severity: Severity = Severity.CRITICAL,
              detail: dict[str, Scalar] | None = None) -> int:
        """Match ``value`` as an indicator of ``kind``; add a finding per indicator hit:
        critical, as MVT marks a detected indicator, unless the module passes a lower
        ``severity`` (MVT's manifest, filesystem, locationd and sms_attachments modules
        mark theirs high: a name or path alone)."""
        if not value:
            return 0
        hits = self.lookup.match(kind, value)
        for ind in hits:
            module = rec.module if rec else "device"
            loc = Location(module=module, timestamp=rec.timestamp if rec else None,
                           record=rec.event if rec else None)
            f = self.index.finding(
                ind, value, path=path, rule=f"ioc-{ind.kind.replace('_', '-')}",
                title=f"{ind.collection} indicator in {what}",
                message=f"{what}: {value!r} matches a published {ind.collection} "
                        f"indicator ({ind.value})",
                location=loc, severity=severity,
            )
            if detail:
                f.detail.update(detail)
            self.add(rec, f)
        return len(hits)

    def heuristic(self, rule: str, title: str, message: str, *, rec: Record | None,
                  path: str, severity: Severity = Severity.MEDIUM,
                  kind: FindingKind = FindingKind.HEURISTIC,
                  detail: dict[str, Scalar] | None = None,
                  references: Sequence[str] = ()) -> Finding:
        """Add a non-indicator finding (a heuristic, or a rule-grade condition)."""
        f = Finding(
            rule=rule, title=title, kind=kind, severity=severity, message=message, path=path,
            references=list(references),
            location=Location(module=rec.module if rec else None,
                              timestamp=rec.timestamp if rec else None,
                              record=rec.event if rec else None),
            detail=dict(detail or {}),
        )
        self.add(rec, f)
        return f


class Module(Protocol[E]):
    """A check module: a name, a one-line description, and ``run``."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...

    def run(self, ctx: CheckContext[E]) -> ModuleRun: ...


class FnModule(msgspec.Struct, Generic[E], frozen=True):
    """A module made of a function; ``fn`` returns (status, records, message)."""

    name: str
    description: str
    fn: Callable[[CheckContext[E]], tuple[str, int, str]]

    def run(self, ctx: CheckContext[E]) -> ModuleRun:
        status, n, message = self.fn(ctx)
        return ModuleRun(name=self.name, status=status, records=n, message=message)

    def weight(self, ctx: CheckContext[E]) -> int:
        """A cost estimate (bytes of the artifacts to read) when ``fn`` offers one."""
        estimate = getattr(self.fn, "weight", None)
        try:
            return int(estimate(ctx)) if estimate is not None else 0
        except MODULE_ERRORS:
            return 0


# Errors a module may meet on hostile evidence. Each is one module's failure, never the
# check's: sqlite3 (malformed databases), plistlib (bad plists: ValueError/expat errors,
# InvalidFileException is a ValueError), our own bounded parsers, unreadable files.
# Type and key errors are bugs: modules check the types of what they read.
MODULE_ERRORS: tuple[type[BaseException], ...] = (
    FormatError, LimitExceeded, sqlite3.DatabaseError, sqlite3.Warning,
    plistlib.InvalidFileException, xml.parsers.expat.ExpatError, ValueError,
    OverflowError, OSError, RecursionError,
)


_DAYS: dict[int, str] = {}
# "HH:MM:" of each minute of a day and "SS" of each second: a time of day is two list
# look-ups and a concatenation (an f-string with three formatted fields was 1.5 us a
# record, the largest single cost of building a 27,000-record timeline; measured).
_HHMM = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
_SS = [f"{s:02d}" for s in range(60)]
_SSZ = [f"{s:02d}Z" for s in range(60)]


def _iso(whole: int, micro: int = 0) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` of unix seconds ``whole`` plus ``micro``
    microseconds (written only when not zero, as MVT keeps them)."""
    if not _TS_MIN <= whole <= _TS_MAX:
        return None
    day, sec = divmod(whole, 86_400)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))
    minute, second = divmod(sec, 60)
    if micro:
        return f"{date}{_HHMM[minute]}{_SS[second]}.{micro:06d}Z"
    return date + _HHMM[minute] + _SSZ[second]


def _iso_float(seconds: float) -> str | None:
    if not _TS_MIN <= seconds <= _TS_MAX:  # also refuses NaN
        return None
    whole = int(seconds)
    micro = round((seconds - whole) * 1e6)
    if micro >= 1_000_000:  # (rounded up into the next second)
        whole, micro = whole + 1, 0
    return _iso(whole, micro)


def iso_unix(seconds: float | int | None) -> str | None:
    """ISO-8601 UTC of unix seconds (microseconds kept when there are some), or None when
    absent or implausible.

    The date part is formatted once per day and kept (a timeline has tens of thousands of
    times on a few hundred days); the time of day comes from two tables. The result is
    ``datetime.fromtimestamp(seconds, UTC)`` written as ISO-8601 with a ``Z`` (a test
    checks it)."""
    if seconds.__class__ is int:
        return _iso(seconds)
    if seconds.__class__ is float:
        return _iso_float(seconds)
    return None  # None, bool, text, bytes from a schema that stores something else


_NS = 1_000_000_000
CHROME_EPOCH = 11_644_473_600  # seconds from 1601-01-01 (Chromium's epoch) to 1970


def iso_chrome(value: object) -> str | None:
    """ISO-8601 UTC of a Chromium time (microseconds since 1601-01-01), None when absent
    (0, negative, not a number). An integer is converted exactly: whole seconds and
    microseconds apart (through a float, a 17-digit count loses its last microsecond)."""
    if value.__class__ is int:
        v: int = value
        if v <= 0:
            return None
        whole, micro = divmod(v - CHROME_EPOCH * 1_000_000, 1_000_000)
        return _iso(whole, micro)
    if value.__class__ is float:
        f: float = value
        return iso_unix(f / 1e6 - CHROME_EPOCH) if f > 0 else None
    return None


def iso_apple(value: float | int | None) -> str | None:
    """ISO-8601 UTC of an Apple-epoch time: seconds, or nanoseconds (newer sms.db;
    their microseconds exactly, from the integer)."""
    if value.__class__ is int:
        v: int = value
        if v > 1_000_000_000_000 or v < -1_000_000_000_000:  # nanoseconds since 2001
            if v > 10**20 or v < -10**20:  # centuries away
                return None
            whole, ns = divmod(v, _NS)
            return _iso(whole + APPLE_EPOCH, ns // 1000)
        return _iso(v + APPLE_EPOCH) if v else None
    if value.__class__ is not float:
        return None
    f: float = value
    if f > 1e12 or f < -1e12:
        if f > 1e20 or f < -1e20:
            return None
        f /= 1e9
    if not f:
        return None
    f += APPLE_EPOCH
    if not _TS_MIN <= f <= _TS_MAX:  # also refuses NaN
        return None
    whole = int(f)
    if f == whole:  # (most stored times: whole seconds; inline, a Safari visit each)
        return _iso(whole)
    micro = round((f - whole) * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, 0
    return _iso(whole, micro)


try:  # the compiled column conversion (setup.py builds it; absent without a C compiler)
    from spywall.device import _times
except ImportError:  # pragma: no cover - a build without a C compiler
    _times = None  # type: ignore[assignment]


def iso_apple_times(values: Sequence[object]) -> list[str | None]:
    """``iso_apple`` of each value (a column of a table), the same texts: in compiled code
    (``device._times``) when it is built, which converts plain ints and floats itself and
    hands any other value to ``iso_apple`` (a Python column conversion was slower than
    the per-row one; the compiled one is about 20 times faster, measured)."""
    if _times is None:
        return list(map(iso_apple, values))
    return _times.iso_apple_column(values, iso_apple)  # type: ignore[arg-type]


def iso_datetime(value: object) -> str | None:
    """ISO-8601 UTC of a plist ``datetime`` (naive = UTC)."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return iso_unix(value.timestamp())


MAX_PLIST = 32 * 1024 * 1024
# What plistlib is known to raise on corrupt input: InvalidFileException (a ValueError),
# expat errors for XML, and lookup/type/overflow errors from corrupt binary offset tables.
PLIST_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, xml.parsers.expat.ExpatError, TypeError, KeyError, IndexError,
    OverflowError, RecursionError, MemoryError,
)


def load_plist(data: bytes, limit: int = MAX_PLIST) -> object:
    """Parse an XML or binary plist; only ``FormatError`` / ``LimitExceeded`` escape."""
    if len(data) > limit:
        raise LimitExceeded(f"plist of {len(data)} bytes over the cap of {limit}")
    try:
        return plistlib.loads(data)
    except PLIST_ERRORS as exc:
        raise FormatError(f"not a valid plist ({type(exc).__name__}: {exc})"[:300]) from exc
