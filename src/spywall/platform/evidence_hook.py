"""The platform's one door into the evidence log (``spywall.evidence``): every registry
change, denial, violation, malicious delivery, attribution, enforcement step and
notification status change is appended here, in the transaction that records it, so the
log and the database cannot disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from spywall.platform.contract import us_to_rfc3339


def entry(kind: str, ts_us: int, **fields: Any) -> dict[str, Any]:
    """A log entry: its kind, its time (RFC 3339) and what caused it."""
    return {"kind": kind, "ts": us_to_rfc3339(ts_us), **fields}


def record(conn: sa.Connection, entries: Sequence[Mapping[str, Any]]) -> None:
    if not entries:
        return
    from spywall.evidence import log

    log.append(conn, [_with_ts(e) for e in entries])


def _with_ts(e: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(e)
    if "ts_us" in out:
        out["ts"] = us_to_rfc3339(out.pop("ts_us"))
    return out
