"""Favicon databases: the pages a browser fetched an icon for, and the icon URLs. They
outlive cleared histories, so a link to an exploit server can remain here after the
history is gone (MVT's chrome_favicon and safari_favicon).

- Chrome for iOS ``Favicons`` (Chromium schema): ``icon_mapping.page_url`` joined to
  ``favicons.url`` and ``favicon_bitmaps.last_updated`` (microseconds since 1601).
- Safari / WebKit ``Favicons.db`` (``.../Favicons/Favicons.db``, any container):
  ``page_url`` joined to ``icon_info`` by ``uuid`` (``timestamp``: Apple epoch), and the
  ``rejected_resources`` pages.
"""

from __future__ import annotations

from spywall.device.base import FnModule, iso_apple
from spywall.device.sqlite import columns, require, tables
from spywall.ios.backup import Entry
from spywall.ios.browsers import chrome_time
from spywall.ios.common import MAX_ROWS, Ctx, Result, check_links, database, every, ok, single

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
        if "rejected_resources" in tables(conn) and {"page_url", "timestamp"} <= columns(
                conn, "rejected_resources"):
            rejected = conn.execute("SELECT page_url, timestamp FROM rejected_resources "
                                    "LIMIT ?", (MAX_ROWS,)).fetchall()
    for page, icon, stamp in rows:
        _check(ctx, "safari_favicon", iso_apple(stamp), page, icon, path,
               "Safari favicon URL")
    for page, stamp in rejected:
        _check(ctx, "safari_favicon", iso_apple(stamp), page, None, path,
               "Safari favicon page (rejected resource)")
    return len(rows) + len(rejected)


MODULES = (
    FnModule("chrome_favicon", "Chrome for iOS favicons: page and icon URLs",
             single(CHROME_FAVICONS, _chrome)),
    FnModule("safari_favicon", "Safari / WebKit favicons: page and icon URLs (Favicons.db)",
             every(SAFARI_FAVICONS, _safari)),
)
