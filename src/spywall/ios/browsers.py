"""Browsing artifacts: Safari History.db (with fast cross-domain redirects),
BrowserState.db, Chrome's History database, WebKit ResourceLoadStatistics
observations.db and the browsing-session resource log. URLs and domains are matched;
nothing is ever resolved over the network."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress, repeat
from typing import Any

from spywall.device.base import (
    Batch,
    FnModule,
    Record,
    iso_apple,
    iso_apple_times,
    iso_chrome,
    iso_datetime,
    iso_unix,
)
from spywall.device.sqlite import columns, require
from spywall.ios.backup import Entry
from spywall.ios.common import (
    MAX_ROWS,
    Ctx,
    Result,
    check_links,
    database,
    every,
    host_of,
    links_in_bytes,
    ok,
    plist,
    single,
)
from spywall.report import Severity

SAFARI = "AppDomain-com.apple.mobilesafari"
HISTORY = [(SAFARI, "Library/Safari/History.db"), ("HomeDomain", "Library/Safari/History.db")]
STATE = [(SAFARI, "Library/Safari/BrowserState.db"),
         ("HomeDomain", "Library/Safari/BrowserState.db")]
# Chrome for iOS keeps Chromium's History database in its app container.
CHROME = [("AppDomain-com.google.chrome.ios",
           "Library/Application Support/Google/Chrome/Default/History")]
# Firefox for iOS keeps its history in its app group (``visits.date``: unix microseconds);
# MVT also looks for it at private/var/mobile/profile.profile/ in a dump.
FIREFOX = [("AppDomainGroup-group.org.mozilla.ios.Firefox", "profile.profile/browser.db"),
           ("HomeDomain", "profile.profile/browser.db")]
# Chromium times: microseconds since 1601-01-01 (the Windows FILETIME epoch).
OBSERVATIONS = "WebsiteData/ResourceLoadStatistics/observations.db"
SESSION_LOG = "WebsiteData/ResourceLoadStatistics/full_browsing_session_resourceLog.plist"
REDIRECT_SECONDS = 1.0
_SESSION_KEYS = ("PrevalentResourceOrigin", "topFrameUniqueRedirectsTo",
                 "topFrameUniqueRedirectsFrom", "subframeUnderTopFrameOrigins",
                 "subresourceUnderTopFrameOrigins", "subresourceUniqueRedirectsTo",
                 "subresourceUniqueRedirectsFrom", "topFrameLinkDecorationsFrom")


def site(host: str) -> str:
    """The last two labels of a host name: a cheap, offline stand-in for a registrable domain."""
    return ".".join(host.split(".")[-2:])


def _history(ctx: Ctx, entry: Entry, path: str) -> Result:
    with database(ctx, entry) as conn:
        require(conn, "history_items", ("id", "url"))
        have = require(conn, "history_visits", ("id", "history_item", "visit_time"))
        redirect = "v.redirect_destination" if "redirect_destination" in have else "NULL"
        rows = conn.execute(
            f"SELECT v.id, v.visit_time, i.url, {redirect} FROM history_visits v "  # noqa: S608
            "JOIN history_items i ON i.id = v.history_item LIMIT ?", (MAX_ROWS,)).fetchall()
    if rows:
        _visits(ctx, rows, path)
    return ok(len(rows))


def _visits(ctx: Ctx, rows: list[Any], path: str) -> None:
    """Every visit with a URL is recorded (with a timeline, as one batch of columns); a
    record is made for each visit whose URL matches or that redirected (``_visit``)."""
    vids, times, urls, dests = zip(*rows, strict=True)
    named = list(map(isinstance, urls, repeat(str)))  # (a URL that is not text: no record)
    texts: list[str] = (list(urls) if all(named)
                        else [u if u.__class__ is str else "" for u in urls])
    hits = ctx.lookup.urls(texts)
    if ctx.timeline:
        if all(named):
            vid_col, time_col, url_col = list(vids), list(times), texts
        else:
            vid_col, time_col, url_col = (list(compress(vids, named)),
                                          list(compress(times, named)),
                                          list(compress(texts, named)))
        ctx.batch(Batch("safari_history", iso_apple_times(time_col),
                        ["safari_visit"] * len(vid_col),
                        {"visit_id": vid_col, "url": [u[:2048] for u in url_col]}))
    redirects = dests.count(None) != len(dests)
    visits = ({vid: (t, url) for vid, t, url in zip(vids, times, urls, strict=True)}
              if redirects else {})
    recs: list[Record] = []
    try:
        hit_rows = compress(range(len(rows)), hits)  # (and those that redirected)
        for i in sorted({*hit_rows, *(i for i, d in enumerate(dests) if d is not None)}
                        ) if redirects else hit_rows:
            rec = _visit(ctx, rows[i], hits[i], visits, path)
            if rec is not None and not ctx.timeline:  # (with one, the batch holds it)
                recs.append(rec)
    finally:  # what was read stays even if a later row breaks the module
        ctx.extend("safari_history", recs)


def _visit(ctx: Ctx, row: Any, hit: Sequence[object], visits: dict[Any, tuple[Any, Any]],
           path: str) -> Record | None:
    """The record of a visit whose URL matches (its finding) or that redirected to
    another site within ``REDIRECT_SECONDS`` (a heuristic finding); None for a visit
    without a URL, or whose redirect leads nowhere recorded."""
    vid, t, url, dest = row
    if url.__class__ is not str:
        return None
    target = visits.get(dest) if dest is not None else None
    if not (target or hit):
        return None
    rec = Record("safari_history", iso_apple(t), "safari_visit",
                 {"visit_id": vid, "url": url[:2048]})
    if hit:
        check_links(ctx, [url], rec, path, "Safari history URL")
    if target is None or not isinstance(target[1], str):
        return rec
    src_host, dst_host = host_of(url), host_of(target[1])
    quick = (isinstance(t, int | float) and isinstance(target[0], int | float)
             and 0 <= target[0] - t < REDIRECT_SECONDS)
    if src_host and dst_host and site(src_host) != site(dst_host) and quick:
        ctx.heuristic(
            "ios-fast-cross-domain-redirect", "Fast cross-domain redirect in Safari",
            f"{src_host} redirected to {dst_host} within {REDIRECT_SECONDS:g}s: "
            "exploit links often bounce through a redirector; check both domains",
            rec=rec, path=path, severity=Severity.MEDIUM,
            detail={"from": url[:2048], "to": target[1][:2048]})
    return rec


chrome_time = iso_chrome   # (the device modules' one conversion)


def _chrome(ctx: Ctx, entry: Entry, path: str) -> Result:
    """Chromium's ``visits`` joined to ``urls``: each visit's URL (and the visit it came
    from, ``from_visit``, as Chromium records a redirect chain)."""
    with database(ctx, entry) as conn:
        require(conn, "urls", ("id", "url"))
        have = require(conn, "visits", ("id", "url", "visit_time"))
        source = "v.from_visit" if "from_visit" in have else "NULL"
        rows = conn.execute(
            f"SELECT v.id, v.visit_time, u.url, {source} FROM visits v "  # noqa: S608
            "JOIN urls u ON u.id = v.url ORDER BY v.visit_time LIMIT ?",
            (MAX_ROWS,)).fetchall()
    hits = ctx.lookup.urls([r[2] if r[2].__class__ is str else "" for r in rows])
    for (vid, t, url, came_from), hit in zip(rows, hits, strict=True):
        if url.__class__ is not str or not (ctx.timeline or hit):
            continue
        rec = ctx.record("chrome_history", chrome_time(t), "visit",
                         {"visit_id": vid, "url": url[:2048], "redirect_source": came_from})
        if hit:
            check_links(ctx, [url], rec, path, "Chrome history URL")
    return ok(len(rows))


def _firefox(ctx: Ctx, entry: Entry, path: str) -> Result:
    """Firefox's ``visits`` joined to ``history`` by ``siteID``: each visit's URL."""
    with database(ctx, entry) as conn:
        require(conn, "history", ("id", "url"))
        require(conn, "visits", ("id", "siteID", "date"))
        rows = conn.execute(
            "SELECT v.id, v.date, h.url FROM visits v JOIN history h ON h.id = v.siteID "
            "ORDER BY v.date LIMIT ?", (MAX_ROWS,)).fetchall()
    hits = ctx.lookup.urls([r[2] if r[2].__class__ is str else "" for r in rows])
    for (vid, date, url), hit in zip(rows, hits, strict=True):
        if url.__class__ is not str or not (ctx.timeline or hit):
            continue
        when = iso_unix(date / 1e6) if isinstance(date, int | float) and not isinstance(
            date, bool) else None
        rec = ctx.record("firefox_history", when, "firefox_history",
                         {"id": vid, "url": url[:2048]})
        if hit:
            check_links(ctx, [url], rec, path, "Firefox history URL")
    return ok(len(rows))


def _browser_state(ctx: Ctx, entry: Entry, path: str) -> Result:
    n = 0
    with database(ctx, entry) as conn:
        have = require(conn, "tabs", ("uuid", "url"))
        when = "t.last_viewed_time" if "last_viewed_time" in have else "NULL"
        session = {"tab_uuid", "session_data"} <= columns(conn, "tab_sessions")
        blob = "s.session_data" if session else "NULL"
        join = "LEFT JOIN tab_sessions s ON s.tab_uuid = t.uuid" if session else ""
        rows = conn.execute(f"SELECT t.uuid, t.url, {when}, {blob} FROM tabs t {join} "  # noqa: S608
                            "LIMIT ?", (MAX_ROWS,)).fetchall()
    for uuid, url, t, data in rows:
        n += 1
        found = [url] if isinstance(url, str) and url else []
        found += links_in_bytes(data if isinstance(data, bytes) else None)
        if not found:
            continue
        rec = ctx.record("safari_browser_state", iso_apple(t), "safari_tab",
                         {"uuid": str(uuid), "url": str(url or "")[:2048]})
        check_links(ctx, list(dict.fromkeys(found)), rec, path, "Safari tab / session URL")
    return ok(n)


def _observations(ctx: Ctx, entry: Entry, path: str) -> int:
    with database(ctx, entry) as conn:
        have = require(conn, "ObservedDomains", ("registrableDomain",))
        seen = "lastSeen" if "lastSeen" in have else "NULL"
        rows = conn.execute(f"SELECT registrableDomain, {seen} FROM ObservedDomains "  # noqa: S608
                            "LIMIT ?", (MAX_ROWS,)).fetchall()
    for domain, last in rows:
        if not isinstance(domain, str):
            continue
        rec = ctx.record("webkit_resource_load_statistics", iso_unix(last),
                         "webkit_observed_domain",
                         {"domain": domain, "domain_container": entry.domain})
        ctx.check("domain", domain, rec=rec, path=path, what="WebKit observed domain")
    return len(rows)


def _session_sites(value: object) -> list[str]:
    """The sites a session-log field names: a text, or a list of texts and of
    dictionaries with an ``origin`` or ``domain`` (the form MVT reads)."""
    out: list[str] = []
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            out += [s for k in ("origin", "domain") if isinstance(s := v.get(k), str)]
    return out


def _session_log(ctx: Ctx, entry: Entry, path: str) -> int:
    """Every site an entry names is matched as a host; an entry with a match is also a
    redirect between suspicious domains (high), its path named as MVT's
    webkit_session_resource_log module names it beside each match."""
    n = 0
    root = plist(ctx, entry)
    stats = root.get("browsingStatistics") if isinstance(root, dict) else None
    for item in stats if isinstance(stats, list) else []:
        if not isinstance(item, dict):
            continue
        n += 1
        origin = item.get("PrevalentResourceOrigin")
        rec = ctx.record("webkit_session_resource_log",
                         iso_datetime(item.get("mostRecentUserInteraction"))
                         or iso_datetime(item.get("lastSeen")),
                         "webkit_session_resource", {"origin": str(origin or "")})
        hits = 0
        for key in _SESSION_KEYS:
            for v in _session_sites(item.get(key)):
                hits += ctx.check("host", v, rec=rec, path=path,
                                  what=f"WebKit session resource log ({key})")
        if hits:
            _suspicious_redirect(ctx, rec, path, str(origin or ""),
                                 _session_sites(item.get("topFrameUniqueRedirectsFrom")),
                                 _session_sites(item.get("topFrameUniqueRedirectsTo")))
    return n


def _suspicious_redirect(ctx: Ctx, rec: Record, path: str, origin: str, sources: list[str],
                         destinations: list[str]) -> None:
    chain = [f"SOURCE: {', '.join(map(_quoted, sources))}"] if sources else []
    chain.append(f"ORIGIN: {_quoted(origin)}")
    if destinations:
        chain.append(f"DESTINATION: {', '.join(map(_quoted, destinations))}")
    ctx.heuristic(
        "ios-webkit-suspicious-redirect", "Redirect between suspicious domains",
        f"WebKit's session log has a site that matches a spyware indicator and the "
        f"redirects around it: {' -> '.join(chain)}; check every domain of the path "
        "(high, as MVT)", rec=rec, path=path, severity=Severity.HIGH,
        detail={"origin": origin, "redirect_sources": " ".join(sources),
                "redirect_destinations": " ".join(destinations)})


def _quoted(site: str) -> str:
    return f'"{site}"'


MODULES = (
    FnModule("safari_history", "Safari history URLs and fast cross-domain redirects",
             single(HISTORY, _history)),
    FnModule("safari_browser_state", "Safari open tabs and tab sessions",
             single(STATE, _browser_state)),
    FnModule("chrome_history", "Chrome for iOS history URLs (History)", single(CHROME, _chrome)),
    FnModule("firefox_history", "Firefox for iOS history URLs (browser.db)",
             single(FIREFOX, _firefox)),
    FnModule("webkit_resource_load_statistics", "WebKit ResourceLoadStatistics observed domains",
             every(OBSERVATIONS, _observations)),
    FnModule("webkit_session_resource_log", "WebKit browsing-session resource log",
             every(SESSION_LOG, _session_log)),
)
