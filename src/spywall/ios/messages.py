"""Messaging artifacts: iMessage / SMS (sms.db) and WhatsApp (ChatStorage.sqlite).

Links in message text are matched as URLs (and their hosts as domains); sender addresses
as emails; attachments are matched by file name and their content is scanned by the scan
engine for exploit payloads (findings carry the chat and sender in ``detail``).
"""

from __future__ import annotations

import posixpath
from itertools import compress
from operator import itemgetter
from typing import Any

from spywall.device.base import Batch, FnModule, Record, iso_apple, iso_apple_times
from spywall.device.sqlite import columns, require, tables
from spywall.device.timeline import mvt_apple_times, mvt_time
from spywall.ios.backup import Entry
from spywall.ios.common import (
    MAX_ROWS,
    Ctx,
    Evidence,
    Result,
    check_links,
    database,
    first_entry,
    links,
    links_in_bytes,
    ok,
    scan_attachment,
    single,
)
from spywall.report import Severity

SMS_DB = [("HomeDomain", "Library/SMS/sms.db")]
WHATSAPP_DOMAIN = "AppDomainGroup-group.net.whatsapp.WhatsApp.shared"
WHATSAPP_DB = [(WHATSAPP_DOMAIN, "ChatStorage.sqlite")]
TMP_ATTACHMENT = ("/var/tmp/", "-1")  # noqa: S108 (a path on the phone, not ours)
_SMS_PREFIXES = ("~/", "/var/mobile/", "/private/var/mobile/")
# How Apple's threat notifications begin when they arrive by iMessage (the older and the
# current wording, as Apple's support page and the notified have published them).
THREAT_NOTIFICATIONS = (
    "ALERT: State-sponsored attackers may be targeting your iPhone",
    "ALERT: Apple detected a targeted mercenary spyware attack against your iPhone",
)
THREAT_DOC = "https://support.apple.com/en-us/102174"


def _sms(ctx: Ctx, entry: Entry, path: str) -> Result:
    with database(ctx, entry) as conn:
        have = require(conn, "message", ("ROWID", "text", "date", "handle_id"))
        require(conn, "handle", ("ROWID", "id"))
        body = "m.attributedBody" if "attributedBody" in have else "NULL"
        read = "m.date_read" if "date_read" in have else "NULL"
        # SQLite says which rows can hold a link: links() needs "://" or "www." in the
        # text (LIKE is case-insensitive, as links() is), and a binary body is always
        # searched; and which may be Apple's threat notification (its first characters).
        # Only those reach Python, unless the timeline wants every message; the links
        # are found without a Python call per message that has none.
        # SQLite's text functions stop at a NUL, so a text holding one goes to Python
        # too (a link after a NUL is still a link: MVT's regular expression finds it).
        may_link = ("m.text LIKE '%://%' OR m.text LIKE '%www.%' "
                    "OR instr(CAST(m.text AS BLOB), X'00') > 0") + (
            " OR m.attributedBody IS NOT NULL" if body != "NULL" else "")
        alert = "substr(m.text, 1, 7) = 'ALERT: '"
        where = "" if ctx.timeline else f"WHERE {may_link} OR {alert}"
        n = min(conn.execute("SELECT count(*) FROM message").fetchone()[0], MAX_ROWS)
        cursor = conn.execute(
            f"SELECT m.ROWID, m.date, m.text, {body}, h.id, coalesce({may_link}, 0), "  # noqa: S608
            f"coalesce({alert}, 0), {read} FROM message m "
            f"LEFT JOIN handle h ON h.ROWID = m.handle_id {where} LIMIT ?", (MAX_ROWS,))
        rows: list[Any] = []
        try:
            rows.extend(cursor)  # (a list keeps what was read before a broken page)
        finally:  # the notifications among the rows read are reported even then
            for row in compress(rows, map(itemgetter(6), rows)):
                _threat_notification(ctx, row, path)
        _messages(ctx, rows, path)
        for rowid, handle in conn.execute("SELECT ROWID, id FROM handle WHERE id LIKE '%@%' "
                                          "LIMIT ?", (MAX_ROWS,)):
            if isinstance(handle, str) and "@" in handle:
                rec = ctx.record("sms", None, "handle", {"handle_rowid": rowid, "handle": handle})
                ctx.check("email", handle, rec=rec, path=path, what="iMessage sender address")
    return ok(n)


