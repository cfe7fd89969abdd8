"""Synthetic iPhone backups for tests, demos and benchmarks (not a ``SAMPLE_MODULES`` entry:
a backup is a folder, not one object).

``write_backup(folder, BackupSpec(...))`` writes Info/Manifest/Status plists, a Manifest.db
whose ``file`` column holds NSKeyedArchiver MBFile plists, and the artifacts ``check-ios``
reads, with the schemas iOS uses (sms.db, History.db, BrowserState.db, DataUsage.sqlite,
TCC.db, Calendar.sqlitedb, ChatStorage.sqlite, observations.db and the plists).

``planted=True`` plants values published in the real indicator sets (``PLANTED`` lists
them), a Triangulation ``BackupAgent`` usage row and event window, an outdated iOS
version, a fast cross-domain redirect, and an iMessage and a WhatsApp attachment that is a
crafted exploit container (a JPEG with a ZIP appended, from ``samples.containers``).
``planted=False`` is the clean twin: the same shapes with benign values.
``password`` writes an encrypted backup (key bag, wrapped class keys and per-file AES-CBC
keys as iTunes makes them; small PBKDF2 iteration counts to stay quick).
"""

from __future__ import annotations

import hashlib
import plistlib
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from spywall.samples import containers

APPLE_EPOCH = 978_307_200
T0 = 1_685_600_000  # 2023-06-01, unix seconds
WA = "AppDomainGroup-group.net.whatsapp.WhatsApp.shared"
SAFARI = "AppDomain-com.apple.mobilesafari"
PROFILES = "SysSharedContainerDomain-systemgroup.com.apple.configurationprofiles"

# Values from the real published sets (tests check each is in the bundled index).
PLANTED: dict[str, str] = {
    "sms_domain": "free247downloads.com",  # Pegasus
    "whatsapp_domain": "mainredirecter.com",  # Pegasus
    "history_domain": "backuprabbit.com",  # Operation Triangulation
    "observed_domain": "hearsmugglergarden.com",  # Pegasus
    "session_domain": "senlin83.com",  # Operation Triangulation
    "datausage_process": "fservernetd",  # Pegasus
    "addaily_process": "eventstorpd",  # Pegasus
    "tcc_process": "accountpfd",  # Pegasus
    "location_process": "libbmanaged",  # Pegasus
    "email": "bogaardlisa803@gmail.com",  # Pegasus
    "calendar_email": "k.williams.enny74@gmail.com",  # Pegasus
    "file_name": "roleaccountd.plist",  # Pegasus
    "profile": "76DAB334-7E17-475D-A5D6-0794EB5818A5",  # Predator
    "chrome_domain": "weather4free.com",  # Pegasus
    "firefox_domain": "smscentro.com",  # Pegasus
    "shortcut_domain": "dental-care-spa.net",  # Pegasus
    "favicon_domain": "music-headphones.org",  # Pegasus
    "favicon_icon_domain": "mobnetlink1.com",  # Predator (Cytrox)
    "profile_process": "roleaboutd",  # Pegasus
    "call_email": "bekkerfredi@gmail.com",  # Pegasus (a FaceTime caller's Apple ID)
    "contact_email": "oskarschalcher@outlook.com",  # Pegasus
    "interaction_email": "taylorjade0303@gmail.com",  # Pegasus (an iMessage sender)
    "firefox_favicon_domain": "igiheonline.com",  # Pegasus
}


class BackupSpec(msgspec.Struct):
    planted: bool = True
    messages: int = 20
    history: int = 20
    wal: bool = False
    password: str | None = None
    ios_version: str = ""
    extra_processes: int = 10
    other_messengers: bool = True  # Signal and Telegram media (exploit file if planted)
    # Awkward layouts real copies of backups show: no Manifest.plist (lost when a backup
    # is copied by hand), and files that Manifest.db lists but the folder does not hold
    # (an interrupted backup or copy), by relativePath.
    manifest_plist: bool = True
    unstored: tuple[str, ...] = ()

    def version(self) -> str:
        return self.ios_version or ("16.5" if self.planted else "26.1")


