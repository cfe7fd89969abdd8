"""Web caches and favicon databases: URLs that outlive a cleared history, so a link to an
exploit server can remain here after the history is gone (MVT's chrome_favicon,
safari_favicon and cache_files).

- Apps' URL caches (``.../Caches/<bundle id>/Cache.db``, CFNetwork's schema):
  ``cfurl_cache_response.request_key`` (the URL) and ``time_stamp`` (UTC text).

- Chrome for iOS ``Favicons`` (Chromium schema): ``icon_mapping.page_url`` joined to
  ``favicons.url`` and ``favicon_bitmaps.last_updated`` (microseconds since 1601).
- Safari / WebKit ``Favicons.db`` (``.../Favicons/Favicons.db``, any container):
  ``page_url`` joined to ``icon_info`` by ``uuid`` (``timestamp``: Apple epoch), and the
  ``rejected_resources`` pages (and their ``icon_url``, where the table has one).
- Firefox for iOS (its ``browser.db``, the history's database): ``favicons`` (``url``,
  ``width``, ``height``, ``type``, ``date`` in unix seconds) joined through
  ``favicon_sites`` (``faviconID``, ``siteID``) to the ``history`` page it was seen on.
"""

from __future__ import annotations

from spywall.device.base import FnModule, iso_apple, iso_unix
from spywall.device.sqlite import columns, require, tables
from spywall.ios.backup import Entry
from spywall.ios.browsers import FIREFOX, chrome_time
from spywall.ios.common import (
    MAX_ROWS,
    Ctx,
    Result,
    check_links,
    database,
    every,
    ok,
    scalar,
    single,
)

CHROME_FAVICONS = [("AppDomain-com.google.chrome.ios",
                    "Library/Application Support/Google/Chrome/Default/Favicons")]
SAFARI_FAVICONS = "Favicons/Favicons.db"


def _check(ctx: Ctx, module: str, when: str | None, page: object, icon: object,
           path: str, what: str) -> None:
    urls = [u for u in (page, icon) if isinstance(u, str) and u]
    if not urls:
        return
    hit = any(ctx.lookup.url(u) for u in urls)
    if not (ctx.timeline or hit):
        return
    rec = ctx.record(module, when, "favicon", {"url": str(page or "")[:2048],
                                               "icon_url": str(icon or "")[:2048]})
    if hit:
        check_links(ctx, urls, rec, path, what)


def _chrome(ctx: Ctx, entry: Entry, path: str) -> Result:
    with database(ctx, entry) as conn:
        require(conn, "icon_mapping", ("page_url", "icon_id"))
        require(conn, "favicons", ("id", "url"))
        bitmaps = {"icon_id", "last_updated"} <= columns(conn, "favicon_bitmaps")
        when = "b.last_updated" if bitmaps else "NULL"
        join = "LEFT JOIN favicon_bitmaps b ON b.icon_id = m.icon_id" if bitmaps else ""
        rows = conn.execute(f"SELECT m.page_url, f.url, {when} FROM icon_mapping m "  # noqa: S608
                            f"LEFT JOIN favicons f ON f.id = m.icon_id {join} LIMIT ?",
                            (MAX_ROWS,)).fetchall()
    for page, icon, updated in rows:
        _check(ctx, "chrome_favicon", chrome_time(updated), page, icon, path,
               "Chrome favicon URL")
    return ok(len(rows))


def _safari(ctx: Ctx, entry: Entry, path: str) -> int:
    with database(ctx, entry) as conn:
        require(conn, "page_url", ("uuid", "url"))
        have = require(conn, "icon_info", ("uuid", "url"))
        when = "i.timestamp" if "timestamp" in have else "NULL"
        rows = conn.execute(f"SELECT p.url, i.url, {when} FROM page_url p "  # noqa: S608
                            "LEFT JOIN icon_info i ON i.uuid = p.uuid LIMIT ?",
                            (MAX_ROWS,)).fetchall()
        rejected = []
        cols = columns(conn, "rejected_resources") if "rejected_resources" in tables(
            conn) else set()
        if {"page_url", "timestamp"} <= cols:  # (its icon_url, when it has one, as MVT)
            icon_col = "icon_url" if "icon_url" in cols else "NULL"
            rejected = conn.execute(f"SELECT page_url, {icon_col}, timestamp "  # noqa: S608
                                    "FROM rejected_resources LIMIT ?",
                                    (MAX_ROWS,)).fetchall()
    for page, icon, stamp in rows:
        _check(ctx, "safari_favicon", iso_apple(stamp), page, icon, path,
               "Safari favicon URL")
    for page, icon, stamp in rejected:
        _check(ctx, "safari_favicon", iso_apple(stamp), page, icon, path,
               "Safari favicon (rejected resource)")
    return len(rows) + len(rejected)


