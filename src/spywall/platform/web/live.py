"""The Live page: gate decisions and violations as they happen, pushed by the server as
server-sent events (the page opens one ``EventSource``; it never polls). The server
side watches the database (``events.seq``, ``violations.recorded_us``) once a second,
so decisions made by any process, by HTTP, NATS or file ingest, all appear."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from spywall.platform import db
from spywall.platform.contract import us_to_rfc3339
from spywall.platform.web.core import SessionDep, audit, platform_of, render, see_other
from spywall.platform.web.session import COOKIE, read

router = APIRouter()
RECENT = 50            # rows shown when the page opens
COUNTED = 5000         # newest decisions counted per minute and reason
BATCH = 200            # rows sent per poll of the database
TICK = 1.0             # seconds between looks at the database
HEARTBEAT = 15.0       # seconds between keep-alive comments
MAX_STREAM = 3600.0    # a stream ends after an hour; EventSource reconnects by itself


def _minute(ts_us: int) -> str:
    return us_to_rfc3339(ts_us)[:16]


SHOWN = ("party", "kind", "value", "field", "detectors", "why")


def summary(item: Any) -> str:
    """One line for a reason or an identifier record (structured in the database)."""
    if isinstance(item, str):
        return item[:300]
    if not isinstance(item, dict):
        return json.dumps(item)[:300]
    parts = []
    for key in SHOWN:
        value = item.get(key)
        if value is None or value == []:
            continue
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key}={text[:80]}")
    head = str(item.get("rule", "")) or "identifier"
    return f"{head}: {' '.join(parts)}"[:300]


def rule_of(item: Any) -> str:
    return str(item.get("rule", "?")) if isinstance(item, dict) else str(item)[:80]


def _decision(r: Any) -> dict[str, Any]:
    return {"seq": r.seq, "id": r.id, "type": r.type, "verdict": r.verdict,
            "reasons": [summary(x) for x in r.reasons],
            "rules": sorted({rule_of(x) for x in r.reasons}),
            "party": r.party, "account": r.account,
            "received": us_to_rfc3339(r.received_us), "minute": _minute(r.received_us)}


def _violation(r: Any) -> dict[str, Any]:
    return {"event": r.event, "party": r.party, "type": r.type, "verdict": r.verdict,
            "rule": r.rule, "identifiers": [summary(x) for x in r.identifiers],
            "ts": us_to_rfc3339(r.ts_us),
            "recorded": r.recorded_us}


def _snapshot(conn: sa.Connection) -> dict[str, Any]:
    e, v = db.events, db.violations
    recent = [_decision(r) for r in conn.execute(
        sa.select(e).order_by(e.c.seq.desc()).limit(RECENT))]
    since = time.time_ns() // 1000 - 3600 * 10**6
    per_minute: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    # The newest COUNTED decisions by sequence (the primary key), those of the last hour
    # among them: the first page stays fast however large the table grows.
    newest = sa.select(e.c.received_us, e.c.reasons).order_by(e.c.seq.desc()).limit(COUNTED)
    for r in conn.execute(newest):
        if r.received_us < since:
            continue
        per_minute[_minute(r.received_us)] += 1
        reasons.update({rule_of(x) for x in r.reasons})
    violations = [_violation(r) for r in conn.execute(
        sa.select(v).order_by(v.c.recorded_us.desc(), v.c.event).limit(RECENT))]
    last_seq = recent[0]["seq"] if recent else 0
    last_v = max((x["recorded"] for x in violations), default=0)
    return {"recent": recent, "violations": violations, "last_seq": last_seq,
            "last_violation": last_v, "per_minute": sorted(per_minute.items(), reverse=True),
            "reasons": reasons.most_common()}


@router.get("/ui")
def ui_root() -> Response:
    return see_other("/ui/")


@router.get("/ui/")
@router.get("/ui/live")
def live_page(request: Request, session: SessionDep) -> Response:
    with platform_of(request).engine.connect() as conn:
        snap = _snapshot(conn)
    audit(request, session, "ui-view-live", {})
    return render(request, "live.html", session, **snap)


def _since(conn: sa.Connection, seq: int, recorded: int, seen: set[str]
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    e, v = db.events, db.violations
    decisions = [_decision(r) for r in conn.execute(
        sa.select(e).where(e.c.seq > seq).order_by(e.c.seq).limit(BATCH))]
    violations = [_violation(r) for r in conn.execute(
        sa.select(v).where(v.c.recorded_us >= recorded).order_by(v.c.recorded_us, v.c.event)
        .limit(BATCH + len(seen))) if r.event not in seen]
    return decisions, violations


def _frame(kind: str, data: dict[str, Any], seq: int, recorded: int) -> bytes:
    """One SSE message; its id carries both watermarks, so that the browser's automatic
    reconnection (``Last-Event-ID``) resumes where it stopped instead of repeating."""
    body = json.dumps(data, separators=(",", ":"))
    return f"id: {seq}.{recorded}\nevent: {kind}\ndata: {body}\n\n".encode()


def _int(text: str | None) -> int:
    return int(text) if text and text.isdigit() and len(text) < 19 else 0


@router.get("/ui/live/stream")
async def stream(request: Request) -> Response:
    settings, engine = request.app.state.web, platform_of(request).engine
    if await anyio.to_thread.run_sync(read, settings, engine, request.cookies.get(COOKIE)) \
            is None:
        return Response("sign in first", status_code=401, media_type="text/plain")
    seq = _int(request.query_params.get("seq"))
    recorded = _int(request.query_params.get("recorded"))
    resume = request.headers.get("last-event-id", "")
    if resume.count(".") == 1:
        seq, recorded = (_int(x) for x in resume.split("."))

    def poll(seq: int, recorded: int, seen: set[str]
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with engine.connect() as conn:
            return _since(conn, seq, recorded, seen)

    async def frames() -> AsyncIterator[bytes]:
        nonlocal seq, recorded
        seen: set[str] = set()
        started = last_beat = time.monotonic()
        yield b"retry: 3000\n\n"
        while time.monotonic() - started < MAX_STREAM:
            if await request.is_disconnected():
                return
            decisions, violations = await anyio.to_thread.run_sync(poll, seq, recorded, seen)
            for d in decisions:
                seq = d["seq"]
                yield _frame("decision", d, seq, recorded)
            for x in violations:
                if x["recorded"] > recorded:
                    recorded, seen = x["recorded"], set()
                seen.add(x["event"])
                yield _frame("violation", x, seq, recorded)
            if time.monotonic() - last_beat > HEARTBEAT:
                last_beat = time.monotonic()
                yield b": keep-alive\n\n"
            await anyio.sleep(TICK)

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})
