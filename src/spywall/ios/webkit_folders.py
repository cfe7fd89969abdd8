"""WebKit website-data folders of a filesystem dump (MVT's ``webkit_indexeddb``,
``webkit_localstorage`` and ``webkit_safariviewservice``).

WebKit names the storage it keeps for a site after the site's origin:
``https_www.example.com_0`` (scheme, host, port), as a file or a folder. An exploit page
that stored anything leaves its domain here even once the history is cleared. Each
module lists the names that begin with ``http`` directly inside one kind of folder:

- ``webkit_indexeddb``: ``.../Library/WebKit/WebsiteData/IndexedDB``
- ``webkit_localstorage``: ``.../Library/WebKit/WebsiteData/LocalStorage``
- ``webkit_safariviewservice``: ``.../SystemData/com.apple.SafariViewService/Library/
  WebKit/WebsiteData`` (the in-app browser apps open links with)

in an app's data container (where MVT looks) or the mobile user's own Library. A record
is MVT's: ``folder`` (the folder, relative to the dump), ``url`` (``scheme://host`` cut
from the name as MVT cuts it) and the folder's modification time; the URL is matched
(by its host). Contents are not read. Newer WebKit versions name these by a hash
instead: nothing to read there, for MVT either.
"""

from __future__ import annotations

import re

from spywall.device.base import FnModule, iso_unix
from spywall.ios.common import SKIPPED, Ctx, Evidence, Result, ok
from spywall.ios.fsdump import FsDump, text
from spywall.report import Scalar

_APP = r"private/var/mobile/(?:Containers/Data/Application/[^/]{1,255}/)?"
_SVS = (r"private/var/mobile/Containers/Data/Application/[^/]{1,255}/SystemData/"
        r"com\.apple\.SafariViewService/")
# module -> (the folder, its timeline event (MVT's), what a finding calls it, the
# folder's name in messages)
KINDS: dict[str, tuple[re.Pattern[str], str, str, str]] = {
    "webkit_indexeddb": (re.compile(_APP + "Library/WebKit/WebsiteData/IndexedDB"),
                         "webkit_indexeddb", "WebKit IndexedDB folder of a site", "IndexedDB"),
    "webkit_localstorage": (re.compile(_APP + "Library/WebKit/WebsiteData/LocalStorage"),
                            "webkit_local_storage", "WebKit local storage of a site",
                            "LocalStorage"),
    "webkit_safariviewservice": (re.compile(_SVS + "Library/WebKit/WebsiteData"),
                                 "webkit_safari_view_service",
                                 "SafariViewService website data of a site",
                                 "SafariViewService WebsiteData"),
}
_MARK = "WebKit/WebsiteData"


def origin_url(name: str) -> str:
    """``https_www.example.com_0.localstorage`` -> ``https://www.example.com``: the scheme
    before the first ``_``, the host up to the next (MVT's reading of the name)."""
    scheme, sep, rest = name.partition("_")
    if sep and scheme in ("http", "https"):
        return f"{scheme}://{rest.split('_', 1)[0]}"
    return name.split("_", 1)[0]


def folder_kind(parent: str) -> str | None:
    """The module that reads the names inside dump folder ``parent`` (None: no module)."""
    if _MARK not in parent:
        return None
    return next((m for m, (pat, *_) in KINDS.items() if pat.fullmatch(parent)), None)


def _module(name: str) -> FnModule[Evidence]:
    def run(ctx: Ctx) -> Result:
        dump = ctx.evidence
        if not isinstance(dump, FsDump):
            return SKIPPED
        _, event, what, label = KINDS[name]
        times: dict[str, str | None] = {}
        n = 0
        for e in dump.entries:
            if _MARK not in e.disk:  # (most paths: one substring search each)
                continue
            parent, _, leaf = e.disk.rpartition("/")
            if not leaf.startswith("http") or folder_kind(parent) != name:
                continue
            if parent not in times:
                try:
                    times[parent] = iso_unix((dump.root / parent).lstat().st_mtime)
                except OSError:
                    times[parent] = None
            n += 1
            url = origin_url(text(leaf))
            if not (ctx.timeline or ctx.lookup.url(url)):
                continue
            data: dict[str, Scalar] = {"folder": text(parent), "url": url}
            rec = ctx.record(name, times[parent], event, data)
            ctx.check("url", url, rec=rec, path=dump.display(e), what=what,
                      detail={"name": text(leaf)})
        if not n:
            return ("skipped", 0, f"no data: no site names in a {label} folder")
        return ok(n)

    return FnModule(name, DESCRIPTIONS[name], run)


DESCRIPTIONS = {
    "webkit_indexeddb": "WebKit IndexedDB folders of a dump: the sites that stored data",
    "webkit_localstorage": "WebKit local storage of a dump: the sites that stored data",
    "webkit_safariviewservice": "SafariViewService website data of a dump: the sites "
                                "opened in apps",
}
MODULES = tuple(_module(name) for name in KINDS)
