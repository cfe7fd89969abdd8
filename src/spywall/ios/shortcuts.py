"""iOS Shortcuts (HomeDomain ``Library/Shortcuts/Shortcuts.sqlite``): the links in each
shortcut's actions. A shortcut can fetch a URL or open a page when run (or by an
automation), so a link there is matched like a link in a message.

``ZSHORTCUT`` holds the shortcut (name, creation and modification times, Apple epoch);
``ZSHORTCUTACTIONS.ZDATA`` a binary plist: a list of actions, each with
``WFWorkflowActionIdentifier`` and ``WFWorkflowActionParameters``. The links are searched
in every string of the parameters (bounded by ``common.strings``).
"""

from __future__ import annotations

from spywall.device.base import FnModule, iso_apple, load_plist
from spywall.device.sqlite import columns, require
from spywall.errors import FormatError, LimitExceeded
from spywall.ios.backup import Entry
from spywall.ios.common import (
    MAX_ROWS,
    Ctx,
    Result,
    check_links,
    database,
    links,
    ok,
    single,
    strings,
)

SHORTCUTS = [("HomeDomain", "Library/Shortcuts/Shortcuts.sqlite")]
MAX_ACTION_DATA = 8 * 1024 * 1024


def _action_links(data: object) -> tuple[list[str], int, str]:
    """(links, number of actions, identifiers) of a ZDATA blob; no links when it is not a
    plist of actions."""
    if not isinstance(data, bytes) or len(data) > MAX_ACTION_DATA:
        return [], 0, ""
    try:
        actions = load_plist(data, MAX_ACTION_DATA)
    except (FormatError, LimitExceeded):
        return [], 0, ""
    if not isinstance(actions, list):
        return [], 0, ""
    found: list[str] = []
    idents: list[str] = []
    for action in actions[:10_000]:
        if not isinstance(action, dict):
            continue
        ident = action.get("WFWorkflowActionIdentifier")
        if isinstance(ident, str):
            idents.append(ident)
        for text in strings(action.get("WFWorkflowActionParameters"), 10_000):
            found.extend(links(text))
    return list(dict.fromkeys(found)), len(actions), ", ".join(idents[:50])


def _shortcuts(ctx: Ctx, entry: Entry, path: str) -> Result:
    with database(ctx, entry) as conn:
        have = require(conn, "ZSHORTCUT", ("Z_PK", "ZNAME"))
        created = "s.ZCREATIONDATE" if "ZCREATIONDATE" in have else "NULL"
        modified = "s.ZMODIFICATIONDATE" if "ZMODIFICATIONDATE" in have else "NULL"
        join, data = "", "NULL"
        if {"ZSHORTCUT", "ZDATA"} <= columns(conn, "ZSHORTCUTACTIONS"):
            join = "LEFT JOIN ZSHORTCUTACTIONS a ON a.ZSHORTCUT = s.Z_PK"
            data = "a.ZDATA"
        rows = conn.execute(f"SELECT s.Z_PK, s.ZNAME, {created}, {modified}, {data} "  # noqa: S608
                            f"FROM ZSHORTCUT s {join} LIMIT ?", (MAX_ROWS,)).fetchall()
    for pk, name, made, changed, blob in rows:
        found, count, idents = _action_links(blob)
        rec = ctx.record("shortcuts", iso_apple(made), "shortcut_created",
                         {"shortcut_id": pk, "shortcut_name": str(name or ""),
                          "modified_date": iso_apple(changed), "parsed_actions": count,
                          "actions": idents, "action_urls": " ".join(found)})
        if found:
            check_links(ctx, found, rec, path, "link in a Shortcuts action",
                        {"shortcut": str(name or "")})
    return ok(len(rows))


MODULES = (
    FnModule("shortcuts", "links in the actions of iOS Shortcuts (Shortcuts.sqlite)",
             single(SHORTCUTS, _shortcuts)),
)
