"""The iOS versions a phone has run, from a filesystem dump (MVT's ``version_history``
and ``analytics_ios_versions``): a timeline of updates, so that an analyst can tell which
iOS was installed on the day of an infection (and so which exploits it was exposed to).

- ``analytics_ios_versions``: the keychain analytics events (``analytics``) that name a
  ``build`` (``20F66``): the first time each build appears, and its version where
  spywall knows it (the release list behind ``ios-outdated``, and the dump's own
  SystemVersion.plist; ``""`` otherwise). MVT's fields: ``build``, ``version``.

``private/var/db/analyticsd/Analytics-Journal-*.ips``: analyticsd's journals, each
beginning with a one-line JSON header whose ``timestamp`` (``YYYY-MM-DD hh:mm:ss.ff
+zzzz``, device local time with its offset) and ``os_version`` (``iPhone OS 16.5
(20F66)``) say which iOS wrote it and when. One record per journal (MVT's fields:
``os_version``; the time in UTC), sorted by time. Only the header line is read, at most
``MAX_HEADER`` bytes; a journal whose header is not that is an error entry of its own,
the others are still read.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from spywall.device.base import FnModule, Record, iso_apple, iso_unix
from spywall.errors import FormatError
from spywall.ios import analytics, releases
from spywall.ios.common import SKIPPED, Ctx, Result, ok
from spywall.ios.fsdump import FILE, FsDump
from spywall.report import ErrorEntry

MAX_HEADER = 64 * 1024
MAX_JOURNALS = 10_000
_JOURNAL = re.compile(r"private/var/db/analyticsd/Analytics-Journal-[^/]{1,255}\.ips")


def parse_header(head: bytes) -> tuple[str | None, str]:
    """(UTC time, os_version) of a journal's first line; ``ValueError`` saying why when it
    is not the header analyticsd writes."""
    line = head.split(b"\n", 1)[0].strip()
    try:
        doc = msgspec.json.decode(line)
    except msgspec.DecodeError as exc:
        raise ValueError(f"first line is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ValueError("first line is not a JSON object")
    stamp, version = doc.get("timestamp"), doc.get("os_version")
    if not isinstance(version, str) or not isinstance(stamp, str):
        raise ValueError("header has no timestamp and os_version text")
    try:
        when = datetime.strptime(stamp[:64], "%Y-%m-%d %H:%M:%S.%f %z")
    except ValueError as exc:
        raise ValueError(f"header timestamp {stamp[:64]!r} is not a time") from exc
    return iso_unix(when.timestamp()), version[:1024]


def _version_history(ctx: Ctx) -> Result:
    dump = ctx.evidence
    if not isinstance(dump, FsDump):
        return SKIPPED
    journals = sorted((e for e in dump.entries
                       if e.flags == FILE and _JOURNAL.fullmatch(e.disk)),
                      key=lambda e: e.disk)[:MAX_JOURNALS]
    if not journals:
        return SKIPPED
    recs: list[Record] = []
    bad: list[str] = []
    for e in journals:
        path = dump.display(e)
        try:
            when, version = parse_header(dump.read_head(e, MAX_HEADER)[0])
        except (ValueError, OSError, FormatError) as exc:
            bad.append(f"{e.disk.rsplit('/', 1)[-1]}: {exc}"[:300])
            ctx.subject.errors.append(ErrorEntry(path=path, code="malformed",
                                                 message=f"version_history: {exc}"[:600]))
            continue
        recs.append(Record("version_history", when, "ios_version", {"os_version": version}))
    if not recs:
        return ("error", 0, f"no journal header could be read: {bad[0]}")
    recs.sort(key=lambda r: r.timestamp or "")
    ctx.extend("version_history", recs)
    return ok(len(recs), f"{len(bad)} journal(s) unreadable" if bad else "")


MAX_BUILDS = 10_000
_BUILD = re.compile(r"[0-9]{1,3}[A-Z][0-9]{1,6}[a-z]?")


def build_versions(dump: FsDump, known_releases: releases.Releases) -> dict[str, str]:
    """Build -> iOS version, from the release list and the dump's SystemVersion.plist."""
    known = known_releases.builds()
    build, version = dump.info.get("Build Version"), dump.info.get("Product Version")
    if isinstance(build, str) and isinstance(version, str):
        known[build.upper()] = version
    return known


def _analytics_versions(ctx: Ctx) -> Result:
    dump = ctx.evidence
    dbs = analytics.databases(ctx)
    if not isinstance(dump, FsDump) or not dbs:
        return SKIPPED
    first: dict[str, float | int] = {}
    seen = odd = 0
    for entry in dbs:
        for _, stamp, values in analytics.events(ctx, entry):
            build = values.get("build")
            if not build or stamp is None or iso_apple(stamp) is None:
                continue
            if not _BUILD.fullmatch(build):
                odd += 1
                continue
            seen += 1
            if build in first:
                first[build] = min(first[build], stamp)
            elif len(first) < MAX_BUILDS:
                first[build] = stamp
    known = build_versions(dump, releases.for_sources(ctx.index.sources))
    recs = sorted((Record("analytics_ios_versions", iso_apple(t), "analytics_ios_version",
                          {"build": b, "version": known.get(b.upper(), "")})
                   for b, t in first.items()), key=lambda r: r.timestamp or "")
    ctx.extend("analytics_ios_versions", recs)
    parts = [f"{len(recs)} build(s) in {seen} event(s)"]
    if odd:
        parts.append(f"{odd} event(s) with a build that is not one, ignored")
    return ok(len(recs), "; ".join(parts))


MODULES = (
    FnModule("version_history", "iOS versions the phone ran, by date (analyticsd journals)",
             _version_history),
    FnModule("analytics_ios_versions",
             "iOS builds the phone ran, first seen in keychain analytics events",
             _analytics_versions),
)