def _firefox(ctx: Ctx, entry: Entry, path: str) -> Result:
    """MVT's ``firefox_favicon`` fields: the icon (``id``, ``url``, ``width``, ``height``,
    ``type``), when it was fetched, and the page (``history_id``, ``history_url``)."""
    with database(ctx, entry) as conn:
        have = require(conn, "favicons", ("id", "url"))
        require(conn, "favicon_sites", ("siteID", "faviconID"))
        require(conn, "history", ("id", "url"))
        extra = ", ".join(f"f.{c}" if c in have else "NULL"
                          for c in ("width", "height", "type", "date"))
        rows = conn.execute(
            f"SELECT f.id, f.url, {extra}, h.id, h.url FROM favicons f "  # noqa: S608
            "JOIN favicon_sites s ON s.faviconID = f.id JOIN history h ON h.id = s.siteID "
            "LIMIT ?", (MAX_ROWS,)).fetchall()
    for fid, icon, width, height, kind, date, hid, page in rows:
        urls = [u for u in (icon, page) if isinstance(u, str) and u]
        hit = any(ctx.lookup.url(u) for u in urls)
        if not (ctx.timeline or hit):
            continue
        when = iso_unix(date) if isinstance(date, int | float) else None
        rec = ctx.record("firefox_favicon", when, "firefox_history", {
            "id": scalar(fid), "url": str(icon or "")[:2048], "width": scalar(width),
            "height": scalar(height), "type": scalar(kind), "history_id": scalar(hid),
            "history_url": str(page or "")[:2048]})
        # as MVT: the icon's URL, and the page's only when the icon matches nothing
        for u, what in ((icon, "Firefox favicon URL"), (page, "page of a Firefox favicon")):
            if hit and isinstance(u, str) and check_links(ctx, [u], rec, path, what):
                break
    return ok(len(rows))


CACHE_DB = "/Cache.db"


def _cache(ctx: Ctx, entry: Entry, path: str) -> int:
    with database(ctx, entry) as conn:
        have = require(conn, "cfurl_cache_response", ("entry_ID", "request_key"))
        when = "time_stamp" if "time_stamp" in have else "NULL"
        rows = conn.execute(f"SELECT entry_ID, request_key, {when} FROM "  # noqa: S608
                            "cfurl_cache_response LIMIT ?", (MAX_ROWS,)).fetchall()
    urls = [r[1] if r[1].__class__ is str else "" for r in rows]
    for (eid, url, stamp), hit in zip(rows, ctx.lookup.urls(urls), strict=True):
        if url.__class__ is not str or not (ctx.timeline or hit):
            continue
        rec = ctx.record("cache_files", iso_any_text(stamp), "cache_response",
                         {"entry_id": eid, "url": url[:2048], "cache": entry.relative_path})
        if hit:
            check_links(ctx, [url], rec, path, "URL in an app's web cache")
    return len(rows)


def iso_any_text(value: object) -> str | None:
    """``YYYY-MM-DD hh:mm:ss`` (CFNetwork's UTC time text) as ISO-8601 UTC."""
    if not isinstance(value, str) or len(value) != 19 or value[10] != " ":
        return None
    text = f"{value[:10]}T{value[11:]}Z"
    return text if text[:4].isdigit() and text[11:13].isdigit() else None


MODULES = (
    FnModule("chrome_favicon", "Chrome for iOS favicons: page and icon URLs",
             single(CHROME_FAVICONS, _chrome)),
    FnModule("safari_favicon", "Safari / WebKit favicons: page and icon URLs (Favicons.db)",
             every(SAFARI_FAVICONS, _safari)),
    FnModule("firefox_favicon", "Firefox for iOS favicons: icon and page URLs (browser.db)",
             single(FIREFOX, _firefox)),
    FnModule("cache_files", "apps' web caches: cached URLs (Cache.db)", every(CACHE_DB, _cache)),
)
