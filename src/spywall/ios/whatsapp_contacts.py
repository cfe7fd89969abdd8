"""WhatsApp's address book, ``ContactsV2.sqlite`` in its app group (MVT's
``whatsapp_contacts``): each contact's WhatsApp id, LID, number and names, and the
disappearing-messages timer WhatsApp keeps per contact (``ChatStorage.sqlite`` does not
record it for one-to-one chats): when a timer was set is when someone chose that a
conversation leaves no trace.

``ZWAADDRESSBOOKCONTACT`` (Core Data): WhatsApp renames and adds columns between
versions, so each field is read from the first of its known columns present, and is
``None`` when none is. Texts may be stored as UTF-8 blobs. Dates are Apple-epoch; a
record is timed by ``disappearing_mode_timestamp`` (the timeline event
``disappearing_mode_set``, as MVT), and carries MVT's fields and labels
(``disappearing_mode_label``: ``off``, ``24 hours``, ``7 days``... or ``N seconds``;
``disappearing_mode_is_on``; both ``None`` when the database has no duration column).
Links in a contact's "about" text are matched.
"""

from __future__ import annotations

from spywall.device.base import FnModule, iso_apple
from spywall.device.sqlite import ident, require
from spywall.ios.backup import Entry
from spywall.ios.common import (
    MAX_ROWS,
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

CONTACTS = [("AppDomainGroup-group.net.whatsapp.WhatsApp.shared", "ContactsV2.sqlite")]
# field -> its columns, the preferred first
COLUMNS: dict[str, tuple[str, ...]] = {
    "whatsapp_id": ("ZWHATSAPPID",), "lid": ("ZLID",), "phone_number": ("ZPHONENUMBER",),
    "localized_phone_number": ("ZLOCALIZEDPHONENUMBER",), "full_name": ("ZFULLNAME",),
    "given_name": ("ZGIVENNAME",), "last_name": ("ZLASTNAME",), "user_name": ("ZUSERNAME",),
    "business_name": ("ZBUSINESSNAME",), "about_text": ("ZABOUTTEXT",),
    "about_emoji": ("ZABOUTEMOJI",), "notes": ("ZNOTES",),
    "disappearing_mode_duration": ("ZDISAPPEARINGMODEDURATION",),
    "disappearing_mode_timestamp": ("ZDISAPPEARINGMODETIMESTAMP",),
    "about_timestamp": ("ZABOUTTIMESTAMP",), "last_updated": ("ZLASTUPDATED",),
    "phone_status": ("ZPHONESTATUS", "ZPHONENUMBERSTATUS"), "sync_policy": ("ZSYNCPOLICY",),
}
DATES = ("disappearing_mode_timestamp", "about_timestamp", "last_updated")
# WhatsApp's timer choices, in seconds
LABELS = {86_400: "24 hours", 604_800: "7 days", 1_209_600: "14 days",
          2_592_000: "30 days", 7_776_000: "90 days"}


def label(duration: object) -> str:
    """A timer as MVT names it: ``off`` when unset or zero, a known choice, or seconds."""
    if not isinstance(duration, int | float) or isinstance(duration, bool) or not duration:
        return "off"
    if duration != duration or abs(duration) > 1e15:  # NaN, or beyond any timer
        return f"{duration} seconds"
    seconds = int(duration)
    return LABELS.get(seconds, f"{seconds} seconds")


def _contacts(ctx: Ctx, entry: Entry, path: str) -> Result:
    with database(ctx, entry) as conn:
        have = require(conn, "ZWAADDRESSBOOKCONTACT", ("Z_PK",))
        picked = {f: next((c for c in cols if c in have), None) for f, cols in COLUMNS.items()}
        select = ", ".join(ident(c) if c else "NULL" for c in picked.values())
        rows = conn.execute(f"SELECT Z_PK, {select} FROM ZWAADDRESSBOOKCONTACT "  # noqa: S608
                            "LIMIT ?", (MAX_ROWS,)).fetchall()
    timer = picked["disappearing_mode_duration"] is not None
    on = 0
    for pk, *values in rows:
        raw = dict(zip(picked, values, strict=True))
        data: dict[str, Scalar] = {"row_pk": scalar(pk)}
        data.update({f: apple_field(v) if f in DATES else scalar(v) for f, v in raw.items()})
        duration = raw["disappearing_mode_duration"]
        data["disappearing_mode_is_on"] = label(duration) != "off" if timer else None
        data["disappearing_mode_label"] = label(duration) if timer else None
        on += data["disappearing_mode_is_on"] is True
        about = data["about_text"]
        found = links(about) if isinstance(about, str) else []
        hit = any(ctx.lookup.url(u) for u in found)
        if not (ctx.timeline or hit):
            continue
        when = iso_apple(raw["disappearing_mode_timestamp"]) if isinstance(
            raw["disappearing_mode_timestamp"], int | float) else None
        rec = ctx.record("whatsapp_contacts", when,
                         "disappearing_mode_set" if when else "contact", data)
        if hit:
            check_links(ctx, found, rec, path, "WhatsApp contact's about text")
    state = f"{on} with disappearing messages on" if timer else (
        "no disappearing-messages column: timer state unknown")
    return ok(len(rows), state)


MODULES = (
    FnModule("whatsapp_contacts",
             "WhatsApp contacts and their disappearing-messages timers (ContactsV2.sqlite)",
             single(CONTACTS, _contacts)),
)
