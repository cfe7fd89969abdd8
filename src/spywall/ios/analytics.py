"""Keychain analytics databases of a filesystem dump (``private/var/Keychains/Analytics/
*.db``, MVT's ``analytics``): the events security daemons logged (``hard_failures``,
``soft_failures``, ``all_events``: an Apple-epoch ``timestamp`` and a plist ``data``).
Every text value at the top of an event is matched as a process name and as a domain:
an implant's process or its server can appear in a logged failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from spywall.device.base import FnModule, iso_apple, load_plist
from spywall.device.sqlite import columns, ident, tables
from spywall.errors import FormatError, LimitExceeded
from spywall.ios.backup import Entry
from spywall.ios.common import MAX_ROWS, SKIPPED, Ctx, Result, database, ok
from spywall.report import Scalar

TABLES = ("hard_failures", "soft_failures", "all_events")
MAX_EVENT = 1024 * 1024
_DB = re.compile(r"private/var/Keychains/Analytics/[^/]{1,255}\.db")


def _event(data: object) -> dict[str, str]:
    if not isinstance(data, bytes) or len(data) > MAX_EVENT:
        return {}
    try:
        got = load_plist(data, MAX_EVENT)
    except (FormatError, LimitExceeded):
        return {}
    if not isinstance(got, dict):
        return {}
    return {str(k): v[:1024] for k, v in list(got.items())[:1000] if isinstance(v, str)}


Event = tuple[str, float | int | None, dict[str, str]]


def events(ctx: Ctx, entry: Entry) -> Iterator[Event]:
    """(table, Apple-epoch time or None, the event's text values) of every event of one
    database."""
    with database(ctx, entry) as conn:
        present = [t for t in TABLES if t in tables(conn)
                   and {"timestamp", "data"} <= columns(conn, t)]
        for table in present:
            rows = conn.execute(f"SELECT timestamp, data FROM {ident(table)} LIMIT ?",  # noqa: S608
                                (MAX_ROWS,)).fetchall()
            for stamp, data in rows:
                ok_time = isinstance(stamp, int | float) and not isinstance(stamp, bool)
                yield table, stamp if ok_time else None, _event(data)


def databases(ctx: Ctx) -> list[Entry]:
    """The keychain analytics databases of a dump (none in a backup)."""
    return [e for e in ctx.evidence.entries
            if e.disk and e.is_file and _DB.fullmatch(e.disk)]


def _read(ctx: Ctx, entry: Entry, path: str) -> int:
    name = entry.disk.rsplit("/", 1)[-1]
    n = 0
    for table, stamp, values in events(ctx, entry):
        n += 1
        texts = list(dict.fromkeys(values.values()))
        hit = ctx.any_hit("process", texts) or ctx.any_hit("domain", texts)
        if not (ctx.timeline or hit):
            continue
        fields: dict[str, Scalar] = {"artifact": name, "table": table}
        fields.update(values)
        rec = ctx.record("analytics", iso_apple(stamp), name, fields)
        for text in texts if hit else ():
            ctx.check("process", text, rec=rec, path=path,
                      what="process named in a keychain analytics event")
            ctx.check("domain", text, rec=rec, path=path,
                      what="domain named in a keychain analytics event")
    return n


def _analytics(ctx: Ctx) -> Result:
    dbs = databases(ctx)
    if not dbs:
        return SKIPPED
    return ok(sum(_read(ctx, e, ctx.evidence.display(e)) for e in dbs))


MODULES = (
    FnModule("analytics", "keychain analytics events of a dump: processes and domains named",
             _analytics),
)
