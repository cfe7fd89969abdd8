"""Enforcement with review. Analysis proposes bans of accounts it links to a campaign;
an analyst approves or rejects each, an approved ban is applied, and an applied ban can
be reverted. Every step is kept (``ban_steps``), audited and appended to the evidence
log, and needs a reason.

    proposed --approve--> approved --apply--> applied --revert--> reverted
    proposed --reject--> rejected

``approve`` applies at once unless asked not to (a platform that separates the two
duties can keep them apart).
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from spywall.errors import InputError
from spywall.platform import db
from spywall.platform.evidence_hook import entry, record

TRANSITIONS = {
    "approve": ("proposed", "approved"),
    "reject": ("proposed", "rejected"),
    "apply": ("approved", "applied"),
    "revert": ("applied", "reverted"),
}


def step(conn: sa.Connection, ban: int, action: str, actor: str, reason: str) -> str:
    """Move ban ``ban`` by ``action``; returns its new status (``InputError`` when the
    ban does not exist, the reason is empty, or the step does not apply)."""
    if action not in TRANSITIONS:
        raise InputError(f"unknown step {action!r} (one of {', '.join(TRANSITIONS)})")
    if not reason.strip():
        raise InputError("a reason is required")
    b = db.bans
    row = conn.execute(sa.select(b).where(b.c.id == ban)).first()
    if row is None:
        raise InputError(f"no ban {ban}")
    before, after = TRANSITIONS[action]
    if row.status != before:
        raise InputError(f"ban {ban} is {row.status}; {action} needs it {before}")
    now = time.time_ns() // 1000
    conn.execute(b.update().where(b.c.id == ban, b.c.status == before).values(
        status=after, updated_us=now))
    conn.execute(db.ban_steps.insert().values(ban=ban, step=action, actor=actor,
                                              reason=reason, ts_us=now))
    conn.execute(db.audit.insert().values(ts_us=now, actor=actor, action=f"ban-{action}",
                                          detail={"ban": ban, "account": row.account,
                                                  "reason": reason}))
    record(conn, [entry("enforcement", now, step=action, ban=ban, account=row.account,
                        party=row.party, campaign=row.campaign, actor=actor,
                        reason=reason, events=list(row.evidence.get("deliveries", [])))])
    return after


def approve(conn: sa.Connection, ban: int, actor: str, reason: str,
            apply_now: bool = True) -> str:
    status = step(conn, ban, "approve", actor, reason)
    if apply_now:
        status = step(conn, ban, "apply", actor, reason)
    return status
