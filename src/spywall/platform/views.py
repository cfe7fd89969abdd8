"""What the faces show: the contract's JSON for campaigns, violations, notifications,
events and bans, read from the database. The CLI and the HTTP API both call these, so
they cannot disagree."""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa

from spywall.platform import db
from spywall.platform.analysis import _phones, build_campaigns, campaign_json
from spywall.platform.contract import us_to_rfc3339


def campaigns(conn: sa.Connection) -> dict[str, Any]:
    found = build_campaigns(conn)
    phones = _phones(conn, {t for c in found for t in c.targets})
    return {"campaigns": [campaign_json(c, phones) for c in found]}


def violations(conn: sa.Connection, party: str | None = None,
               since_us: int | None = None) -> dict[str, Any]:
    v = db.violations
    query = sa.select(v).order_by(v.c.ts_us, v.c.event)
    if party is not None:
        query = query.where(v.c.party == party)
    if since_us is not None:
        query = query.where(v.c.ts_us >= since_us)
    return {"violations": [{"event": r.event, "party": r.party, "type": r.type,
                            "ts": _ts(conn, r.event, r.ts_us), "verdict": r.verdict,
                            "identifiers": list(r.identifiers), "rule": r.rule}
                           for r in conn.execute(query)]}


def _ts(conn: sa.Connection, event: str, ts_us: int) -> str:
    raw = conn.execute(sa.select(db.events.c.raw).where(db.events.c.id == event)).scalar()
    if raw is not None:
        ts = msgspec.json.decode(raw).get("ts")
        if isinstance(ts, str):
            return ts
    return us_to_rfc3339(ts_us)


def notifications(conn: sa.Connection) -> dict[str, Any]:
    n = db.notifications
    return {"notifications": [
        {"target": r.target, "campaign": r.campaign, "language": r.language,
         "status": r.status, "attempts": r.attempts, "last_error": r.last_error}
        for r in conn.execute(sa.select(n).order_by(n.c.campaign, n.c.target))]}


def event(conn: sa.Connection, ident: str) -> dict[str, Any] | None:
    """The stored event as sent, plus its verdict and reasons (None when unknown)."""
    row = conn.execute(sa.select(db.events).where(db.events.c.id == ident)).first()
    if row is None:
        return None
    out: dict[str, Any] = msgspec.json.decode(row.raw)
    out["verdict"] = row.verdict
    out["reasons"] = list(row.reasons)
    out["party"] = row.party
    return out


def bans(conn: sa.Connection, status: str | None = None) -> dict[str, Any]:
    b, s = db.bans, db.ban_steps
    query = sa.select(b).order_by(b.c.id)
    if status is not None:
        query = query.where(b.c.status == status)
    rows = conn.execute(query).all()
    steps: dict[int, list[dict[str, Any]]] = {}
    for r in conn.execute(sa.select(s).order_by(s.c.seq)):
        steps.setdefault(r.ban, []).append({"step": r.step, "actor": r.actor,
                                            "reason": r.reason, "ts": us_to_rfc3339(r.ts_us)})
    return {"bans": [{"id": r.id, "account": r.account, "party": r.party,
                      "campaign": r.campaign, "status": r.status,
                      "evidence": r.evidence, "steps": steps.get(r.id, [])} for r in rows]}
