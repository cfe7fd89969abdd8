"""Saved device-check results re-matched with today's indicators (the retro-hunt's third
kind of stored object, beside attachments and captures).

A lab keeps the result folder of every check (``check-ios`` / ``check-android --output``,
or MVT's): one ``<module>.json`` per module holding every record the module read. When
new indicators are published, those records can be matched again without the phone.
Each record's string values are matched by what their field names say they hold
(``FIELD_MATCHERS``): URLs, domains and hosts, process and app ids, file paths, hashes,
e-mail addresses. ``<module>_detected.json`` files are read too (their alerts carry the
records that had findings); ``alerts.json``, ``info.json`` and ``report.json`` are
skipped (they repeat those or hold no records).

Bounded: a file over ``MAX_BYTES`` is not parsed (and is said to be so), at most
``MAX_RECORDS`` records and ``MAX_DEPTH`` levels of nesting are walked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

MAX_BYTES = 64 << 20
MAX_RECORDS = 1_000_000
MAX_DEPTH = 6
MAX_MATCHES = 1000
SKIPPED = ("alerts.json", "info.json", "report.json")

Matcher = Callable[[Any, str], list[Any]]


def _urls(index: Any, value: str) -> list[Any]:
    """One URL, or several separated by spaces (the SMS and WhatsApp ``links``)."""
    return [i for url in value.split()[:100] for i in index.match_url(url)]


def _process(index: Any, value: str) -> list[Any]:
    """A process or client: a path's last part as a process name, or a bundle id."""
    name = value.rstrip("/").rpartition("/")[2]
    return [*index.match_process(name), *index.match_app_id(name),
            *(index.match_file_path(value) if "/" in value else [])]


def _address(index: Any, value: str) -> list[Any]:
    """An e-mail address, also as a ``mailto:`` URI (iMessage handles)."""
    text = value.removeprefix("mailto:")
    return list(index.match_email(text)) if "@" in text else []


def _method(name: str) -> Matcher:
    return lambda index, value: list(getattr(index, name)(value))


# (a word in the field's name, how such a value is matched)
FIELD_MATCHERS: tuple[tuple[str, Matcher], ...] = (
    ("link", _urls), ("url", _urls), ("domain", _method("match_domain")),
    ("host", _method("match_host")),
    ("process", _process), ("proc", _process), ("client", _process),
    ("executable", _process), ("bundle", _method("match_app_id")),
    ("package", _method("match_app_id")), ("app_id", _method("match_app_id")),
    ("path", _method("match_file")), ("file", _method("match_file")),
    ("sha256", _method("match_hash")), ("hash", _method("match_hash")),
    ("email", _address), ("user", _address), ("handle", _address), ("sender", _address),
    ("recipient", _address),
    # calls.json's `number` and contacts.json's `value` hold Apple IDs too (MVT's names)
    ("number", _address), ("value", _address),
)


def is_result_file(name: str) -> bool:
    """A module file of a device-check result folder (by name)."""
    return name.endswith(".json") and name not in SKIPPED


def _matchers(key: str) -> list[Matcher]:
    low = key.lower()
    return list({id(m): m for word, m in FIELD_MATCHERS if word in low}.values())


def rematch(data: bytes, name: str, index: Any) -> tuple[list[str], str]:
    """(indicator matches as "type value (field)", why the file was not read whole)."""
    if len(data) > MAX_BYTES:
        return [], f"{name}: {len(data)} bytes, over the {MAX_BYTES}-byte cap; not read"
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return [], ""        # not a module file: it was scanned as an attachment already
    records = doc if isinstance(doc, list) else doc.get("results") \
        if isinstance(doc, dict) else None
    if not isinstance(records, list):
        return [], ""
    found: list[str] = []
    seen: set[str] = set()
    for record in records[:MAX_RECORDS]:
        _walk(record, index, found, seen, 0)
        if len(found) >= MAX_MATCHES:
            return found, f"{name}: more than {MAX_MATCHES} matches; the rest not listed"
    why = f"{name}: more than {MAX_RECORDS} records" if len(records) > MAX_RECORDS else ""
    return found, why


def _walk(value: Any, index: Any, found: list[str], seen: set[str], depth: int,
          key: str = "") -> None:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, index, found, seen, depth + 1, str(k))
    elif isinstance(value, list):
        for v in value[:10_000]:
            _walk(v, index, found, seen, depth + 1, key)
    elif isinstance(value, str) and key and value:
        for matcher in _matchers(key):
            for ind in matcher(index, value[:4096]):
                text = f"{ind.stix_type} {ind.value} ({key})"
                if text not in seen:
                    seen.add(text)
                    found.append(text)
