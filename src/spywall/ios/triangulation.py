"""Operation Triangulation (Kaspersky, 2023): the two checks of its public triangle_check.

1. **Rule** ``triangulation-backupagent-network`` (indicator-grade, critical, no CVE): the
   process ``BackupAgent`` shows network use in DataUsage.sqlite or in the OS analytics
   baseline (com.apple.osanalytics.addaily.plist). The legitimate backup daemon is
   ``BackupAgent2``; the old ``BackupAgent`` binary has no reason to use the network, and
   the implant ran under that name.
2. **Heuristic** ``triangulation-event-window``: within ``WINDOW_SECONDS`` of each other, an
   SMS attachment folder is created, ``com.apple.ImageIO.plist`` is modified, and a
   location-services file changes. Each alone is ordinary; the three together in minutes
   were the trace of the iMessage exploit chain.
"""

from __future__ import annotations

import bisect

from spywall.device.base import Record, iso_unix
from spywall.ios.backup import Entry
from spywall.ios.common import Ctx
from spywall.report import FindingKind, Severity

RULE = "triangulation-backupagent-network"
WINDOW_RULE = "triangulation-event-window"
PROCESS = "BackupAgent"
WINDOW_SECONDS = 5 * 60
REFERENCES = (
    "https://securelist.com/operation-triangulation/109842/",
    "https://github.com/KasperskyLab/triangle_check",
)
IMAGEIO = "Library/Preferences/com.apple.ImageIO.plist"
SMS_ATTACHMENTS = "Library/SMS/Attachments/"
LOCATION_PREFIXES = ("Library/Caches/locationd/", "Library/Preferences/com.apple.locationd")


def process_name(raw: str) -> str:
    """DataUsage names look like ``name/bundle.id``; the process is the first part."""
    return raw.split("/", 1)[0].strip()


def check_backupagent(ctx: Ctx, name: str, traffic: float, rec: Record, path: str,
                      source: str) -> None:
    """The rule: ``BackupAgent`` with any network traffic is a critical finding."""
    if process_name(name) != PROCESS or traffic <= 0:
        return
    ctx.heuristic(
        RULE, "Operation Triangulation: BackupAgent used the network",
        f"{source} shows the process BackupAgent with {traffic:g} bytes of network traffic; "
        "the legitimate backup daemon is BackupAgent2. This is the key Operation "
        "Triangulation indicator: treat the device as compromised and seek expert help",
        rec=rec, path=path, severity=Severity.CRITICAL, kind=FindingKind.INDICATOR,
        detail={"process": name, "bytes": traffic, "source": source},
        references=REFERENCES,
    )


def _kind(domain: str, rel: str) -> str | None:
    # (a dump names ~/Library/SMS by HomeDomain, the folder it shares with MediaDomain)
    if domain in ("MediaDomain", "HomeDomain") and rel.startswith(SMS_ATTACHMENTS):
        return "sms_attachment"
    if rel == IMAGEIO:
        return "imageio"
    if rel.startswith(LOCATION_PREFIXES):
        return "location"
    return None


def _time(ctx: Ctx, e: Entry, kind: str) -> int | None:
    """The event time of an entry: from its Manifest.db record in a backup (birth of a
    folder, modification of a file); in a filesystem dump, from the file itself (its
    birth where the system keeps one, else its modification: a folder's changes when a
    file is written into it)."""
    if e.disk:
        try:
            st = (ctx.evidence.root / e.disk).lstat()
        except OSError:
            return None
        birth = getattr(st, "st_birthtime", None)
        t = birth if kind == "sms_attachment" and birth else st.st_mtime
        return int(t)
    meta = e.meta()
    if meta is None:
        return None
    return meta.birth if kind == "sms_attachment" else meta.last_modified


def event_window(ctx: Ctx) -> tuple[str, int, str]:
    """The heuristic over the entries' times (``_time``)."""
    events: list[tuple[int, str, str]] = []
    for e in ctx.evidence.entries:
        kind = _kind(e.domain, e.relative_path)
        if kind is None:
            continue
        t = _time(ctx, e, kind)
        if t is not None and iso_unix(t) is not None:
            events.append((t, kind, f"{e.domain}/{e.relative_path}"))
    events.sort()
    times = [t for t, _, _ in events]
    reported = 0
    last_hit = -WINDOW_SECONDS
    for i, (t0, _, _) in enumerate(events):
        if t0 - last_hit < WINDOW_SECONDS:
            continue
        window = events[i:bisect.bisect_right(times, t0 + WINDOW_SECONDS)]
        kinds = {k for _, k, _ in window}
        if kinds >= {"sms_attachment", "imageio", "location"}:
            last_hit = t0
            rec = ctx.record("triangulation_window", iso_unix(t0), "triangulation_window",
                             {"events": "; ".join(p for _, _, p in window)[:2000]})
            ctx.heuristic(
                WINDOW_RULE, "Operation Triangulation event pattern",
                f"within {WINDOW_SECONDS // 60} minutes: an SMS attachment folder was "
                "created, com.apple.ImageIO.plist was modified and location-services files "
                "changed. Together this is the pattern of the Triangulation iMessage chain; "
                "not proof on its own",
                rec=rec, path=str(ctx.evidence.root), severity=Severity.MEDIUM,
                detail={"events": len(window)}, references=REFERENCES)
            reported += 1
    return ("ok", len(events), f"{reported} window(s)" if reported else "")
