"""More artifacts of the generated iOS backup (``samples.ios.write_backup`` adds them):
Chrome's History database, Firefox's browser.db, Shortcuts,
favicon databases, the global preferences with the
Lockdown Mode key, and Apple's threat notification by iMessage, each in the shape real
devices write it.

- Chrome for iOS: Chromium's History schema (``urls``, ``visits`` with ``visit_time`` in
  microseconds since 1601-01-01 and ``from_visit`` for the visit a redirect came from),
  in the app's container ``AppDomain-com.google.chrome.ios``.
- ``.GlobalPreferences.plist`` (HomeDomain): ``LDMGlobalEnabled`` true when Lockdown
  Mode is on, false after it was turned off (the planted backup), absent when never set.
- The threat notification: an iMessage whose text begins with Apple's published wording.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from spywall.samples import ios_people
from spywall.samples.ios import PLANTED, T0, _plist

if TYPE_CHECKING:
    from spywall.samples.ios import _Writer

CHROME_DOMAIN = "AppDomain-com.google.chrome.ios"
CHROME_HISTORY = "Library/Application Support/Google/Chrome/Default/History"
CHROME_EPOCH = 11_644_473_600
THREAT_TEXT = ("ALERT: Apple detected a targeted mercenary spyware attack against your "
               "iPhone. Apple believes you are being targeted by a mercenary spyware attack "
               "that is trying to remotely compromise the iPhone associated with your Apple "
               "ID -{appleid}-.")


def chrome_time(unix: float) -> int:
    """A Chromium timestamp: microseconds since 1601-01-01."""
    return int((unix + CHROME_EPOCH) * 1_000_000)


def _chrome(w: _Writer) -> None:
    planted = w.spec.planted
    urls = [(1, "https://www.example.com/news", "News"),
            (2, "https://docs.example.org/guide", "Guide"),
            (3, f"https://{PLANTED['chrome_domain'] if planted else 'shop.example.net'}"
                "/r/8f2e", "")]

    def fill(c: sqlite3.Connection) -> None:
        c.executemany("INSERT INTO urls (id, url, title, visit_count, last_visit_time) "
                      "VALUES (?,?,?,1,0)", urls)
        c.executemany("INSERT INTO visits (id, url, visit_time, from_visit, transition) "
                      "VALUES (?,?,?,?,?)",
                      [(1, 1, chrome_time(T0 + 100), 0, 805306368),
                       (2, 2, chrome_time(T0 + 200), 0, 805306369),
                       (3, 3, chrome_time(T0 + 201), 2, 805306374)])

    w.db(CHROME_DOMAIN, CHROME_HISTORY,
         "CREATE TABLE urls (id INTEGER PRIMARY KEY AUTOINCREMENT, url LONGVARCHAR, title "
         "LONGVARCHAR, visit_count INTEGER DEFAULT 0 NOT NULL, typed_count INTEGER DEFAULT 0 "
         "NOT NULL, last_visit_time INTEGER NOT NULL, hidden INTEGER DEFAULT 0 NOT NULL);"
         "CREATE TABLE visits (id INTEGER PRIMARY KEY, url INTEGER NOT NULL, visit_time "
         "INTEGER NOT NULL, from_visit INTEGER, transition INTEGER DEFAULT 0 NOT NULL, "
         "segment_id INTEGER, visit_duration INTEGER DEFAULT 0 NOT NULL);"
         "CREATE TABLE meta (key LONGVARCHAR NOT NULL UNIQUE PRIMARY KEY, value LONGVARCHAR);",
         fill)


FIREFOX_DOMAIN = "AppDomainGroup-group.org.mozilla.ios.Firefox"


def _firefox(w: _Writer) -> None:
    """Firefox for iOS: ``history`` (one row per site) and ``visits`` (``siteID``, ``date``
    in unix microseconds); ``favicons`` (``date`` in unix seconds) linked to the pages by
    ``favicon_sites``. The planted icon is served from a Pegasus domain."""
    host = PLANTED["firefox_domain"] if w.spec.planted else "weather.example.com"
    icon_host = PLANTED["firefox_favicon_domain"] if w.spec.planted else "static.example.org"

    def fill(c: sqlite3.Connection) -> None:
        c.executemany("INSERT INTO history (id, guid, url, title) VALUES (?,?,?,?)",
                      [(1, "g1", "https://www.example.org/", "Example"),
                       (2, "g2", f"https://{host}/today", "")])
        c.executemany("INSERT INTO visits (id, siteID, date, type, is_local) VALUES "
                      "(?,?,?,1,1)", [(1, 1, (T0 + 500) * 1_000_000),
                                      (2, 2, (T0 + 560) * 1_000_000 + 250_000)])
        c.executemany("INSERT INTO favicons (id, url, width, height, type, date) VALUES "
                      "(?,?,?,?,?,?)",
                      [(1, "https://www.example.org/favicon.ico", 32, 32, 1, T0 + 501.5),
                       (2, f"https://{icon_host}/icon.png", None, None, 0, T0 + 561)])
        c.executemany("INSERT INTO favicon_sites (id, siteID, faviconID) VALUES (?,?,?)",
                      [(1, 1, 1), (2, 2, 2)])

    w.db(FIREFOX_DOMAIN, "profile.profile/browser.db",
         "CREATE TABLE history (id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL "
         "UNIQUE, url TEXT UNIQUE, title TEXT NOT NULL, server_modified INTEGER, "
         "local_modified INTEGER, is_deleted TINYINT NOT NULL DEFAULT 0, should_upload "
         "TINYINT NOT NULL DEFAULT 0, domain_id INTEGER);"
         "CREATE TABLE visits (id INTEGER PRIMARY KEY AUTOINCREMENT, siteID INTEGER NOT NULL "
         "REFERENCES history(id) ON DELETE CASCADE, date REAL NOT NULL, type INTEGER NOT "
         "NULL, is_local TINYINT NOT NULL);"
         "CREATE TABLE favicons (id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL "
         "UNIQUE, width INTEGER, height INTEGER, type INTEGER NOT NULL, date REAL NOT NULL);"
         "CREATE TABLE favicon_sites (id INTEGER PRIMARY KEY AUTOINCREMENT, siteID INTEGER "
         "NOT NULL REFERENCES history(id) ON DELETE CASCADE, faviconID INTEGER NOT NULL "
         "REFERENCES favicons(id) ON DELETE CASCADE, UNIQUE (siteID, faviconID));", fill)


def _shortcuts(w: _Writer) -> None:
    """Shortcuts.sqlite: a shortcut whose action opens a URL (the planted one a Pegasus
    domain), its actions a binary plist as the Shortcuts app stores them."""
    import plistlib

    host = PLANTED["shortcut_domain"] if w.spec.planted else "news.example.com"
    actions = [{"WFWorkflowActionIdentifier": "is.workflow.actions.url",
                "WFWorkflowActionParameters": {"WFURLActionURL": f"https://{host}/daily"}},
               {"WFWorkflowActionIdentifier": "is.workflow.actions.openurl",
                "WFWorkflowActionParameters": {}}]

    def fill(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO ZSHORTCUT (Z_PK, ZNAME, ZCREATIONDATE, ZMODIFICATIONDATE, "
                  "ZACTIONCOUNT) VALUES (1, 'Morning news', ?, ?, 2)",
                  (T0 - 978_307_200 + 900.0, T0 - 978_307_200 + 960.0))
        c.execute("INSERT INTO ZSHORTCUTACTIONS (Z_PK, ZSHORTCUT, ZDATA) VALUES (1, 1, ?)",
                  (plistlib.dumps(actions, fmt=plistlib.FMT_BINARY),))

    w.db("HomeDomain", "Library/Shortcuts/Shortcuts.sqlite",
         "CREATE TABLE ZSHORTCUT (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, "
         "ZNAME VARCHAR, ZCREATIONDATE TIMESTAMP, ZMODIFICATIONDATE TIMESTAMP, ZACTIONCOUNT "
         "INTEGER, ZACTIONSDESCRIPTION BLOB);"
         "CREATE TABLE ZSHORTCUTACTIONS (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT "
         "INTEGER, ZSHORTCUT INTEGER, ZDATA BLOB);", fill)


def _favicons(w: _Writer) -> None:
    """Chrome's Favicons (Chromium schema) and Safari's Favicons.db (WebKit's: page_url
    and icon_info by uuid, Apple-epoch timestamps), the planted ones naming a Pegasus
    domain as a page and as an icon host."""
    planted = w.spec.planted
    page = f"https://{PLANTED['favicon_domain']}/x" if planted else "https://www.example.org/"

    def chrome(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO favicons (id, url, icon_type) VALUES (1, ?, 1)",
                  ("https://www.example.org/favicon.ico",))
        c.execute("INSERT INTO icon_mapping (id, page_url, icon_id) VALUES (1, ?, 1)", (page,))
        c.execute("INSERT INTO favicon_bitmaps (id, icon_id, last_updated, last_requested, "
                  "width, height) VALUES (1, 1, ?, 0, 16, 16)", (chrome_time(T0 + 120),))

    w.db(CHROME_DOMAIN, "Library/Application Support/Google/Chrome/Default/Favicons",
         "CREATE TABLE favicons (id INTEGER PRIMARY KEY, url LONGVARCHAR NOT NULL, icon_type "
         "INTEGER DEFAULT 1);"
         "CREATE TABLE icon_mapping (id INTEGER PRIMARY KEY, page_url LONGVARCHAR NOT NULL, "
         "icon_id INTEGER);"
         "CREATE TABLE favicon_bitmaps (id INTEGER PRIMARY KEY, icon_id INTEGER NOT NULL, "
         "last_updated INTEGER DEFAULT 0, image_data BLOB, width INTEGER DEFAULT 0, "
         "height INTEGER DEFAULT 0, last_requested INTEGER NOT NULL DEFAULT 0);", chrome)
    icon = (f"https://cdn.{PLANTED['favicon_icon_domain']}/i.png" if planted
            else "https://www.example.org/apple-touch-icon.png")

    def safari(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO page_url (id, uuid, url) VALUES (1, 'U-1', ?)",
                  ("https://www.example.org/",))
        c.execute("INSERT INTO icon_info (id, uuid, url, timestamp, width, height, "
                  "has_generated_representations) VALUES (1, 'U-1', ?, ?, 32, 32, 0)",
                  (icon, float(T0 + 130 - 978_307_200)))

    w.db("AppDomain-com.apple.mobilesafari", "Library/Image Cache/Favicons/Favicons.db",
         "CREATE TABLE page_url (id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT, url TEXT "
         "NOT NULL UNIQUE);"
         "CREATE TABLE icon_info (id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT UNIQUE, url "
         "TEXT, timestamp REAL, width REAL, height REAL, has_generated_representations "
         "INTEGER);"
         "CREATE TABLE rejected_resources (id INTEGER PRIMARY KEY AUTOINCREMENT, page_url TEXT "
         "NOT NULL UNIQUE, timestamp REAL);", safari)


def _profile_events(w: _Writer) -> None:
    """MCProfileEvents.plist as profiled writes it: a list of {profile id: {operation,
    process, timestamp}}; the planted install was made by a Pegasus process."""
    from datetime import UTC, datetime

    from spywall.samples.ios import PROFILES

    when = datetime.fromtimestamp(T0 + 200, UTC).replace(tzinfo=None)
    events: list[dict[str, object]] = [{"com.example.wifi": {
        "operation": "install", "process": "/usr/libexec/mdmd", "timestamp": when}}]
    if w.spec.planted:
        events.append({PLANTED["profile"]: {
            "operation": "install", "process": f"/private/var/db/{PLANTED['profile_process']}",
            "timestamp": when}})
    w.put(PROFILES, "Library/ConfigurationProfiles/MCProfileEvents.plist",
          _plist({"ProfileEvents": events}))


def _global_prefs(w: _Writer) -> None:
    prefs: dict[str, object] = {"AppleLanguages": ["en-GB"], "AppleLocale": "en_GB"}
    if w.spec.planted:
        prefs["LDMGlobalEnabled"] = False  # turned on once, then off again
    else:
        prefs["LDMGlobalEnabled"] = True
    w.put("HomeDomain", "Library/Preferences/.GlobalPreferences.plist", _plist(prefs))


def threat_message(rowid: int) -> tuple[int, str, str]:
    """(ROWID, guid, text) of the planted threat notification."""
    return rowid, f"GUID-ALERT-{rowid}", THREAT_TEXT.format(appleid="user@example.com")


def add(w: _Writer) -> None:
    """Write every artifact of this module into the backup being written."""
    _chrome(w)
    _firefox(w)
    _shortcuts(w)
    _favicons(w)
    _profile_events(w)
    _global_prefs(w)
    ios_people.add(w)


def itunes_metadata(bundle: str, name: str, source: str) -> bytes:
    """An app's iTunesMetadata.plist (the keys the App Store writes that checks read)."""
    from datetime import UTC, datetime

    bought = datetime.fromtimestamp(T0 - 86_400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _plist({"softwareVersionBundleId": bundle, "itemName": name,
                   "artistName": "Example Ltd", "bundleShortVersionString": "1.0",
                   "sourceApp": source, "itemId": 1,
                   "com.apple.iTunesStore.downloadInfo": {"purchaseDate": bought}})


def applications(planted: bool) -> dict[str, object]:
    """Info.plist ``Applications``: bundle id -> {iTunesMetadata, PlaceholderIcon}; the
    planted backup has an app installed by an enterprise installer."""
    apps = {"net.whatsapp.WhatsApp": ("WhatsApp", "com.apple.AppStore"),
            "com.example.weather": ("Weather+", "com.apple.AppStore.ProductPageExtension")}
    if planted:
        apps["com.example.helper"] = ("Helper", "com.example.enterprise.installer")
    return {b: {"iTunesMetadata": itunes_metadata(b, n, src), "PlaceholderIcon": b"\x89PNG"}
            for b, (n, src) in apps.items()}