def _dt(unix: float) -> datetime:
    """A naive UTC datetime (what plistlib writes)."""
    return datetime.fromtimestamp(unix, UTC).replace(tzinfo=None)


def apple(unix: float) -> float:
    return unix - APPLE_EPOCH


def mbfile(rel: str, size: int, mtime: int, mode: int, key: bytes | None = None) -> bytes:
    """An MBFile as Manifest.db stores it: a binary NSKeyedArchiver plist."""
    uid = plistlib.UID
    obj: dict[str, object] = {
        "$class": uid(2), "Birth": mtime, "LastModified": mtime, "LastStatusChange": mtime,
        "Mode": mode, "UserID": 501, "GroupID": 501, "Size": size, "InodeNumber": mtime % 99991,
        "ProtectionClass": 3, "Flags": 0, "RelativePath": uid(3),
    }
    objects: list[object] = ["$null", obj, {"$classname": "MBFile",
                                            "$classes": ["MBFile", "NSObject"]}, rel]
    if key is not None:
        obj["EncryptionKey"] = uid(4)
        objects += [{"NS.data": key, "$class": uid(5)},
                    {"$classname": "NSMutableData", "$classes": ["NSMutableData", "NSData",
                                                                 "NSObject"]}]
    return plistlib.dumps({"$version": 100000, "$archiver": "NSKeyedArchiver",
                           "$top": {"root": uid(1)}, "$objects": objects},
                          fmt=plistlib.FMT_BINARY)


def file_id(domain: str, rel: str) -> str:
    return hashlib.sha1(f"{domain}-{rel}".encode()).hexdigest()  # noqa: S324 (Apple's scheme)


