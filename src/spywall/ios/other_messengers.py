"""Attachments that other messaging apps stored in the backup (Signal, Telegram, Viber,
Threema, Wire), scanned by the scan engine for exploit payloads.

These apps keep their media in their app or app-group containers; their databases are
encrypted (Signal, Threema) or undocumented, so the chat is not known: a finding names the
app and the stored path. Files are picked from Manifest.db by domain and folder, so the
module costs nothing when none of these apps is installed.
"""

from __future__ import annotations

from spywall.device.base import FnModule, iso_unix
from spywall.errors import FormatError
from spywall.ios.backup import Entry
from spywall.ios.common import SKIPPED, Ctx, Result, ok, scan_attachment

# (app, a substring of the Manifest domain, folders under which it stores received media)
APPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Signal", "org.whispersystems.signal", ("Attachments/", "AttachmentsV2/")),
    ("Telegram", "ph.telegra.Telegraph", ("postbox/media/", "Documents/")),
    ("Viber", "viber", ("Attachments/", "Media/", "Documents/")),
    ("Threema", "threema", ("Documents/", "Attachments/")),
    ("Wire", "com.wearezeta", ("Assets/", "Documents/")),
)
MAX_FILES = 5_000


def _app_of(e: Entry) -> str | None:
    if not e.is_file:
        return None
    for app, domain_part, folders in APPS:
        if domain_part in e.domain and any(f in e.relative_path for f in folders):
            return app
    return None


def _other_attachments(ctx: Ctx) -> Result:
    picked = [(app, e) for e in ctx.evidence.entries if (app := _app_of(e)) is not None]
    if not picked:
        return SKIPPED
    for app, e in picked[:MAX_FILES]:
        try:
            meta = e.meta()
        except FormatError:
            meta = None
        rec = ctx.record("messaging_attachments", iso_unix(meta.last_modified) if meta else None,
                         "attachment", {"app": app, "domain": e.domain,
                                        "relative_path": e.relative_path})
        scan_attachment(ctx, e, rec, {"app": app, "attachment": e.relative_path})
    more = len(picked) - MAX_FILES
    return ok(min(len(picked), MAX_FILES),
              f"{more} more attachments not scanned (cap {MAX_FILES})" if more > 0 else "")


MODULES = (
    FnModule("messaging_attachments",
             "attachments stored by Signal, Telegram, Viber, Threema, Wire: content scanned",
             _other_attachments),
)