def _threat_notification(ctx: Ctx, row: Any, path: str) -> None:
    """Apple's threat notification received by iMessage (high: Apple has seen this
    device targeted)."""
    rowid, date, text, _, handle = row[:5]
    if text.__class__ is not str or not text.startswith(THREAT_NOTIFICATIONS):
        return
    sender = handle if handle.__class__ is str else ""
    rec = ctx.record("sms", iso_apple(date), "threat_notification",
                     {"rowid": rowid, "phone_number": sender, "text": text[:500]})
    ctx.heuristic(
        "ios-apple-threat-notification", "Apple threat notification received",
        f"message {rowid} is Apple's threat notification ({text[:80]!r}): Apple "
        "believes this iPhone was targeted by mercenary spyware. Follow Apple's "
        "advice and seek expert help (for instance Access Now's helpline)",
        rec=rec, path=path, severity=Severity.HIGH, references=(THREAT_DOC,),
        detail={"sender": sender})


def _messages(ctx: Ctx, rows: list[Any], path: str) -> None:
    """The messages: the links of those SQLite says may hold one are matched as one
    column (``Lookup.urls``); a record is made for each message that has a link that
    matches. With a timeline, every message is recorded as well, in row order, as one
    batch of columns (a message SQLite let through that holds no link too: all of them,
    as MVT). The event is MVT's ``sms_received`` for every message, whatever its
    direction or sender. ``isodate_read`` is the time the message was read (MVT's form,
    as MVT's field), where the timeline has a second row for it, MVT's ``sms_read``
    (``device.timeline.SECOND_ROW``)."""
    if not rows:
        return
    rowids, dates, texts, bodies, handles, may, _, reads = zip(*rows, strict=True)
    kept: list[int] = []
    found_in: list[list[str]] = []
    for i in compress(range(len(rows)), may):
        text, attributed = texts[i], bodies[i]
        found = links(text) if text.__class__ is str else []
        if not found and attributed.__class__ is bytes:
            found = links_in_bytes(attributed)
        if found:
            kept.append(i)
            found_in.append(found)
    matched = [bool(h) for h in ctx.lookup.urls([u for found in found_in for u in found])]
    if ctx.timeline:
        shown = [""] * len(rows)
        for i, found in zip(kept, found_in, strict=True):
            shown[i] = " ".join(found)
        ctx.batch(Batch(
            "sms", iso_apple_times(dates), ["sms_received"] * len(rows),
            {"rowid": list(rowids),
             "phone_number": [h if h.__class__ is str else "" for h in handles],
             "links": shown,
             "text": [t[:500] if t.__class__ is str else "" for t in texts],
             "isodate_read": mvt_apple_times(reads)}))
    if not any(matched):
        return
    at = 0
    for i, found in zip(kept, found_in, strict=True):
        hit = any(matched[at:at + len(found)])
        at += len(found)
        if not hit:
            continue
        text, handle = texts[i], handles[i]
        sender = handle if handle.__class__ is str else ""
        read_at = iso_apple(reads[i])
        rec = Record("sms", iso_apple(dates[i]), "sms_received",
                     {"rowid": rowids[i], "phone_number": sender, "links": " ".join(found),
                      "text": text[:500] if text.__class__ is str else "",
                      "isodate_read": mvt_time(read_at) if read_at else None})
        if not ctx.timeline:  # (with one, the batch holds it)
            ctx.extend("sms", [rec])
        check_links(ctx, found, rec, path, "SMS/iMessage link", {"sender": sender})


