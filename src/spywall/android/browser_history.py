"""Browser history that androidqf collects (MVT's androidqf ``browser_history``):
``browser_history/manifest.json`` lists the Chromium-family ``History`` databases it
copied, and the module reads each one's visits for the links in them. The same module
reads the History databases of an Android file system dump at their places
(``capture.FS_HISTORY``, MVT's check-fs) and a lone History file.

Manifest (``schema_version`` 1)::

    {"schema_version": 1, "databases": [{"browser": "chrome",
      "package": "com.android.chrome", "profile": "Default",
      "device_path": "/data/data/com.android.chrome/app_chrome/Default/History",
      "archive_path": "browser_history/com.android.chrome/Default/History"}]}

An ``archive_path`` must stay inside ``browser_history/`` (relative, no ``..``, no
backslash); an entry that does not is an error of that entry, and the others are read.
Each database (with its ``-wal`` beside it, when there is one) is copied to a private
temporary folder and opened read-only (``device.sqlite.open_evidence``); the query is
Chromium's ``visits`` joined to ``urls``. Visit times are Chromium's: microseconds since
1601-01-01 (UTC).
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from spywall.android.capture import FS_HISTORY, Capture
from spywall.android.common import Ctx, Result, mvt_form, ok, read_manifest, skipped
from spywall.device.base import (
    MODULE_ERRORS,
    ArtifactMissing,
    FnModule,
    SchemaUnknown,
    iso_chrome,
)
from spywall.device.sqlite import MAX_DB_BYTES, open_evidence, require
from spywall.errors import FormatError
from spywall.report import ErrorEntry

MANIFEST = "browser_history/manifest.json"
MAX_DATABASES = 64
MAX_ROWS = 200_000
_ERRORS: tuple[type[BaseException], ...] = (*MODULE_ERRORS, SchemaUnknown)
FIELDS = ("browser", "package", "profile", "device_path", "archive_path")


chrome_time = iso_chrome   # (the device modules' one conversion)


def entry(raw: Any) -> dict[str, str]:
    """A manifest entry with its five text fields; ``FormatError`` if one is missing or
    its ``archive_path`` leaves ``browser_history/``."""
    if not isinstance(raw, dict):
        raise FormatError("browser history manifest: an entry is not an object")
    for key in FIELDS:
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise FormatError(f"browser history manifest: an entry has no {key}")
    path = raw["archive_path"]
    parts = PurePosixPath(path).parts
    if "\\" in path or path.startswith("/") or ".." in parts or parts[:1] != ("browser_history",):
        raise FormatError(f"browser history manifest: unsafe archive path {path[:200]!r}")
    return {key: raw[key] for key in FIELDS}


def _visits(cap: Capture, name: str) -> list[tuple[Any, ...]]:
    data = cap.read(name, MAX_DB_BYTES)
    if data is None:
        raise ArtifactMissing(f"{name}: named by the manifest, not in the capture")
    wal = cap.read(f"{name}-wal", MAX_DB_BYTES)
    with tempfile.TemporaryDirectory(prefix="spywall-history-") as tmp:
        db = Path(tmp, "History")
        db.write_bytes(data)
        if wal:
            Path(tmp, "History-wal").write_bytes(wal)
        with open_evidence(db) as conn:
            require(conn, "urls", ("id", "url"))
            have = require(conn, "visits", ("id", "url", "visit_time"))
            cols = {c: f"v.{c}" if c in have else "NULL" for c in ("from_visit", "transition")}
            ucols = {c: f"u.{c}" for c in ("title", "visit_count", "typed_count")}
            return conn.execute(
                f"SELECT u.id, u.url, {', '.join(ucols.values())}, v.id, v.visit_time, "  # noqa: S608
                f"{cols['from_visit']}, {cols['transition']} FROM visits v "
                "JOIN urls u ON u.id = v.url ORDER BY v.visit_time LIMIT ?",
                (MAX_ROWS,),
            ).fetchall()


def _databases(cap: Capture) -> list[Any] | None:
    """The databases to read: those androidqf's manifest lists; those of a file system
    dump at the places ``FS_HISTORY`` names (MVT's check-fs); a lone History file."""
    if cap.kind == "fs":
        return [
            {
                "browser": b,
                "package": pkg,
                "profile": prof,
                "device_path": f"/{rel}",
                "archive_path": rel,
            }
            for rel, (b, pkg, prof) in FS_HISTORY.items()
            if cap.has(rel)
        ]
    if cap.kind == "history":
        name = cap.members()[0]
        return [
            {
                "browser": "Chromium",
                "package": "unknown",
                "profile": "unknown",
                "device_path": cap.path,
                "archive_path": name,
            }
        ]
    doc = read_manifest(cap, MANIFEST, "databases")
    return None if doc is None else list(doc["databases"])


def browser_history(ctx: Ctx) -> Result:
    cap = ctx.evidence
    listed = _databases(cap)
    if listed is None:
        return skipped(f"no {MANIFEST}, file system dump or History database")
    n = read = missing = 0
    failed: list[str] = []
    for raw in listed[:MAX_DATABASES]:
        try:
            db = entry(raw) if cap.kind == "androidqf" else raw
            rows = _visits(cap, db["archive_path"])
        except ArtifactMissing:  # named, not collected: no data (as a backup's unstored file)
            missing += 1
            continue
        except _ERRORS as exc:  # that database's failure alone
            failed.append(str(exc)[:300])
            ctx.subject.errors.append(
                ErrorEntry(
                    path=cap.where(MANIFEST if cap.kind == "androidqf" else raw["archive_path"]),
                    code=getattr(exc, "code", "malformed"),
                    message=f"browser history: {str(exc)[:500]}",
                )
            )
            continue
        read += 1
        where = cap.where(db["archive_path"])
        for uid, url, title, visits, typed, vid, t, came_from, transition in rows:
            if not isinstance(url, str):
                continue
            n += 1
            when = chrome_time(t)
            rec = ctx.record(
                "browser_history",
                when,
                "browser_history",
                {
                    "id": uid,
                    "url": url[:4096],
                    "title": str(title or "")[:512],
                    "visit_count": visits,
                    "typed_count": typed,
                    "visit_id": vid,
                    "timestamp_chrome": t,
                    "isodate": mvt_form(when) if when else None,
                    "redirect_source": came_from,
                    "transition": transition,
                    "browser": db["browser"],
                    "package": db["package"],
                    "profile": db["profile"],
                    "source_path": db["device_path"],
                },
            )
            ctx.check("url", url, rec=rec, path=where, what=f"{db['browser']} history URL")
    if failed and not read:
        return ("error", 0, f"no browser history database could be read: {failed[0]}")
    if missing and not read:
        return skipped(f"the {missing} database(s) {MANIFEST} names are not in the capture")
    return ok(n, f"{read} database(s)" + (f", {len(failed)} unreadable" if failed else "")
              + (f", {missing} not in the capture" if missing else ""))


BROWSER_MODULES: tuple[FnModule[Capture], ...] = (
    FnModule(
        "browser_history",
        "androidqf browser_history/: visited URLs of Chrome and other Chromium browsers (History)",
        browser_history,
    ),
)
