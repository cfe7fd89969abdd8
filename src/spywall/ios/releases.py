"""Which iOS releases are current: the list behind ``ios-outdated``.

A list ships with spywall (``data/ios_releases.json``, dated); ``spywall iocs update``
refreshes it from Apple's release feed (the RSS of developer.apple.com/news/releases,
whose item titles read ``iOS 26.1 (23B85)``) into the update folder as
``ios_releases.list`` (the same JSON). ``current()`` takes the newer of the two by its
date, so a check always says how old its knowledge is.

The feed is read with a bounded regular expression over ``<item>`` titles and dates (no
XML parser: nothing in the feed is trusted, entities are not expanded).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from spywall.report import IocSource

# In the update folder beside the indicator sets, under a name the indicator loader does
# not take for a STIX file (it reads every .json of a folder given to --iocs).
FILENAME = "ios_releases.list"
FEED_URL = "https://developer.apple.com/news/releases/rss/releases.rss"
MAX_FEED = 4 * 1024 * 1024
MAX_RELEASES = 2000
_ITEM = re.compile(r"<item>(.{0,20000}?)</item>", re.S)
_TITLE = re.compile(r"<title>\s*(?:<!\[CDATA\[)?\s*iOS\s+(\d{1,3}(?:\.\d{1,3}){0,3})"
                    r"(?:\s+\(([0-9A-Za-z]{1,16})\))?\s*(?:\]\]>)?\s*</title>")
_DATE = re.compile(r"<pubDate>([^<]{1,64})</pubDate>")
_VERSION = re.compile(r"\d{1,3}(?:\.\d{1,3}){0,3}")


class Release(msgspec.Struct, frozen=True):
    version: str
    released: str = ""
    build: str = ""


class Releases(msgspec.Struct):
    updated: str
    source: str
    releases: list[Release]

    def latest(self) -> Release | None:
        return max(self.releases, key=lambda r: version_tuple(r.version), default=None)

    def builds(self) -> dict[str, str]:
        """Build -> version (``23B85`` -> ``26.1``) of the releases that name a build."""
        return {r.build.upper(): r.version for r in self.releases if r.build}

    def summary(self) -> str:
        """``26.1 (list of 2025-11-03)``: the newest release known, and how old the list
        is, for a person to see."""
        latest = self.latest()
        return (f"{latest.version if latest else 'none'} "
                f"(list of {self.updated or 'unknown date'})")


def version_tuple(text: str) -> tuple[int, ...]:
    """``"18.7.2"`` -> (18, 7, 2); ``()`` for what is not a dotted version."""
    if not _VERSION.fullmatch(text):
        return ()
    return tuple(int(p) for p in text.split("."))


def bundled_path() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "ios_releases.json"


def _load(path: Path) -> Releases | None:
    try:
        if path.stat().st_size > MAX_FEED:
            return None
        got = msgspec.json.decode(path.read_bytes(), type=Releases)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    ok = [r for r in got.releases[:MAX_RELEASES] if version_tuple(r.version)]
    return Releases(got.updated, got.source, ok) if ok else None


def current(update_dir: Path | None = None, also: Iterable[Path] = ()) -> Releases:
    """The newest list: of the refreshed ones in ``update_dir`` (the default update
    folder when None) and in the folders ``also`` (those of the indicator files a check
    loaded: ``iocs update --dest DIR`` then ``--iocs DIR``), the valid one with the
    latest date if newer than the bundled one, else the bundled one."""
    if update_dir is None:
        from spywall.iocs.paths import default_dest

        update_dir = default_dest()
    best = _load(bundled_path())
    if best is None:  # (a broken installation)
        best = Releases("", "none", [])
    for folder in dict.fromkeys((update_dir, *also)):
        fresh = _load(folder / FILENAME)
        if fresh is not None and fresh.updated > best.updated:
            best = fresh
    return best


def for_sources(sources: Iterable[IocSource]) -> Releases:
    """``current`` with the folders of a check's indicator files."""
    return current(also=(Path(s.path).parent for s in sources if s.path))


def parse_feed(text: str) -> list[Release]:
    """The iOS releases announced in Apple's release feed (betas and release candidates,
    whose titles carry ``beta`` / ``RC``, do not match the title pattern)."""
    out: list[Release] = []
    for item in _ITEM.finditer(text[:MAX_FEED]):
        m = _TITLE.search(item.group(1))
        if m is None:
            continue
        when = ""
        d = _DATE.search(item.group(1))
        if d is not None:
            from email.utils import parsedate_to_datetime  # (only when a feed is read)

            try:
                when = parsedate_to_datetime(d.group(1)).astimezone(UTC).date().isoformat()
            except (TypeError, ValueError, IndexError, OverflowError):
                when = ""
        out.append(Release(m.group(1), when, m.group(2) or ""))
        if len(out) >= MAX_RELEASES:
            break
    return out


def refreshed(feed: str, today: datetime | None = None, dest: Path | None = None) -> bytes:
    """The ``ios_releases.list`` written by ``iocs update``: the feed's releases merged
    with the bundled ones and those of the list already in ``dest`` (the feed names only
    the last months' releases: builds accumulate from one update to the next), dated
    today. ``ValueError`` when the feed names no release."""
    found = parse_feed(feed)
    if not found:
        raise ValueError("the release feed lists no iOS release")
    merged: dict[str, Release] = {}
    for known in (_load(bundled_path()), _load(dest / FILENAME) if dest else None):
        for r in known.releases if known else []:
            had = merged.get(r.version)
            merged[r.version] = r if had is None or r.build or not had.build else had
    for r in found:  # (a feed title without the build keeps the build already known)
        had = merged.get(r.version)
        merged[r.version] = r if r.build or had is None else Release(
            r.version, r.released or had.released, had.build)
    doc = Releases((today or datetime.now(UTC)).date().isoformat(), FEED_URL,
                   sorted(merged.values(), key=lambda r: version_tuple(r.version),
                          reverse=True))
    return json.dumps(msgspec.to_builtins(doc), indent=2).encode() + b"\n"