def sqlite_bytes(schema: str, fill: Callable[[sqlite3.Connection], object],
                 wal: bool = False) -> tuple[bytes, bytes]:
    """(database, write-ahead log) made by SQLite itself; the log is empty unless ``wal``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "db")
        conn = sqlite3.connect(path)
        conn.executescript(schema)
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.commit()
        fill(conn)
        conn.commit()
        data = path.read_bytes()
        log = Path(f"{path}-wal")
        wal_bytes = log.read_bytes() if log.exists() else b""
        conn.close()  # closing checkpoints the log: read both before
        return data, wal_bytes


class _Writer(msgspec.Struct):
    root: Path
    spec: BackupSpec
    rows: list[tuple[str, str, str, int, bytes]] = msgspec.field(default_factory=list)
    encrypt: Callable[[bytes], tuple[bytes, bytes]] | None = None

    def put(self, domain: str, rel: str, data: bytes, mtime: int = T0) -> None:
        fid = file_id(domain, rel)
        key = None
        if self.encrypt is not None:
            data_out, key = self.encrypt(data)
        else:
            data_out = data
        if rel not in self.spec.unstored:
            (self.root / fid[:2]).mkdir(exist_ok=True)
            (self.root / fid[:2] / fid).write_bytes(data_out)
        self.rows.append((fid, domain, rel, 1, mbfile(rel, len(data), mtime, 0o100644, key)))

    def folder(self, domain: str, rel: str, birth: int) -> None:
        self.rows.append((file_id(domain, rel), domain, rel, 2,
                          mbfile(rel, 0, birth, 0o40755)))

    def db(self, domain: str, rel: str, schema: str, fill: Callable[[sqlite3.Connection], object],
           mtime: int = T0, wal: bool = False) -> None:
        data, log = sqlite_bytes(schema, fill, wal)
        self.put(domain, rel, data, mtime)
        if log:
            self.put(domain, rel + "-wal", log, mtime)


def _plist(obj: dict[str, object]) -> bytes:
    return plistlib.dumps(obj, fmt=plistlib.FMT_BINARY)


# ---- encryption (iTunes scheme: passphrase -> PBKDF2 -> wraps class keys -> wrap file keys)
_CLASSES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)


def _tlv(tag: bytes, data: bytes | int) -> bytes:
    raw = data.to_bytes(4, "big") if isinstance(data, int) else data
    return tag + len(raw).to_bytes(4, "big") + raw


def _wrap(kek: bytes, key: bytes) -> bytes:
    from Crypto.Cipher import AES

    return AES.new(kek, AES.MODE_KW).seal(key)  # RFC 3394 key wrap


def _pad(data: bytes) -> bytes:
    n = 16 - len(data) % 16
    return data + bytes([n]) * n


def _cbc(key: bytes, data: bytes) -> bytes:
    from Crypto.Cipher import AES

    return AES.new(key, AES.MODE_CBC, iv=bytes(16)).encrypt(_pad(data))


class Keys(msgspec.Struct):
    class_keys: dict[int, bytes]
    keybag: bytes
    manifest_key: bytes

    @classmethod
    def make(cls, password: str, seed: bytes = b"spywall-test") -> Keys:
        def rnd(label: str, n: int = 32) -> bytes:
            return hashlib.sha256(seed + label.encode()).digest()[:n]

        dpsl, salt, dpic, iters = rnd("dpsl", 20), rnd("salt", 20), 10, 10
        round1 = hashlib.pbkdf2_hmac("sha256", password.encode(), dpsl, dpic, 32)
        kek = hashlib.pbkdf2_hmac("sha1", round1, salt, iters, 32)
        class_keys = {c: rnd(f"class{c}") for c in _CLASSES}
        bag = b"".join([_tlv(b"VERS", 3), _tlv(b"TYPE", 1), _tlv(b"UUID", rnd("uuid", 16)),
                        _tlv(b"HMCK", rnd("hmck", 40)), _tlv(b"WRAP", 0), _tlv(b"SALT", salt),
                        _tlv(b"ITER", iters), _tlv(b"DPWT", 1), _tlv(b"DPIC", dpic),
                        _tlv(b"DPSL", dpsl)])
        for c, k in class_keys.items():
            bag += b"".join([_tlv(b"UUID", rnd(f"u{c}", 16)), _tlv(b"CLAS", c),
                             _tlv(b"WRAP", 2), _tlv(b"KTYP", 0), _tlv(b"WPKY", _wrap(kek, k))])
        return cls(class_keys, bag, rnd("manifest"))

    def manifest_fields(self) -> dict[str, object]:
        mk = (4).to_bytes(4, "little") + _wrap(self.class_keys[4], self.manifest_key)
        return {"IsEncrypted": True, "BackupKeyBag": self.keybag, "ManifestKey": mk}

    def encrypt_manifest(self, db: bytes) -> bytes:
        return _cbc(self.manifest_key, db)

    def encrypt_file(self, data: bytes) -> tuple[bytes, bytes]:
        key = hashlib.sha256(b"file" + data).digest()
        return _cbc(key, data), (3).to_bytes(4, "little") + _wrap(self.class_keys[3], key)


# ---- artifacts ---------------------------------------------------------------------------
def _sms(w: _Writer) -> None:
    spec, n = w.spec, w.spec.messages
    exploit = containers.jpeg() + containers.zip_of({"lib/arm64-v8a/libstage.so": bytes(64)})
    benign = containers.jpeg()
    attach_at = T0 + 3_600

    def fill(c: sqlite3.Connection) -> None:
        c.executemany("INSERT INTO handle VALUES (?,?,?)",
                      [(1, "+447700900123", "iMessage"), (2, "friend@example.com", "iMessage"),
                       (3, PLANTED["email"] if spec.planted else "news@example.com", "iMessage")])
        c.execute("INSERT INTO chat VALUES (1, 'iMessage;-;+447700900123', '+447700900123')")
        for i in range(n):
            planted = spec.planted and i == n // 2 - n // 2 % 3
            host = PLANTED["sms_domain"] if planted else f"site{i % 97}.example.org"
            text = f"see https://{host}/p/{i}?ref=msg" if i % 3 == 0 else f"message {i}"
            c.execute("INSERT INTO message (ROWID, guid, text, handle_id, service, date, "
                      "is_from_me, cache_has_attachments) VALUES (?,?,?,?,?,?,?,?)",
                      (i + 1, f"GUID-{i}", text, 1 + i % 3, "iMessage",
                       int(apple(T0 + 60 * i) * 1e9), 0, 0))
            c.execute("INSERT INTO chat_message_join VALUES (1, ?)", (i + 1,))
        if spec.planted:  # Apple's threat notification, by iMessage
            from spywall.samples.ios_extra import threat_message

            rowid, guid, text = threat_message(n + 1)
            c.execute("INSERT INTO message (ROWID, guid, text, handle_id, service, date, "
                      "is_from_me, cache_has_attachments) VALUES (?,?,?,0,'iMessage',?,0,0)",
                      (rowid, guid, text, int(apple(T0 + 7_200) * 1e9)))
        c.execute("INSERT INTO attachment (ROWID, guid, created_date, filename, mime_type, "
                  "transfer_name, total_bytes) VALUES (1, 'ATT-1', ?, ?, 'image/jpeg', "
                  "'IMG_0001.jpg', 0)", (int(apple(attach_at)), _SMS_ATT))
        c.execute("INSERT INTO message_attachment_join VALUES (1, 1)")
        if spec.planted:  # where FORCEDENTRY-era payloads were left (not in the backup)
            c.execute("INSERT INTO attachment (ROWID, guid, created_date, filename, mime_type, "
                      "transfer_name, total_bytes) VALUES (2, 'ATT-2', ?, ?, 'image/gif', "
                      "'image.gif', 0)", (int(apple(attach_at)), _TMP_ATT))
            c.execute("INSERT INTO message_attachment_join VALUES (2, 2)")

    schema = (
        "CREATE TABLE handle (ROWID INTEGER PRIMARY KEY, id TEXT, service TEXT);"
        "CREATE TABLE chat (ROWID INTEGER PRIMARY KEY, guid TEXT, chat_identifier TEXT);"
        "CREATE TABLE message (ROWID INTEGER PRIMARY KEY, guid TEXT, text TEXT, "
        "handle_id INTEGER, service TEXT, date INTEGER, is_from_me INTEGER, "
        "cache_has_attachments INTEGER, attributedBody BLOB DEFAULT NULL, account TEXT "
        "DEFAULT 'e:me@example.com', date_read INTEGER DEFAULT 0, date_delivered INTEGER "
        "DEFAULT 0, is_delivered INTEGER DEFAULT 1, is_read INTEGER DEFAULT 1, "
        "cache_roomnames TEXT);"
        "CREATE TABLE chat_message_join (chat_id INTEGER, message_id INTEGER);"
        "CREATE TABLE attachment (ROWID INTEGER PRIMARY KEY, guid TEXT, created_date INTEGER, "
        "filename TEXT, mime_type TEXT, transfer_name TEXT, total_bytes INTEGER, "
        "start_date INTEGER DEFAULT 0, is_outgoing INTEGER DEFAULT 0, user_info BLOB, "
        "transfer_state INTEGER DEFAULT 5, uti TEXT, is_sticker INTEGER DEFAULT 0, "
        "hide_attachment INTEGER DEFAULT 0);"
        "CREATE TABLE message_attachment_join (message_id INTEGER, attachment_id INTEGER);")
    w.db("HomeDomain", "Library/SMS/sms.db", schema, fill, wal=spec.wal)
    rel = _SMS_ATT.removeprefix("~/")
    folder = rel.rsplit("/", 1)[0]
    w.folder("MediaDomain", folder, attach_at if spec.planted else T0 - 9 * 86_400)
    w.put("MediaDomain", rel, exploit if spec.planted else benign, attach_at)


_SMS_ATT = "~/Library/SMS/Attachments/a1/01/ATT-1/IMG_0001.jpg"
_TMP_ATT = "/var/tmp/com.apple.messages/5F3C1A2B-1"  # noqa: S108 (a path on the phone)
_WA_MEDIA = "Media/447700900123@s.whatsapp.net/a/b/4f1c.jpg"


def _whatsapp(w: _Writer) -> None:
    spec = w.spec
    exploit = containers.jpeg() + containers.zip_of({"payload.bin": bytes(32)})

    def fill(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO ZWACHATSESSION (Z_PK, ZPARTNERNAME, ZCONTACTJID) "
                  "VALUES (1, 'Alex', '447700900123@s.whatsapp.net')")
        host = PLANTED["whatsapp_domain"] if spec.planted else "news.example.org"
        c.executemany("INSERT INTO ZWAMESSAGE (Z_PK, ZTEXT, ZMESSAGEDATE, ZCHATSESSION, "
                      "ZFROMJID, ZMEDIAITEM) VALUES (?,?,?,?,?,?)",
                      [(1, f"look https://{host}/v", apple(T0 + 100), 1, "447700900123", None),
                       (2, None, apple(T0 + 200), 1, "447700900123", 1)])
        c.execute("INSERT INTO ZWAMEDIAITEM (Z_PK, ZMESSAGE, ZMEDIALOCALPATH) "
                  "VALUES (1, 2, ?)", (_WA_MEDIA,))
        c.execute("INSERT INTO ZWAMESSAGEDATAITEM (Z_PK, ZMESSAGE, ZMATCHEDTEXT, ZTITLE) "
                  "VALUES (1, 1, 'https://preview.example.org/a', 'Preview')")

    w.db(WA, "ChatStorage.sqlite",
         "CREATE TABLE ZWACHATSESSION (Z_PK INTEGER PRIMARY KEY, ZPARTNERNAME TEXT, "
         "ZCONTACTJID TEXT, ZSESSIONTYPE INTEGER, ZARCHIVED INTEGER, ZREMOVED INTEGER, "
         "ZMESSAGECOUNTER INTEGER, ZLASTMESSAGEDATE REAL, ZGROUPINFO INTEGER);"
         "CREATE TABLE ZWAGROUPINFO (Z_PK INTEGER PRIMARY KEY, ZCREATIONDATE REAL);"
         "CREATE TABLE ZWAMESSAGE (Z_PK INTEGER PRIMARY KEY, ZTEXT TEXT, ZMESSAGEDATE REAL, "
         "ZSENTDATE REAL, ZCHATSESSION INTEGER, ZFROMJID TEXT, ZTOJID TEXT, ZISFROMME "
         "INTEGER, ZMEDIAITEM INTEGER, ZMESSAGETYPE INTEGER);"
         "CREATE TABLE ZWAMEDIAITEM (Z_PK INTEGER PRIMARY KEY, ZMESSAGE INTEGER, "
         "ZMEDIALOCALPATH TEXT, ZMEDIAURL TEXT, ZAUTHORNAME TEXT, ZTITLE TEXT);"
         "CREATE TABLE ZWAMESSAGEDATAITEM (Z_PK INTEGER PRIMARY KEY, ZMESSAGE INTEGER, "
         "ZCONTENT1 TEXT, ZCONTENT2 TEXT, ZMATCHEDTEXT TEXT, ZSUMMARY TEXT, ZTITLE TEXT);"
         "CREATE TABLE ZWAPHONENUMBERLIDPAIR (Z_PK INTEGER PRIMARY KEY, ZLID TEXT, "
         "ZPHONENUMBER TEXT, ZTIMESTAMP REAL);", fill)
    w.put(WA, f"Message/{_WA_MEDIA}", exploit if spec.planted else containers.jpeg())


def _safari(w: _Writer) -> None:
    spec = w.spec

    def fill(c: sqlite3.Connection) -> None:
        for i in range(spec.history):
            c.execute("INSERT INTO history_items VALUES (?,?,?,1)",
                      (i + 1, f"https://www.site{i % 89}.example.com/page{i}", f"site{i % 89}"))
            c.execute("INSERT INTO history_visits VALUES (?,?,?,?,NULL,NULL)",
                      (i + 1, i + 1, apple(T0 + 600 * i), f"page {i}"))
        if spec.planted:  # a shortener that bounces to the exploit server within 0.3 s
            c.execute("INSERT INTO history_items VALUES (900001, 'https://bit.example/x', "
                      "'bit', 1)")
            c.execute("INSERT INTO history_items VALUES (900002, ?, 'b', 1)",
                      (f"https://{PLANTED['history_domain']}/landing",))
            c.execute("INSERT INTO history_visits VALUES (900001, 900001, ?, 'x', NULL, "
                      "900002)", (apple(T0 + 50),))
            c.execute("INSERT INTO history_visits VALUES (900002, 900002, ?, 'y', 900001, "
                      "NULL)", (apple(T0 + 50.3),))

    w.db(SAFARI, "Library/Safari/History.db",
         "CREATE TABLE history_items (id INTEGER PRIMARY KEY, url TEXT UNIQUE, "
         "domain_expansion TEXT, visit_count INTEGER); CREATE TABLE history_visits (id INTEGER "
         "PRIMARY KEY, history_item INTEGER, visit_time REAL, title TEXT, redirect_source "
         "INTEGER, redirect_destination INTEGER);", fill)

    def tabs(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO tabs VALUES (1, 'T-1', 'https://www.example.com/', "
                  "'https://www.example.com/', 'Example', ?)", (apple(T0),))
        c.execute("INSERT INTO tab_sessions VALUES (1, 'T-1', ?)",
                  (b"\x00\x00\x00\x01" + _plist({"SessionHistory": {"SessionHistoryEntries": [
                      {"SessionHistoryEntryURL": "https://www.example.com/"}]}}),))

    w.db(SAFARI, "Library/Safari/BrowserState.db",
         "CREATE TABLE tabs (id INTEGER PRIMARY KEY, uuid TEXT, url TEXT, "
         "user_visible_url TEXT, title TEXT, "
         "last_viewed_time REAL); CREATE TABLE tab_sessions (id INTEGER PRIMARY KEY, "
         "tab_uuid TEXT, session_data BLOB);", tabs)
    observed = PLANTED["observed_domain"] if spec.planted else "example.net"
    w.db(SAFARI, "Library/WebKit/WebsiteData/ResourceLoadStatistics/observations.db",
         "CREATE TABLE ObservedDomains (domainID INTEGER PRIMARY KEY, registrableDomain TEXT "
         "UNIQUE, lastSeen REAL, hadUserInteraction INTEGER);",
         lambda c: c.executemany("INSERT INTO ObservedDomains VALUES (?,?,?,0)",
                                 [(1, "example.com", T0), (2, observed, T0 + 30)]))
    session = PLANTED["session_domain"] if spec.planted else "cdn.example.net"
    w.put(SAFARI, "Library/WebKit/WebsiteData/ResourceLoadStatistics/"
          "full_browsing_session_resourceLog.plist",
          _plist({"browsingStatistics": [{"PrevalentResourceOrigin": "example.com",
                                          "topFrameUniqueRedirectsTo": [session],
                                          "lastSeen": _dt(T0)}]}))


def _system(w: _Writer) -> None:
    spec = w.spec
    procs = [("com.apple.mobilesafari/com.apple.mobilesafari", "com.apple.mobilesafari"),
             ("BackupAgent2", "com.apple.BackupAgent2")]
    procs += [(f"exampled{i}", f"com.example.d{i}") for i in range(spec.extra_processes)]
    if spec.planted:
        procs += [(PLANTED["datausage_process"], ""), ("BackupAgent", "")]

    def usage(c: sqlite3.Connection) -> None:
        for n, (name, bundle) in enumerate(procs, 1):
            # planted: process record #4 was deleted (keys are never reused)
            i = n + 1 if spec.planted and n >= 4 else n
            c.execute("INSERT INTO ZPROCESS VALUES (?,?,?,?,?)",
                      (i, name, bundle, apple(T0 + i), apple(T0 + i)))
            c.execute("INSERT INTO ZLIVEUSAGE (Z_PK, ZHASPROCESS, ZTIMESTAMP, ZWIFIIN, "
                      "ZWIFIOUT, ZWWANIN, ZWWANOUT) VALUES (?,?,?,?,?,?,?)",
                      (i, i, apple(T0 + 10 * i), 1000.0 * i, 50.0, 0.0, 0.0))
        if spec.planted:  # usage of a process whose record was deleted
            c.execute("INSERT INTO ZLIVEUSAGE (Z_PK, ZHASPROCESS, ZTIMESTAMP, ZWIFIIN, "
                      "ZWIFIOUT, ZWWANIN, ZWWANOUT) VALUES (9999, 9998, ?, 10, 10, 0, 0)",
                      (apple(T0),))

    w.db("WirelessDomain", "Library/Databases/DataUsage.sqlite",
         "CREATE TABLE ZPROCESS (Z_PK INTEGER PRIMARY KEY, ZPROCNAME TEXT, ZBUNDLENAME TEXT, "
         "ZFIRSTTIMESTAMP REAL, ZTIMESTAMP REAL); CREATE TABLE ZLIVEUSAGE (Z_PK INTEGER "
         "PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, ZKIND INTEGER, ZMETADATA INTEGER, "
         "ZTAG INTEGER, ZHASPROCESS INTEGER, ZBILLCYCLEEND REAL, ZTIMESTAMP REAL, "
         "ZWIFIIN REAL, ZWIFIOUT REAL, ZWWANIN REAL, ZWWANOUT REAL);", usage)
    day = _dt(T0)
    base: dict[str, object] = {"mediaserverd": [day, 10, 20, 0, 0]}
    if spec.planted:
        base |= {PLANTED["addaily_process"]: [day, 5, 5, 0, 0], "BackupAgent": [day, 77, 1, 0, 0]}
    w.put("HomeDomain", "Library/Preferences/com.apple.osanalytics.addaily.plist",
          _plist({"netUsageBaseline": base}))
    email = PLANTED["email"] if spec.planted else "friend@example.com"
    w.put("HomeDomain", "Library/Preferences/com.apple.identityservices.idstatuscache.plist",
          _plist({"com.apple.madrid": {f"mailto:{email}": {"LookupDate": apple(T0),
                                                             "IDStatus": 1},
                                       "tel:+447700900123": {"LookupDate": apple(T0)}}}))
    tcc_client = f"/private/var/db/{PLANTED['tcc_process']}" if spec.planted else "com.example.app"
    w.db("HomeDomain", "Library/TCC/TCC.db",
         "CREATE TABLE access (service TEXT, client TEXT, client_type INTEGER, auth_value "
         "INTEGER, auth_reason INTEGER DEFAULT 2, auth_version INTEGER DEFAULT 1, "
         "indirect_object_identifier TEXT DEFAULT 'UNUSED', last_modified INTEGER);",
         lambda c: c.executemany("INSERT INTO access (service, client, client_type, "
                                 "auth_value, last_modified) VALUES (?,?,?,2,?)", [
             ("kTCCServiceCamera", "com.apple.camera", 0, T0),
             ("kTCCServiceMicrophone", tcc_client, 0, T0 + 5)]))
    exe = (f"/private/var/tmp/{PLANTED['location_process']}" if spec.planted
           else "/Applications/Maps.app/Maps")
    loc_at = T0 + 3_720 if spec.planted else T0 - 30 * 86_400
    w.put("RootDomain", "Library/Caches/locationd/clients.plist",
          _plist({"com.apple.Maps": {"BundleId": "com.apple.Maps", "Executable": exe,
                                     "Registered": "", "Authorization": 2,
                                     "LocationTimeStopped": apple(T0)}}), loc_at)
    imageio_at = T0 + 3_660 if spec.planted else T0 - 20 * 86_400
    w.put("HomeDomain", "Library/Preferences/com.apple.ImageIO.plist", _plist({}), imageio_at)
    cal = PLANTED["calendar_email"] if spec.planted else "colleague@example.com"
    w.db("HomeDomain", "Library/Calendar/Calendar.sqlitedb",
         "CREATE TABLE Participant (ROWID INTEGER PRIMARY KEY, entity_type INTEGER, "
         "email TEXT, owner_id INTEGER, UUID TEXT, phone_number TEXT, comment TEXT, "
         "last_modified REAL); CREATE TABLE CalendarItem (ROWID INTEGER PRIMARY KEY, "
         "summary TEXT, description TEXT, start_date REAL, end_date REAL, all_day INTEGER, "
         "calendar_id INTEGER, organizer_id INTEGER, url TEXT, last_modified REAL, "
         "external_id TEXT, external_mod_tag TEXT, unique_identifier TEXT, hidden INTEGER, "
         "UUID TEXT, creation_date REAL, action TEXT, created_by_id INTEGER);",
         lambda c: (c.execute("INSERT INTO Participant (ROWID, entity_type, email, owner_id, "
                              "UUID) VALUES (1, 7, ?, 1, 'P-1')", (f"mailto:{cal}",)),
                    c.execute("INSERT INTO CalendarItem (ROWID, summary, description, "
                              "start_date, end_date, organizer_id, UUID) VALUES "
                              "(1, 'Call', '', ?, ?, 1, 'C-1')", (apple(T0), apple(T0 + 1800)))))
    if spec.planted:
        w.put("HomeDomain", f"Library/Preferences/{PLANTED['file_name']}", _plist({}))
        w.put(PROFILES, "Library/ConfigurationProfiles/profile-7a1b.stub",
              _plist({"PayloadUUID": PLANTED["profile"], "PayloadIdentifier": "com.x.mdm",
                      "PayloadDisplayName": "Settings", "PayloadType": "Configuration",
                      "PayloadContent": [{"PayloadType": "com.apple.webClip.managed",
                                          "PayloadUUID": PLANTED["profile"],
                                          "PayloadDisplayName": "Settings"}],
                      "InstallDate": day}))


SIGNAL_DOMAIN = "AppDomainGroup-group.org.whispersystems.signal.group"
TELEGRAM_DOMAIN = "AppDomainGroup-group.ph.telegra.Telegraph"


def _other_messengers(w: _Writer) -> None:
    """Media stored by Signal and Telegram; Signal's holds the exploit when planted."""
    if not w.spec.other_messengers:
        return
    signal = (containers.jpeg() + containers.zip_of({"stage.so": bytes(32)})
              if w.spec.planted else containers.jpeg())
    w.put(SIGNAL_DOMAIN, "Attachments/3F/3F2A9C.jpg", signal, T0 + 300)
    w.put(TELEGRAM_DOMAIN, "telegram-data/account-1/postbox/media/photo-77.png",
          containers.png(), T0 + 400)


