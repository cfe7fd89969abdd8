"""The review queue: proposed bans with the identifiers that link each account to its
campaign; approve (and apply), reject or revert, each with a required reason. The step
goes through ``enforce`` (ban_steps, audit log and evidence log in one transaction) and
the gate reloads, so the account's next event is judged by the new state."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from spywall.errors import InputError
from spywall.platform import db, enforce, views
from spywall.platform.web.core import (
    MAX_REASON,
    SessionDep,
    audit,
    done_note,
    form,
    platform_of,
    render,
    see_other,
    text,
    who,
)

router = APIRouter()
ORDER = {"proposed": 0, "approved": 1, "applied": 2, "rejected": 3, "reverted": 4}
ACTIONS = {"approve": ("proposed",), "reject": ("proposed",), "revert": ("applied",),
           "apply": ("approved",)}


@router.get("/ui/review")
def review_page(request: Request, session: SessionDep) -> Response:
    with platform_of(request).engine.connect() as conn:
        bans = views.bans(conn)["bans"]
    bans.sort(key=lambda b: (ORDER.get(b["status"], 9), b["id"]))
    for b in bans:
        b["possible"] = [a for a, froms in ACTIONS.items() if b["status"] in froms]
    message = done_note(request)
    audit(request, session, "ui-view-review", {})
    return render(request, "review.html", session, bans=bans, message=message)


@router.post("/ui/review/{ban_id}")
async def review_step(request: Request, session: SessionDep, ban_id: int) -> Response:
    data = await form(request, session)
    action = text(data, "action", 16)
    reason = text(data, "reason", MAX_REASON)
    if action not in ACTIONS or not 0 < ban_id < 2**31:
        raise HTTPException(422, "unknown step")
    platform = platform_of(request)
    with platform.engine.begin() as conn:
        if conn.execute(sa.select(db.bans.c.id).where(db.bans.c.id == ban_id)).first() is None:
            raise HTTPException(404, f"no ban {ban_id}")
        try:
            if action == "approve":
                status = enforce.approve(conn, ban_id, who(session), reason)
            else:
                status = enforce.step(conn, ban_id, action, who(session), reason)
        except InputError as exc:
            raise HTTPException(409, str(exc)) from None
    platform.reload()
    return see_other(f"/ui/review?done=ban+{ban_id}+{status}#ban-{ban_id}")