def sms_attachment_entry(b: Evidence, filename: str) -> Entry | None:
    """The Manifest entry of an sms.db ``attachment.filename`` (``~/Library/SMS/...``)."""
    rel = filename
    for prefix in _SMS_PREFIXES:
        if rel.startswith(prefix):
            rel = rel[len(prefix):]
            break
    rel = posixpath.normpath(rel)
    if rel.startswith(("../", "/")) or rel == "..":
        return None
    for domain in ("MediaDomain", "HomeDomain"):
        e = b.get(domain, rel)
        if e is not None and e.is_file:
            return e
    return None


def _sms_attachments(ctx: Ctx, entry: Entry, path: str) -> Result:
    n = missing = 0
    with database(ctx, entry) as conn:
        have = require(conn, "attachment", ("ROWID", "filename"))
        require(conn, "message_attachment_join", ("message_id", "attachment_id"))
        require(conn, "message", ("ROWID", "date", "handle_id"))
        require(conn, "handle", ("ROWID", "id"))
        names = tables(conn)
        created = "a.created_date" if "created_date" in have else "NULL"
        transfer = "a.transfer_name" if "transfer_name" in have else "NULL"
        chat_join = ("LEFT JOIN chat_message_join cj ON cj.message_id = m.ROWID "
                     "LEFT JOIN chat c ON c.ROWID = cj.chat_id")
        has_chat = {"chat", "chat_message_join"} <= names and "chat_identifier" in columns(
            conn, "chat")
        chat_col = "c.chat_identifier" if has_chat else "NULL"
        sql = (f"SELECT a.ROWID, a.filename, {transfer}, {created}, m.date, h.id, "  # noqa: S608
               f"{chat_col} FROM attachment a "
               "LEFT JOIN message_attachment_join j ON j.attachment_id = a.ROWID "
               "LEFT JOIN message m ON m.ROWID = j.message_id "
               "LEFT JOIN handle h ON h.ROWID = m.handle_id "
               f"{chat_join if has_chat else ''} LIMIT ?")
        rows = conn.execute(sql, (MAX_ROWS,)).fetchall()
    for rowid, filename, tname, created_at, mdate, handle, chat in rows:
        n += 1
        if not isinstance(filename, str):
            continue
        sender = handle if isinstance(handle, str) else ""
        rec = ctx.record("sms_attachments", iso_apple(created_at) or iso_apple(mdate),
                         "sms_attachment", {"rowid": rowid, "filename": filename,
                                            "transfer_name": str(tname or ""),
                                            "phone_number": sender, "chat": str(chat or "")})
        # (high, as MVT's sms_attachments module marks its matches)
        ctx.check("file_name", posixpath.basename(filename), rec=rec, path=path,
                  what="iMessage attachment name", severity=Severity.HIGH)
        ctx.check("file_path", filename, rec=rec, path=path, what="iMessage attachment path",
                  severity=Severity.HIGH)
        if filename.startswith(TMP_ATTACHMENT[0]) and filename.endswith(TMP_ATTACHMENT[1]):
            ctx.heuristic(
                "ios-sms-attachment-in-tmp", "iMessage attachment stored in /var/tmp",
                f"attachment {filename!r} lives in /var/tmp and ends in -1, where Pegasus "
                "iMessage exploits left their payloads (FORCEDENTRY era); ordinary "
                "attachments live under ~/Library/SMS/Attachments",
                rec=rec, path=path, severity=Severity.MEDIUM, detail={"sender": sender})
        stored = sms_attachment_entry(ctx.evidence, filename)
        if stored is None or not scan_attachment(
                ctx, stored, rec, {"app": "iMessage", "chat": str(chat or ""),
                                   "sender": sender, "attachment": filename}):
            missing += 1
    return ok(n, f"{missing} attachment(s) not in the evidence" if missing else "")


