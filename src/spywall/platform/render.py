"""Tables for the platform's views, for an analyst at a terminal. Every value from the
data (account names, identifiers, reasons) is shown as text, never as markup, with
control and bidirectional characters made visible; the JSON keeps them exact."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import IO, Any

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


# Columns a person searches for: kept whole on one line, never folded.
_WHOLE = frozenset({"campaign", "event", "time", "id", "party", "rule", "target"})


def visible(value: object) -> str:
    """A value as a person may safely see it: unsafe characters as escapes."""
    text = "" if value is None else str(value)
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _table(title: str, columns: list[str], rows: Sequence[Sequence[object]], out: IO[str]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", show_lines=False)
    for name in columns:
        table.add_column(name, overflow="fold", no_wrap=name in _WHOLE)
    for row in rows:
        table.add_row(*(Text(visible(v)) for v in row))
    Console(file=out, highlight=False, soft_wrap=False).print(table)


def _join(values: list[Any], most: int = 6) -> str:
    shown = ", ".join(visible(v) for v in values[:most])
    return shown + (f" (+{len(values) - most} more)" if len(values) > most else "")


def campaigns(data: dict[str, Any], out: IO[str]) -> None:
    rows = []
    for c in data["campaigns"]:
        countries = ", ".join(f"{k} {v}" for k, v in list(c["countries"].items())[:8])
        rows.append([c["id"], c["party"] or "(unattributed)", _join(c["actors"], 4),
                     f"{len(c['targets'])}: {countries}", f"{c['first_seen']} .. "
                     f"{c['last_seen']}", c["deliveries"], _join(c["detectors"]),
                     _join(c["infrastructure"])])
    _table(f"{len(rows)} campaign(s)", ["campaign", "party", "actors",
                                         "targets by country", "time span", "deliveries",
                                         "detectors", "infrastructure"], rows, out)


def violations(data: dict[str, Any], out: IO[str]) -> None:
    rows = [[v["ts"], v["party"], v["type"], v["event"], v["verdict"], v["rule"],
             _join([f"{i['kind']} {i['value']}" for i in v["identifiers"]], 3)]
            for v in data["violations"]]
    _table(f"{len(rows)} violation(s)", ["time", "party", "event type", "event", "verdict",
                                          "rule", "identifiers"], rows, out)


def notifications(data: dict[str, Any], out: IO[str]) -> None:
    rows = [[n["target"], n["campaign"], n["language"], n["status"], n["attempts"]]
            for n in data["notifications"]]
    _table(f"{len(rows)} notification(s)", ["target", "campaign", "language", "status",
                                             "attempts"], rows, out)


def bans(data: dict[str, Any], out: IO[str]) -> None:
    rows = [[b["id"], b["account"], b["party"] or "", b["campaign"] or "", b["status"],
             _join([f"{k} {v}" for k, v in b["evidence"].get("links", [])], 3)]
            for b in data["bans"]]
    _table(f"{len(rows)} ban(s)", ["id", "account", "party", "campaign", "status",
                                   "linked by"], rows, out)


def summary(data: dict[str, Any], out: IO[str]) -> None:
    rows = [[k, visible(v)] for k, v in data.items() if not isinstance(v, list | dict)]
    _table("platform", ["", ""], rows, out)


def not_examined(data: dict[str, Any], count: int, out: IO[str]) -> None:
    """The hunt's objects not examined completely (``incomplete``, the first of
    ``count``), with the reason; nothing when there are none."""
    rows = [[u["path"], u["reason"]] for u in data["incomplete"]]
    if rows:
        more = f", the first {len(rows)}" if count > len(rows) else ""
        _table(f"{count} object(s) not examined completely{more}", ["object", "why"],
               rows, out)


RENDERERS = {"campaigns": campaigns, "violations": violations,
             "notifications": notifications, "bans": bans}