def write_backup(folder: str | Path, spec: BackupSpec | None = None) -> Path:
    """Write a synthetic backup into ``folder`` (created); return the folder."""
    spec = spec or BackupSpec()
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    w = _Writer(root, spec)
    manifest: dict[str, object] = {"Version": "10.0", "IsEncrypted": False,
                                   "Date": _dt(T0)}
    keys = Keys.make(spec.password) if spec.password is not None else None
    if keys is not None:
        w.encrypt = keys.encrypt_file
        manifest.update(keys.manifest_fields())
    from spywall.samples import ios_extra  # (it uses this module's helpers)

    for part in (_sms, _whatsapp, _safari, _system, _other_messengers, ios_extra.add):
        part(w)
    info = {"Product Version": spec.version(), "Build Version": "20F66",
            "Product Type": "iPhone14,2", "Device Name": "Test iPhone",
            "Serial Number": "F00000000000", "Unique Identifier": "00008110-00000000000001E",
            "Last Backup Date": _dt(T0 + 86_400),
            "Installed Applications": ["com.apple.mobilesafari", "net.whatsapp.WhatsApp"]}
    from spywall.samples.ios_extra import applications

    info["Applications"] = applications(spec.planted)
    (root / "Info.plist").write_bytes(plistlib.dumps(info))
    (root / "Status.plist").write_bytes(_plist({"IsFullBackup": False, "Version": "3.3",
                                                "SnapshotState": "finished",
                                                "Date": _dt(T0)}))
    db, _ = sqlite_bytes(
        "CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT, "
        "flags INTEGER, file BLOB); CREATE INDEX FilesDomainIdx ON Files(domain); "
        "CREATE TABLE Properties (key TEXT PRIMARY KEY, value BLOB);",
        lambda c: c.executemany("INSERT OR REPLACE INTO Files VALUES (?,?,?,?,?)", w.rows))
    (root / "Manifest.db").write_bytes(keys.encrypt_manifest(db) if keys else db)
    if spec.manifest_plist:
        (root / "Manifest.plist").write_bytes(_plist(manifest))
    return root