def _whatsapp(ctx: Ctx, entry: Entry, path: str) -> Result:
    n = 0
    with database(ctx, entry) as conn:
        require(conn, "ZWAMESSAGE", ("Z_PK", "ZTEXT", "ZMESSAGEDATE", "ZCHATSESSION"))
        require(conn, "ZWACHATSESSION", ("Z_PK", "ZPARTNERNAME"))
        msgs = conn.execute(
            "SELECT m.Z_PK, m.ZMESSAGEDATE, m.ZTEXT, s.ZPARTNERNAME FROM ZWAMESSAGE m "
            "LEFT JOIN ZWACHATSESSION s ON s.Z_PK = m.ZCHATSESSION "
            "WHERE m.ZTEXT IS NOT NULL LIMIT ?", (MAX_ROWS,)).fetchall()
        media = []
        if {"Z_PK", "ZMEDIALOCALPATH", "ZMESSAGE"} <= columns(conn, "ZWAMEDIAITEM"):
            media = conn.execute(
                "SELECT i.Z_PK, i.ZMEDIALOCALPATH, m.ZMESSAGEDATE, s.ZPARTNERNAME "
                "FROM ZWAMEDIAITEM i LEFT JOIN ZWAMESSAGE m ON m.Z_PK = i.ZMESSAGE "
                "LEFT JOIN ZWACHATSESSION s ON s.Z_PK = m.ZCHATSESSION "
                "WHERE i.ZMEDIALOCALPATH IS NOT NULL LIMIT ?", (MAX_ROWS,)).fetchall()
        previews: dict[object, list[str]] = {}
        have = columns(conn, "ZWAMESSAGEDATAITEM")
        if {"ZMESSAGE", "ZMATCHEDTEXT", "ZCONTENT1"} <= have:
            for mid, matched, content in conn.execute(
                    "SELECT ZMESSAGE, ZMATCHEDTEXT, ZCONTENT1 FROM ZWAMESSAGEDATAITEM "
                    "LIMIT ?", (MAX_ROWS,)):
                previews.setdefault(mid, []).extend(
                    u for v in (matched, content) if isinstance(v, str) for u in links(v))
    for pk, date, text, partner in msgs:
        n += 1
        found = links(text if isinstance(text, str) else None) + previews.pop(pk, [])
        if found:
            rec = ctx.record("whatsapp", iso_apple(date), "whatsapp_message",
                             {"pk": pk, "partner": str(partner or ""),
                              "links": " ".join(found)})
            check_links(ctx, found, rec, path, "WhatsApp link", {"chat": str(partner or "")})
    for pk, local, date, partner in media:
        if not isinstance(local, str):
            continue
        rec = ctx.record("whatsapp", iso_apple(date), "whatsapp_media",
                         {"pk": pk, "partner": str(partner or ""), "path": local})
        rel = posixpath.normpath(local.lstrip("/"))
        stored = first_entry(ctx, [(WHATSAPP_DOMAIN, f"Message/{rel}"),
                                   (WHATSAPP_DOMAIN, rel)])
        if stored is not None and not rel.startswith(".."):
            scan_attachment(ctx, stored, rec, {"app": "WhatsApp", "chat": str(partner or ""),
                                               "sender": str(partner or ""),
                                               "attachment": local})
    return ok(n)


# A byte of sms.db costs about twice a byte of Safari's History.db when a result folder
# is written: every message is read, searched for links and written twice (sms.json and
# the timeline), where History.db is half index (its URLs again in their UNIQUE index).
# Measured on the benchmark's large backup (100,000 of each): 0.47 s for a 10 MB sms.db,
# 0.31 s for a 14 MB History.db. The weights only order the modules: the first is run by
# the calling process, whose results are not sent over (a worker sent the messages'
# rendered folder part in 0.09 s); with sms.db counted twice the check took 0.66 instead
# of 0.73 s of wall time (fastest of eight, two processes).
SMS_PER_BYTE = 2

MODULES = (
    FnModule("sms", "links and senders in iMessage / SMS (sms.db)",
             single(SMS_DB, _sms, per_byte=SMS_PER_BYTE)),
    FnModule("sms_attachments", "iMessage attachments: names and content scanned",
             single(SMS_DB, _sms_attachments)),
    FnModule("whatsapp", "WhatsApp links and media (ChatStorage.sqlite)",
             single(WHATSAPP_DB, _whatsapp)),
)
