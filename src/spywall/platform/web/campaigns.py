"""Campaigns (with their timeline, targets by country and the map), one delivery with
the scan/pcap findings behind it, and the notifications outbox."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from spywall.platform import db, views
from spywall.platform.analysis import _phones, build_campaigns, campaign_json
from spywall.platform.contract import us_to_rfc3339
from spywall.platform.web import charts
from spywall.platform.web.core import SessionDep, audit, platform_of, render

router = APIRouter()
MAX_FINDINGS_TEXT = 200_000


@router.get("/ui/campaigns")
def campaigns_page(request: Request, session: SessionDep) -> Response:
    with platform_of(request).engine.connect() as conn:
        objects = build_campaigns(conn)      # once: the same objects views.campaigns uses
        phones = _phones(conn, {t for c in objects for t in c.targets})
    shown = []
    for obj in objects:
        c = campaign_json(obj, phones)
        deliveries = obj.deliveries
        shown.append({
            **c, "bars": charts.bars(c.get("countries", {})),
            "dots": charts.dots(c.get("countries", {})),
            "by_iso": json.dumps(charts.iso_numeric(c.get("countries", {}))),
            "timeline": charts.timeline([(d.ref, d.ts_us, d.sender) for d in deliveries]),
            "delivery_rows": [{"ref": d.ref, "kind": d.kind, "sender": d.sender,
                               "targets": d.targets, "ts": us_to_rfc3339(d.ts_us),
                               "detectors": d.detectors} for d in deliveries],
            "links": obj.links})
    audit(request, session, "ui-view-campaigns", {})
    xs, ys = charts.graticule()
    return render(request, "campaigns.html", session, campaigns=shown, meridians=xs,
                  parallels=ys, map_w=charts.MAP_W, map_h=charts.MAP_H)


@router.get("/ui/deliveries/{ref:path}")
def delivery_page(request: Request, session: SessionDep, ref: str) -> Response:
    if not 0 < len(ref) <= 256:
        raise HTTPException(404, "no such delivery")
    d, p = db.deliveries, db.payloads
    with platform_of(request).engine.connect() as conn:
        row = conn.execute(sa.select(d).where(d.c.ref == ref)).first()
        if row is None:
            raise HTTPException(404, "no such delivery")
        hashes = [str(h) for h in row.payloads][:100]
        payloads = [{"sha256": r.sha256, "malicious": r.malicious, "complete": r.complete,
                     "detectors": list(r.detectors), "infrastructure": list(r.infrastructure),
                     "findings": json.dumps(r.findings, indent=2,
                                            ensure_ascii=False)[:MAX_FINDINGS_TEXT]}
                    for r in conn.execute(sa.select(p).where(p.c.sha256.in_(hashes)))]
        events = [views.event(conn, str(e)) for e in list(row.evidence)[:50]]
    delivery = {"ref": row.ref, "kind": row.kind, "event": row.event, "sender": row.sender,
                "targets": list(row.targets), "ts": us_to_rfc3339(row.ts_us), "ip": row.ip,
                "answered": row.answered, "blocked": row.blocked, "malicious": row.malicious,
                "payloads": hashes, "detectors": list(row.detectors),
                "infrastructure": list(row.infrastructure)}
    audit(request, session, "ui-view-delivery", {"ref": ref})
    return render(request, "delivery.html", session, delivery=delivery, payloads=payloads,
                  events=[json.dumps(e, indent=2, ensure_ascii=False) for e in events if e])


@router.get("/ui/notifications")
def notifications_page(request: Request, session: SessionDep) -> Response:
    with platform_of(request).engine.connect() as conn:
        rows: list[dict[str, Any]] = views.notifications(conn)["notifications"]
    groups = Counter((r["campaign"], r["language"], r["status"]) for r in rows)
    audit(request, session, "ui-view-notifications", {})
    return render(request, "notifications.html", session, rows=rows,
                  groups=sorted(groups.items()),
                  by_status=charts.bars(dict(Counter(r["status"] for r in rows))))
