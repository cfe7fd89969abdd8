"""The call history, address book and CoreDuet interactions of the generated iOS backup
(``samples.ios.write_backup`` adds them through ``ios_extra.add``), each with the tables
and columns iOS writes (Core Data ``Z`` tables, Apple-epoch times), awkward rows included:
a call address stored as a blob, a contact without a name and one whose name holds
terminal escapes and a bidi override, an interaction without a sender, an attachment
identifier that is a blob.

The planted backup adds Apple IDs published as Pegasus indicators: one that called by
FaceTime, one in the address book, one that sent an iMessage (CoreDuet logged it).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from spywall.samples.ios import PLANTED, T0, apple

if TYPE_CHECKING:
    from spywall.samples.ios import _Writer

CALLS_SCHEMA = (
    "CREATE TABLE ZCALLRECORD (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, "
    "ZANSWERED INTEGER, ZCALLTYPE INTEGER, ZCALL_CATEGORY INTEGER, ZDISCONNECTED_CAUSE "
    "INTEGER, ZFACE_TIME_DATA BLOB, ZHANDLE_TYPE INTEGER, ZNUMBER_AVAILABILITY INTEGER, "
    "ZORIGINATED INTEGER, ZREAD INTEGER, ZDATE TIMESTAMP, ZDURATION FLOAT, ZADDRESS BLOB, "
    "ZDEVICE_ID VARCHAR, ZISO_COUNTRY_CODE VARCHAR, ZLOCATION VARCHAR, ZNAME VARCHAR, "
    "ZSERVICE_PROVIDER VARCHAR, ZUNIQUE_ID VARCHAR);")
CONTACTS_SCHEMA = (
    "CREATE TABLE ABPerson (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, First TEXT, Last TEXT, "
    "Middle TEXT, FirstPhonetic TEXT, MiddlePhonetic TEXT, LastPhonetic TEXT, Organization "
    "TEXT, Department TEXT, Note TEXT, Kind INTEGER, Birthday TEXT, JobTitle TEXT, Nickname "
    "TEXT, Prefix TEXT, Suffix TEXT, CreationDate INTEGER, ModificationDate INTEGER);"
    "CREATE TABLE ABMultiValue (UID INTEGER PRIMARY KEY, record_id INTEGER, property "
    "INTEGER, identifier INTEGER, label INTEGER, value TEXT, guid TEXT);")
INTERACTIONC_SCHEMA = (
    "CREATE TABLE ZINTERACTIONS (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, "
    "ZDIRECTION INTEGER, ZISRESPONSE INTEGER, ZMECHANISM INTEGER, ZRECIPIENTCOUNT INTEGER, "
    "ZSENDER INTEGER, ZCREATIONDATE TIMESTAMP, ZENDDATE TIMESTAMP, ZSTARTDATE TIMESTAMP, "
    "ZACCOUNT VARCHAR, ZBUNDLEID VARCHAR, ZCONTENTURL VARCHAR, ZDERIVEDINTENTIDENTIFIER "
    "VARCHAR, ZDOMAINIDENTIFIER VARCHAR, ZGROUPNAME VARCHAR, ZLOCATIONUUID VARCHAR, "
    "ZTARGETBUNDLEID VARCHAR, ZUUID VARCHAR);"
    "CREATE TABLE ZCONTACTS (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, "
    "ZINCOMINGRECIPIENTCOUNT INTEGER, ZINCOMINGSENDERCOUNT INTEGER, "
    "ZOUTGOINGRECIPIENTCOUNT INTEGER, ZPERSONIDTYPE INTEGER, ZTYPE INTEGER, ZCREATIONDATE "
    "TIMESTAMP, ZFIRSTINCOMINGRECIPIENTDATE TIMESTAMP, ZFIRSTINCOMINGSENDERDATE TIMESTAMP, "
    "ZFIRSTOUTGOINGRECIPIENTDATE TIMESTAMP, ZLASTINCOMINGRECIPIENTDATE TIMESTAMP, "
    "ZLASTINCOMINGSENDERDATE TIMESTAMP, ZLASTOUTGOINGRECIPIENTDATE TIMESTAMP, "
    "ZCUSTOMIDENTIFIER VARCHAR, ZDISPLAYNAME VARCHAR, ZIDENTIFIER VARCHAR, ZPERSONID "
    "VARCHAR);"
    "CREATE TABLE ZATTACHMENT (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, "
    "ZSIZEINBYTES INTEGER, ZCREATIONDATE TIMESTAMP, ZCLOUDIDENTIFIER VARCHAR, ZCONTENTTEXT "
    "VARCHAR, ZCONTENTURL VARCHAR, ZPHOTOLOCALIDENTIFIER VARCHAR, ZUTI VARCHAR, "
    "ZIDENTIFIER BLOB);"
    "CREATE TABLE Z_1INTERACTIONS (Z_1ATTACHMENTS INTEGER, Z_3INTERACTIONS INTEGER, "
    "PRIMARY KEY (Z_1ATTACHMENTS, Z_3INTERACTIONS));"
    "CREATE TABLE Z_2INTERACTIONRECIPIENT (Z_2RECIPIENTS INTEGER, Z_3INTERACTIONRECIPIENT "
    "INTEGER, PRIMARY KEY (Z_2RECIPIENTS, Z_3INTERACTIONRECIPIENT));")
HOSTILE_NAME = "Ali\x1b[2J\u202egnp.exe"


def _calls(w: _Writer) -> None:
    facetime = PLANTED["call_email"] if w.spec.planted else "friend@example.com"

    def fill(c: sqlite3.Connection) -> None:
        c.executemany(
            "INSERT INTO ZCALLRECORD (Z_PK, Z_ENT, ZANSWERED, ZCALLTYPE, ZORIGINATED, ZDATE, "
            "ZDURATION, ZADDRESS, ZLOCATION, ZSERVICE_PROVIDER) VALUES (?,2,?,?,?,?,?,?,?,?)",
            [(1, 1, 1, 0, apple(T0 + 1_000), 62.5, "+447700900123", "United Kingdom",
              "com.apple.Telephony"),
             # the address as a blob, as CallHistory stores it for some handles
             (2, 0, 8, 0, apple(T0 + 2_000), 0.0, facetime.encode(), None,
              "com.apple.FaceTime"),
             (3, 1, 1, 1, apple(T0 + 3_000), None, None, None, None)])

    w.db("HomeDomain", "Library/CallHistoryDB/CallHistory.storedata", CALLS_SCHEMA, fill)


def _contacts(w: _Writer) -> None:
    mail = PLANTED["contact_email"] if w.spec.planted else "colleague@example.com"

    def fill(c: sqlite3.Connection) -> None:
        c.executemany("INSERT INTO ABPerson (ROWID, First, Middle, Last, Organization, Kind) "
                      "VALUES (?,?,?,?,?,0)",
                      [(1, "Alex", None, "Morgan", "Example Ltd"),
                       (2, None, None, None, None),
                       (3, HOSTILE_NAME, None, "Q", None)])
        c.executemany("INSERT INTO ABMultiValue (UID, record_id, property, identifier, "
                      "label, value, guid) VALUES (?,?,?,0,1,?,?)",
                      [(1, 1, 3, "+44 7700 900123", "G1"), (2, 1, 4, mail, "G2"),
                       (3, 2, 3, "07700900456", "G3"), (4, 3, 22, "https://www.example.org/",
                                                        "G4"),
                       (5, 3, 3, None, "G5")])

    w.db("HomeDomain", "Library/AddressBook/AddressBook.sqlitedb", CONTACTS_SCHEMA, fill)


def _interactionc(w: _Writer) -> None:
    sender = PLANTED["interaction_email"] if w.spec.planted else "friend@example.com"

    def fill(c: sqlite3.Connection) -> None:
        c.executemany(
            "INSERT INTO ZCONTACTS (Z_PK, ZDISPLAYNAME, ZIDENTIFIER, ZPERSONID, "
            "ZINCOMINGSENDERCOUNT, ZCREATIONDATE, ZFIRSTINCOMINGSENDERDATE, "
            "ZLASTINCOMINGSENDERDATE) VALUES (?,?,?,?,?,?,?,?)",
            [(1, "Alex", sender, "P-1", 3, apple(T0 + 100), apple(T0 + 100), apple(T0 + 900)),
             (2, "Me", "me@example.com", "P-2", 0, apple(T0 - 86_400), None, None)])
        c.executemany(
            "INSERT INTO ZINTERACTIONS (Z_PK, Z_ENT, ZDIRECTION, ZISRESPONSE, ZMECHANISM, "
            "ZRECIPIENTCOUNT, ZSENDER, ZCREATIONDATE, ZSTARTDATE, ZENDDATE, ZACCOUNT, "
            "ZBUNDLEID, ZDOMAINIDENTIFIER, ZCONTENTURL) VALUES (?,3,?,0,?,1,?,?,?,?,?,?,?,?)",
            [(1, 0, 4, 1, apple(T0 + 901), apple(T0 + 900), apple(T0 + 900),
              "me@example.com", "com.apple.MobileSMS", "iMessage;-;" + sender, None),
             # no sender (an outgoing interaction), no times but its creation
             (2, 1, 4, None, apple(T0 + 950), None, None, None, "com.apple.mobilephone",
              None, None)])
        c.execute("INSERT INTO ZATTACHMENT (Z_PK, ZSIZEINBYTES, ZCONTENTTEXT, ZUTI, "
                  "ZIDENTIFIER) VALUES (1, 2048, 'look at this', 'public.jpeg', ?)",
                  (bytes.fromhex("5f3c1a2b00ff"),))
        c.execute("INSERT INTO Z_1INTERACTIONS VALUES (1, 1)")
        c.execute("INSERT INTO Z_2INTERACTIONRECIPIENT VALUES (2, 1)")

    w.db("HomeDomain", "Library/CoreDuet/People/interactionC.db", INTERACTIONC_SCHEMA, fill)


WA_CONTACTS_SCHEMA = (
    "CREATE TABLE ZWAADDRESSBOOKCONTACT (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT "
    "INTEGER, ZDISAPPEARINGMODEDURATION INTEGER, ZPHONENUMBERSTATUS INTEGER, ZSYNCPOLICY "
    "INTEGER, ZABOUTTIMESTAMP TIMESTAMP, ZDISAPPEARINGMODETIMESTAMP TIMESTAMP, "
    "ZLASTUPDATED TIMESTAMP, ZABOUTEMOJI VARCHAR, ZABOUTTEXT VARCHAR, ZBUSINESSNAME "
    "VARCHAR, ZFULLNAME VARCHAR, ZGIVENNAME VARCHAR, ZLASTNAME VARCHAR, ZLID VARCHAR, "
    "ZLOCALIZEDPHONENUMBER VARCHAR, ZNOTES VARCHAR, ZPHONENUMBER VARCHAR, ZUSERNAME "
    "VARCHAR, ZWHATSAPPID VARCHAR);")
# (Z_PK, whatsapp id, full name (a blob in some versions), timer seconds, set at)
WA_CONTACTS = (
    (1, "447700900123@s.whatsapp.net", "Alex Morgan", 604_800, T0 + 1_200),
    (2, "447700900456@s.whatsapp.net", b"Sam \xe2\x98\x85", 0, None),
    (3, "447700900789@s.whatsapp.net", None, 3_600, T0 + 1_300),
)


def _whatsapp_contacts(w: _Writer) -> None:
    """WhatsApp's ContactsV2.sqlite: contacts with the disappearing-messages timer it keeps
    per contact (seconds; one of the usual choices, off, an unusual one)."""
    def fill(c: sqlite3.Connection) -> None:
        for pk, jid, name, timer, at in WA_CONTACTS:
            c.execute("INSERT INTO ZWAADDRESSBOOKCONTACT (Z_PK, ZWHATSAPPID, ZPHONENUMBER, "
                      "ZFULLNAME, ZDISAPPEARINGMODEDURATION, ZDISAPPEARINGMODETIMESTAMP, "
                      "ZPHONENUMBERSTATUS, ZLASTUPDATED) VALUES (?,?,?,?,?,?,1,?)",
                      (pk, jid, "+" + jid.split("@")[0], name, timer,
                       apple(at) if at else None, apple(T0)))

    w.db("AppDomainGroup-group.net.whatsapp.WhatsApp.shared", "ContactsV2.sqlite",
         WA_CONTACTS_SCHEMA, fill)


def add(w: _Writer) -> None:
    _calls(w)
    _contacts(w)
    _interactionc(w)
    _whatsapp_contacts(w)
