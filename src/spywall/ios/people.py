"""Who the phone talked to: the call history, the address book and CoreDuet's interaction
log (MVT's ``calls``, ``contacts`` and ``interactionc``), in a backup (HomeDomain) or a
filesystem dump (``private/var/mobile/...``). Records carry MVT's field names.

- ``CallHistoryDB/CallHistory.storedata`` (Core Data): ``ZCALLRECORD`` with ``ZDATE``
  (Apple epoch), ``ZDURATION`` (seconds), ``ZLOCATION``, ``ZADDRESS`` (the other party:
  a number, or an Apple ID for FaceTime; text or a blob) and ``ZSERVICE_PROVIDER``.
- ``AddressBook/AddressBook.sqlitedb``: ``ABPerson`` (``First``, ``Middle``, ``Last``,
  ``Organization``) and ``ABMultiValue`` (``record_id`` -> person, ``value``: a number,
  an address, a URL), one record per value.
- ``CoreDuet/People/interactionC.db`` (Core Data): ``ZINTERACTIONS`` (who, with which app,
  when) with its sender and recipients in ``ZCONTACTS`` and attachments in
  ``ZATTACHMENT``, joined through the numbered many-to-many tables Core Data names
  ``Z_<n>INTERACTIONS`` / ``Z_<n>INTERACTIONRECIPIENT`` (the numbers change between iOS
  versions, so they are found by pattern).

Matched: addresses that are e-mail addresses (an Apple ID that called by FaceTime,
wrote by iMessage or is in the address book) as ``email``; URLs in values, attachments and
interaction content as URLs; interaction bundle ids as app ids. MVT reads these three
without matching; spyware operators' Apple IDs are published indicators.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence

from spywall.device.base import FnModule, Record, SchemaUnknown, iso_apple
from spywall.device.sqlite import columns, ident, require, tables
from spywall.ios.backup import Entry
from spywall.ios.common import (
    MAX_ROWS,
    MAX_TEXT,
    Ctx,
    Result,
    apple_field,
    check_links,
    database,
    links,
    ok,
    scalar,
    single,
)
from spywall.report import Scalar

CALLS = [("HomeDomain", "Library/CallHistoryDB/CallHistory.storedata")]
CONTACTS = [("HomeDomain", "Library/AddressBook/AddressBook.sqlitedb")]
INTERACTIONC = [("HomeDomain", "Library/CoreDuet/People/interactionC.db")]


def _email(value: Scalar) -> str:
    """The e-mail address a contact value or call address holds ('' when it is not one)."""
    if not isinstance(value, str) or "@" not in value or len(value) > 320:
        return ""
    v = value.strip().removeprefix("mailto:")
    return v if " " not in v and not v.startswith("@") else ""


def _match(ctx: Ctx, rec: Record, path: str, what: str, values: Sequence[Scalar]) -> None:
    for v in values:
        mail = _email(v)
        if mail:
            ctx.check("email", mail, rec=rec, path=path, what=what)
        if isinstance(v, str):
            check_links(ctx, links(v), rec, path, what)


def _pick(have: set[str], col: str, alias: str) -> str:
    return f"{alias}.{ident(col)}" if col in have else "NULL"


# -- calls ---------------------------------------------------------------------------------

def _calls(ctx: Ctx, entry: Entry, path: str) -> Result:
    with database(ctx, entry) as conn:
        have = require(conn, "ZCALLRECORD", ("ZDATE", "ZADDRESS"))
        cols = ", ".join(_pick(have, c, "c") for c in (
            "ZDATE", "ZDURATION", "ZLOCATION", "ZADDRESS", "ZSERVICE_PROVIDER"))
        rows = conn.execute(f"SELECT {cols} FROM ZCALLRECORD c LIMIT ?",  # noqa: S608
                            (MAX_ROWS,)).fetchall()
    for date, duration, location, address, provider in rows:
        number = scalar(address)
        hit = ctx.any_hit("email", [_email(number)])
        if not (ctx.timeline or hit):
            continue
        rec = ctx.record("calls", iso_apple(date), "call", {
            "duration": scalar(duration), "location": scalar(location), "number": number,
            "provider": scalar(provider)})
        if hit:
            _match(ctx, rec, path, "call history address", [number])
    return ok(len(rows))


# -- contacts ------------------------------------------------------------------------------

def _contacts(ctx: Ctx, entry: Entry, path: str) -> Result:
    with database(ctx, entry) as conn:
        person = require(conn, "ABPerson", ("ROWID",))
        require(conn, "ABMultiValue", ("record_id", "value"))
        names = ", ".join(_pick(person, c, "p") for c in ("First", "Middle", "Last",
                                                          "Organization"))
        rows = conn.execute(
            f"SELECT m.value, {names} FROM ABPerson p JOIN ABMultiValue m "  # noqa: S608
            "ON p.ROWID = m.record_id WHERE m.value IS NOT NULL ORDER BY p.ROWID LIMIT ?",
            (MAX_ROWS,)).fetchall()
    for value, first, middle, last, org in rows:
        v = scalar(value)
        found = links(v) if isinstance(v, str) else []
        hit = ctx.any_hit("email", [_email(v)]) or any(ctx.lookup.url(u) for u in found)
        if not (ctx.timeline or hit):
            continue
        rec = ctx.record("contacts", None, "contact", {
            "value": v, "first": scalar(first), "middle": scalar(middle),
            "last": scalar(last), "organization": scalar(org)})
        if hit:
            _match(ctx, rec, path, "address book entry", [v])
    return ok(len(rows))


# -- interactionc --------------------------------------------------------------------------

# MVT's field -> (table alias, column). i: ZINTERACTIONS, s: sender and r: recipient
# (ZCONTACTS), a: ZATTACHMENT.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("start_date", "i", "ZSTARTDATE"), ("end_date", "i", "ZENDDATE"),
    ("bundle_id", "i", "ZBUNDLEID"), ("account", "i", "ZACCOUNT"),
    ("target_bundle_id", "i", "ZTARGETBUNDLEID"), ("direction", "i", "ZDIRECTION"),
    ("sender_display_name", "s", "ZDISPLAYNAME"), ("sender_identifier", "s", "ZIDENTIFIER"),
    ("sender_personid", "s", "ZPERSONID"),
    ("recipient_display_name", "r", "ZDISPLAYNAME"),
    ("recipient_identifier", "r", "ZIDENTIFIER"), ("recipient_personid", "r", "ZPERSONID"),
    ("recipient_count", "i", "ZRECIPIENTCOUNT"),
    ("domain_identifier", "i", "ZDOMAINIDENTIFIER"), ("is_response", "i", "ZISRESPONSE"),
    ("mechanism", "i", "ZMECHANISM"),
    ("content", "a", "ZCONTENTTEXT"), ("uti", "a", "ZUTI"),
    ("attachment_content_url", "a", "ZCONTENTURL"), ("size", "a", "ZSIZEINBYTES"),
    ("photo_local_id", "a", "ZPHOTOLOCALIDENTIFIER"), ("attachment_id", "a", "ZIDENTIFIER"),
    ("cloud_id", "a", "ZCLOUDIDENTIFIER"),
    ("incoming_recipient_count", "s", "ZINCOMINGRECIPIENTCOUNT"),
    ("incoming_sender_count", "s", "ZINCOMINGSENDERCOUNT"),
    ("outgoing_recipient_count", "s", "ZOUTGOINGRECIPIENTCOUNT"),
    ("interactions_creation_date", "i", "ZCREATIONDATE"),
    ("contacts_creation_date", "s", "ZCREATIONDATE"),
    ("first_incoming_recipient_date", "s", "ZFIRSTINCOMINGRECIPIENTDATE"),
    ("first_incoming_sender_date", "s", "ZFIRSTINCOMINGSENDERDATE"),
    ("first_outgoing_recipient_date", "s", "ZFIRSTOUTGOINGRECIPIENTDATE"),
    ("last_incoming_sender_date", "s", "ZLASTINCOMINGSENDERDATE"),
    ("last_incoming_recipient_date", "s", "ZLASTINCOMINGRECIPIENTDATE"),
    ("last_outgoing_recipient_date", "s", "ZLASTOUTGOINGRECIPIENTDATE"),
    ("custom_id", "s", "ZCUSTOMIDENTIFIER"),
    ("interaction_content_url", "i", "ZCONTENTURL"), ("location_uuid", "i", "ZLOCATIONUUID"),
    ("group_name", "i", "ZGROUPNAME"),
    ("derivied_intent_id", "i", "ZDERIVEDINTENTIDENTIFIER"), ("table_id", "i", "Z_PK"),
)
_NAMES = [f for f, _, _ in FIELDS]
_CREATED = _NAMES.index("interactions_creation_date")
# the fields matched: people (as e-mail addresses), texts (links), apps (app ids)
_PEOPLE = [_NAMES.index(f) for f in ("sender_identifier", "recipient_identifier")]
_TEXTS = [_NAMES.index(f) for f in ("content", "attachment_content_url",
                                    "interaction_content_url")]
_APPS = [_NAMES.index(f) for f in ("bundle_id", "target_bundle_id")]
DATES = frozenset(f for f, _, _ in FIELDS if f.endswith("_date"))
DIRECTIONS = {0: "INCOMING", 1: "OUTGOING"}
_ATTACH_JOIN = (re.compile(r"Z_\d{1,3}INTERACTIONS"), re.compile(r"Z_\d{1,3}ATTACHMENTS"),
                re.compile(r"Z_\d{1,3}INTERACTIONS"))
_RECIPIENT_JOIN = (re.compile(r"Z_\d{1,3}INTERACTIONRECIPIENT"),
                   re.compile(r"Z_\d{1,3}RECIPIENTS"),
                   re.compile(r"Z_\d{1,3}INTERACTIONRECIPIENT"))


def _join_table(conn: sqlite3.Connection, names: set[str],
                pattern: tuple[re.Pattern[str], ...]) -> tuple[str, str, str] | None:
    """(table, column to the other side, column to the interaction) of a Core Data
    many-to-many table, found by the shape of its names."""
    for table in sorted(names):
        if not pattern[0].fullmatch(table):
            continue
        cols = columns(conn, table)
        other = next((c for c in sorted(cols) if pattern[1].fullmatch(c)), None)
        mine = next((c for c in sorted(cols) if pattern[2].fullmatch(c)), None)
        if other and mine:
            return table, other, mine
    return None


def _interaction_query(conn: sqlite3.Connection) -> tuple[str, list[str]]:
    have = {"i": require(conn, "ZINTERACTIONS", ("Z_PK",))}
    names = tables(conn)
    joins = []
    contacts = columns(conn, "ZCONTACTS") if "ZCONTACTS" in names else set()
    if contacts and "ZSENDER" in have["i"] and "Z_PK" in contacts:
        have["s"] = contacts
        joins.append("LEFT JOIN ZCONTACTS s ON s.Z_PK = i.ZSENDER")
    attach = _join_table(conn, names, _ATTACH_JOIN) if "ZATTACHMENT" in names else None
    if attach and "Z_PK" in (a := columns(conn, "ZATTACHMENT")):
        t, other, mine = map(ident, attach)
        have["a"] = a
        joins.append(f"LEFT JOIN {t} ja ON ja.{mine} = i.Z_PK "
                     f"LEFT JOIN ZATTACHMENT a ON a.Z_PK = ja.{other}")
    recip = _join_table(conn, names, _RECIPIENT_JOIN) if contacts else None
    if recip and "Z_PK" in contacts:
        t, other, mine = map(ident, recip)
        have["r"] = contacts
        joins.append(f"LEFT JOIN {t} jr ON jr.{mine} = i.Z_PK "
                     f"LEFT JOIN ZCONTACTS r ON r.Z_PK = jr.{other}")
    picked = [(f, _pick(have.get(alias, set()), col, alias)) for f, alias, col in FIELDS]
    select = ", ".join(expr for _, expr in picked)
    sql = f"SELECT {select} FROM ZINTERACTIONS i {' '.join(joins)} LIMIT ?"  # noqa: S608
    return sql, [f for f, expr in picked if expr != "NULL"]


def _field(name: str, value: object) -> Scalar:
    if name in DATES:
        return apple_field(value)
    if name == "direction" and isinstance(value, int) and value in DIRECTIONS:
        return DIRECTIONS[value]
    if name == "attachment_id" and isinstance(value, bytes):
        return value[:MAX_TEXT].hex().upper()
    return scalar(value)


def _interactionc(ctx: Ctx, entry: Entry, path: str) -> Result:
    with database(ctx, entry) as conn:
        sql, present = _interaction_query(conn)
        if "start_date" not in present and "interactions_creation_date" not in present:
            raise SchemaUnknown("ZINTERACTIONS has neither ZSTARTDATE nor ZCREATIONDATE")
        rows = conn.execute(sql, (MAX_ROWS,)).fetchall()
    for row in rows:
        # what is matched is read first: without a timeline, a row that matches
        # nothing is not turned into a record of 40 fields
        people = [scalar(row[i]) for i in _PEOPLE]
        texts = [t for i in _TEXTS if isinstance(t := scalar(row[i]), str)]
        found = [u for t in texts for u in links(t)]
        apps = [a for i in _APPS if isinstance(a := scalar(row[i]), str) and a]
        hit = (ctx.any_hit("email", [_email(p) for p in people])
               or any(ctx.lookup.url(u) for u in found) or ctx.any_hit("app_id", apps))
        if not (ctx.timeline or hit):
            continue
        data = {n: _field(n, v) for n, v in zip(_NAMES, row, strict=True)}
        start, created = row[0], row[_CREATED]
        when = (iso_apple(start) if isinstance(start, int | float) else None) or (
            iso_apple(created) if isinstance(created, int | float) else None)
        rec = ctx.record("interactionc", when, "interaction", data)
        if hit:
            _match(ctx, rec, path, "CoreDuet interaction", [*people, *texts])
            for app in apps:
                ctx.check("app_id", app, rec=rec, path=path, what="CoreDuet interaction app")
    return ok(len(rows))


MODULES = (
    FnModule("calls", "call history: numbers and Apple IDs (CallHistory.storedata)",
             single(CALLS, _calls)),
    FnModule("contacts", "address book entries (AddressBook.sqlitedb)",
             single(CONTACTS, _contacts)),
    FnModule("interactionc", "CoreDuet interactions: who, by which app, when (interactionC.db)",
             single(INTERACTIONC, _interactionc)),
)
