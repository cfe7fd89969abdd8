"""The registry: parties, affiliates, orders and identifiers with their provenance; add
or retire an identifier with a reason; import a registry JSON or STIX 2.1 bundle. Every
change goes through ``registry_store`` (registry_changes and the evidence log); the page
needs the admin scope, as ``/v1/registry`` does."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from spywall.errors import InputError
from spywall.platform import db
from spywall.platform.contract import us_to_rfc3339
from spywall.platform.registry import KINDS, Identifier
from spywall.platform.registry_store import add_identifiers, retire_identifier
from spywall.platform.web.core import (
    MAX_REASON,
    SessionDep,
    audit,
    done_note,
    form,
    need,
    platform_of,
    render,
    see_other,
    text,
    who,
)

router = APIRouter()
MAX_IMPORT = 16 << 20
MAX_ROWS = 5000


@router.get("/ui/registry")
def registry_page(request: Request, session: SessionDep) -> Response:
    need(session, "admin")
    p, o, i = db.parties, db.orders, db.identifiers
    with platform_of(request).engine.connect() as conn:
        parties = [{"id": r.id, "name": r.name, "aliases": list(r.aliases),
                    "affiliate_of": r.affiliate_of, "orders": [], "identifiers": []}
                   for r in conn.execute(sa.select(p).order_by(p.c.id))]
        by_id = {x["id"]: x for x in parties}
        for r in conn.execute(sa.select(o).order_by(o.c.pk)):
            by_id[r.party]["orders"].append({"court": r.court, "case": r.case,
                                             "date": r.date, "scope": r.scope})
        for r in conn.execute(sa.select(i).order_by(i.c.party, i.c.kind, i.c.value)
                              .limit(MAX_ROWS)):
            by_id[r.party]["identifiers"].append({
                "kind": r.kind, "value": r.value, "source": r.source, "added": r.added,
                "added_by": r.added_by, "derived_from": r.derived_from,
                "retired": us_to_rfc3339(r.retired_us) if r.retired_us else None,
                "retired_reason": r.retired_reason})
        official = list(conn.execute(sa.select(db.official_clients.c.pattern)).scalars())
    audit(request, session, "ui-view-registry", {})
    return render(request, "registry.html", session, parties=parties, kinds=KINDS,
                  official=official, message=done_note(request))


@router.post("/ui/registry/add")
async def add(request: Request, session: SessionDep) -> Response:
    need(session, "admin")
    data = await form(request, session)
    party, kind = text(data, "party", 128), text(data, "kind", 16)
    ident = Identifier(kind=kind, value=text(data, "value"),
                       source=text(data, "source", 1000), added_by=who(session))
    reason = text(data, "reason", MAX_REASON)
    platform = platform_of(request)
    try:
        with platform.engine.begin() as conn:
            added = add_identifiers(conn, party, [ident], who(session), reason)
    except InputError as exc:
        raise HTTPException(422, str(exc)) from None
    platform.reload()
    return see_other(f"/ui/registry?done={'added' if added else 'already+present'}")


@router.post("/ui/registry/retire")
async def retire(request: Request, session: SessionDep) -> Response:
    need(session, "admin")
    data = await form(request, session)
    party, kind, value = text(data, "party", 128), text(data, "kind", 16), text(data, "value")
    reason = text(data, "reason", MAX_REASON)
    platform = platform_of(request)
    try:
        with platform.engine.begin() as conn:
            done = retire_identifier(conn, party, kind, value, who(session), reason)
    except InputError as exc:
        raise HTTPException(422, str(exc)) from None
    platform.reload()
    return see_other(f"/ui/registry?done={'retired' if done else 'not+found'}")


@router.post("/ui/registry/import")
async def import_registry(request: Request, session: SessionDep) -> Response:
    need(session, "admin")
    data = await form(request, session)
    reason = text(data, "reason", MAX_REASON)
    upload = data.get("file")
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, "choose a registry JSON or STIX 2.1 bundle file")
    body = await upload.read(MAX_IMPORT + 1)
    if len(body) > MAX_IMPORT:
        raise HTTPException(413, "the file is larger than 16 MiB")
    from spywall.platform.service import import_file

    platform = platform_of(request)
    try:
        counts = import_file(platform.engine, body, who(session), reason)
    except (InputError, ValueError) as exc:
        raise HTTPException(422, str(exc)[:2000]) from None
    platform.reload()
    audit(request, session, "registry-import", {"reason": reason, **counts})
    summary = "+".join(f"{v}+{k}" for k, v in counts.items())
    return see_other(f"/ui/registry?done=imported+{summary}")
