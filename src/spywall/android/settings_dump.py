"""``dumpsys settings`` (the SettingsProvider's dump, in a bugreport or androidqf's
dumpsys.txt): every setting of every namespace and user, with its change history.

Shape, per namespace and user::

    GLOBAL SETTINGS (user 0)
    _id:38 name:adb_enabled pkg:android value:1 default:0 defaultSystemSet:true tag:null
    _id:51 name:package_verifier_enable pkg:com.android.shell value:0
      History (2):
        time:01-14 21:03:11.482 mode:update oldValue:1 newValue:0 package:com.android.shell

A record's fields come in a fixed order, each ``key:value`` with a single space before
the next key; a value may hold spaces (and run over lines), so a field ends only where
the next key of the order begins. Some builds end a record with a bare
``notPreservedInRestore``. History times have no year: it is taken from the section's
``ending at:`` trailer (the latest such date not after it); without one they stay
unresolved. Namespace blocks end at a blank line; bounds: ``MAX_SETTINGS`` records,
``MAX_HISTORY`` changes each, ``MAX_VALUE`` characters a value.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

MAX_SETTINGS = 200_000
MAX_HISTORY = 100
MAX_VALUE = 4096
SETTING_KEYS = (
    "_id",
    "name",
    "pkg",
    "value",
    "default",
    "defaultSystemSet",
    "tag",
    "isValuePreservedInRestore",
)
HISTORY_KEYS = ("time", "mode", "oldValue", "newValue", "package")
_NAMESPACE = re.compile(r"(CONFIG|GLOBAL|SECURE|SYSTEM) SETTINGS \(user (\d{1,6})\)")
_ENDING = re.compile(r"^-{9} [^\n]{0,200}?ending at: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.M)
_HISTORY_TIME = re.compile(r"(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?")


class Change(msgspec.Struct, frozen=True):
    time: str | None  # ISO-8601 device local time, when the year could be resolved
    raw_time: str
    mode: str | None
    old_value: str | None
    new_value: str | None
    package: str | None


class Setting(msgspec.Struct):
    namespace: str
    user: str
    fields: dict[str, str]
    history: list[Change] = msgspec.field(default_factory=list)


def split_fields(text: str, keys: tuple[str, ...]) -> dict[str, str]:
    """The ``key:value`` fields of one record, keys in ``keys``'s order (some absent)."""
    if not text.startswith(f"{keys[0]}:"):
        return {}
    starts: list[tuple[str, int, int]] = [(keys[0], 0, len(keys[0]) + 1)]
    pos = starts[0][2]
    for key in keys[1:]:
        at = text.find(f" {key}:", pos)
        if at >= 0:
            starts.append((key, at, at + len(key) + 2))
            pos = at + len(key) + 2
    out: dict[str, str] = {}
    for i, (key, _, value_at) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else len(text)
        out[key] = text[value_at:end][:MAX_VALUE]
    return out


def dumped_at(text: str) -> datetime | None:
    """The time in the first ``--------- ... ending at: YYYY-MM-DD hh:mm:ss`` trailer."""
    m = _ENDING.search(text)
    if m is None:
        return None
    try:
        return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


def resolve(raw: str, end: datetime | None) -> str | None:
    """``MM-DD hh:mm:ss.mmm`` with its year: the latest such time not after ``end``."""
    m = _HISTORY_TIME.fullmatch(raw.strip())
    if m is None or end is None:
        return None
    mo, d, h, mi, s = (int(x) for x in m.groups()[:5])
    micro = int((m.group(6) or "0").ljust(6, "0"))
    for year in (end.year, end.year - 1):
        try:
            t = datetime(year, mo, d, h, mi, s, micro)
        except ValueError:
            continue  # 02-29 in a year without it
        if t <= end:
            return t.isoformat(timespec="microseconds")
    return None


def _change(line: str, end: datetime | None) -> Change:
    f = split_fields(line, HISTORY_KEYS)
    raw = f.get("time", "")
    return Change(
        resolve(raw, end),
        raw,
        f.get("mode"),
        f.get("oldValue"),
        f.get("newValue"),
        f.get("package"),
    )


def settings(body: str, end: datetime | None = None) -> list[Setting]:
    """The settings of a ``DUMP OF SERVICE settings`` body (``end``: when it was
    dumped, for the years of the history)."""
    out: list[Setting] = []
    ns: tuple[str, str] | None = None
    lines: list[str] = []
    history: list[str] = []
    in_history = False

    def flush() -> None:
        nonlocal lines, history, in_history
        if lines and ns is not None and len(out) < MAX_SETTINGS:
            text = "\n".join(lines).rstrip()
            head = text.removesuffix(" notPreservedInRestore")
            fields = split_fields(head, SETTING_KEYS)
            if head != text:
                fields["isValuePreservedInRestore"] = "false"
            out.append(
                Setting(ns[0], ns[1], fields, [_change(h, end) for h in history[:MAX_HISTORY]])
            )
        lines, history, in_history = [], [], False

    for line in body.splitlines():
        stripped = line.strip()
        heading = _NAMESPACE.fullmatch(stripped)
        if heading:
            flush()
            ns = (heading.group(1).lower(), heading.group(2))
        elif ns is None:
            continue
        elif not stripped or line.startswith("---------"):
            flush()  # a blank line ends a record and a namespace block
            if line.startswith("---------"):
                ns = None
        elif line.startswith("_id:"):
            flush()
            lines = [line]
        elif not lines:
            continue
        elif stripped.startswith("History ("):
            in_history = True
        elif in_history:
            if stripped.startswith("time:"):
                history.append(stripped)
            elif history and len(history[-1]) < MAX_VALUE:
                history[-1] += " " + stripped  # a change wrapped over lines
        elif sum(map(len, lines)) < MAX_VALUE:
            lines.append(line)  # a value over several lines
    flush()
    return out
