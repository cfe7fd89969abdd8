"""TAXII 2.1 on ``spywall serve``: discovery, one API root, its collections, objects
(``added_after``, ``limit``, ``next``, ``match[id]``, ``match[type]``,
``match[version]``), single objects and their versions, manifests, and status.

Routes (media type ``application/taxii+json;version=2.1``):
- ``GET /taxii2/``: discovery; ``GET /taxii/``: the API root;
- ``GET /taxii/collections/`` and ``/taxii/collections/{id}/``;
- ``GET|POST /taxii/collections/{id}/objects/``; ``GET .../objects/{object-id}/`` and
  ``.../objects/{object-id}/versions/``; ``GET .../manifest/``;
- ``GET /taxii/status/{status-id}/``.

Authentication is the platform's API keys, as ``Authorization: Bearer KEY`` or, for TAXII
clients that only speak HTTP Basic, as the password of Basic (the user name is not
used). Rights are per key and collection (``taxii_store.rights``): 401 without a valid
key, 403 without the right, 404 for an unknown collection.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from spywall.platform import auth
from spywall.platform import taxii_store as store

router = APIRouter(tags=["taxii"])
API_ROOT = "/taxii/"
MAX_POST_OBJECTS = 10_000


class TaxiiError(Exception):
    def __init__(self, status: int, title: str) -> None:
        super().__init__(title)
        self.status, self.title = status, title


def _engine(request: Request) -> sa.Engine:
    engine: sa.Engine = request.app.state.platform.engine
    return engine


def principal(request: Request) -> auth.Principal:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    key = value.strip()
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(key, validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    elif scheme.lower() != "bearer":
        key = ""
    with _engine(request).connect() as conn:
        who = auth.verify(conn, key) if key else None
    if who is None:
        raise TaxiiError(401, "a valid API key is needed (Bearer, or Basic password)")
    return who


Who = Annotated[auth.Principal, Depends(principal)]


def _reply(body: dict[str, Any], status: int = 200,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=store.TAXII_MEDIA,
                        headers=headers)


def _collection(request: Request, who: auth.Principal, ident: str,
                write: bool = False) -> str:
    name = store.BY_ID.get(ident)
    if name is None:
        raise TaxiiError(404, f"no collection {ident}")
    with _engine(request).connect() as conn:
        can_read, can_write = store.rights(conn, who, name)
    if not (can_write if write else can_read):
        raise TaxiiError(403, f"this key may not {'write' if write else 'read'} {ident}")
    return name


def _describe(request: Request, who: auth.Principal, name: str) -> dict[str, Any]:
    with _engine(request).connect() as conn:
        can_read, can_write = store.rights(conn, who, name)
    c = store.COLLECTIONS[name]
    return {"id": c["id"], "title": c["title"], "description": c["description"],
            "can_read": can_read, "can_write": can_write, "media_types": [store.STIX_MEDIA]}


@router.get("/taxii2/")
def discovery(request: Request, who: Who) -> JSONResponse:
    return _reply({"title": "spywall", "description": "indicators of barred parties",
                   "default": str(request.base_url).rstrip("/") + API_ROOT,
                   "api_roots": [str(request.base_url).rstrip("/") + API_ROOT]})


@router.get(API_ROOT)
def api_root(who: Who) -> JSONResponse:
    return _reply({"title": "spywall platform", "versions": [store.TAXII_MEDIA],
                   "max_content_length": 16 << 20})


@router.get(API_ROOT + "collections/")
def collections(request: Request, who: Who) -> JSONResponse:
    return _reply({"collections": [_describe(request, who, n) for n in store.COLLECTIONS]})


@router.get(API_ROOT + "collections/{ident}/")
def collection(request: Request, who: Who, ident: str) -> JSONResponse:
    return _reply(_describe(request, who, _collection(request, who, ident)))


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    out: dict[str, Any] = {}
    try:
        if "added_after" in q:
            out["added_after"] = store.parse_timestamp(q["added_after"])
        if "next" in q:
            out["after_seq"] = int(q["next"])
        out["limit"] = max(1, min(int(q.get("limit", store.MAX_PAGE)), store.MAX_PAGE))
    except ValueError as exc:
        raise TaxiiError(400, f"bad filter: {exc}") from None
    if "match[id]" in q:
        out["ids"] = q["match[id]"].split(",")
    if "match[type]" in q:
        out["types"] = q["match[type]"].split(",")
    if q.get("match[version]") == "all":
        out["all_versions"] = True
    elif q.get("match[version]") not in (None, "last"):
        raise TaxiiError(400, "match[version] supports last and all")
    return out


def _page(rows: list[sa.Row[Any]], more: bool) -> tuple[dict[str, Any], dict[str, str]]:
    body: dict[str, Any] = {"more": more}
    if more:
        body["next"] = str(rows[-1].seq)
    headers = {}
    if rows:
        headers = {"X-TAXII-Date-Added-First": store.rfc3339_us(rows[0].date_added_us),
                   "X-TAXII-Date-Added-Last": store.rfc3339_us(rows[-1].date_added_us)}
    return body, headers


@router.get(API_ROOT + "collections/{ident}/objects/")
def get_objects(request: Request, who: Who, ident: str) -> JSONResponse:
    name = _collection(request, who, ident)
    with _engine(request).connect() as conn:
        rows, more = store.query(conn, name, **_filters(request))
    body, headers = _page(rows, more)
    body["objects"] = [json.loads(r.body) for r in rows]
    return _reply(body, headers=headers)


@router.post(API_ROOT + "collections/{ident}/objects/")
async def post_objects(request: Request, who: Who, ident: str) -> JSONResponse:
    name = _collection(request, who, ident, write=True)
    try:
        envelope = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise TaxiiError(400, "the body is not JSON") from None
    objects = envelope.get("objects") if isinstance(envelope, dict) else None
    if not isinstance(objects, list) or len(objects) > MAX_POST_OBJECTS:
        raise TaxiiError(422, f"an envelope with at most {MAX_POST_OBJECTS} objects")
    with _engine(request).begin() as conn:
        status = store.add_objects(conn, name, [o for o in objects if isinstance(o, dict)])
        auth.audit(conn, who.name, "taxii-add", {"collection": name,
                                                 "objects": status["success_count"]})
    return _reply(status, status=202)


@router.get(API_ROOT + "collections/{ident}/objects/{object_id}/")
def get_object(request: Request, who: Who, ident: str, object_id: str) -> JSONResponse:
    name = _collection(request, who, ident)
    filters = _filters(request)
    with _engine(request).connect() as conn:
        rows, more = store.query(conn, name, object_id=object_id, **filters)
    if not rows and "added_after" not in filters:
        raise TaxiiError(404, f"no object {object_id}")
    body, headers = _page(rows, more)
    body["objects"] = [json.loads(r.body) for r in rows]
    return _reply(body, headers=headers)


@router.get(API_ROOT + "collections/{ident}/objects/{object_id}/versions/")
def get_versions(request: Request, who: Who, ident: str, object_id: str) -> JSONResponse:
    name = _collection(request, who, ident)
    filters = {**_filters(request), "all_versions": True}
    with _engine(request).connect() as conn:
        rows, more = store.query(conn, name, object_id=object_id, **filters)
    if not rows:
        raise TaxiiError(404, f"no object {object_id}")
    body, headers = _page(rows, more)
    body["versions"] = [r.version for r in rows]
    return _reply(body, headers=headers)


@router.get(API_ROOT + "collections/{ident}/manifest/")
def get_manifest(request: Request, who: Who, ident: str) -> JSONResponse:
    name = _collection(request, who, ident)
    with _engine(request).connect() as conn:
        rows, more = store.query(conn, name, **_filters(request))
    body, headers = _page(rows, more)
    body["objects"] = [{"id": r.id, "date_added": store.rfc3339_us(r.date_added_us),
                        "version": r.version, "media_type": store.STIX_MEDIA} for r in rows]
    return _reply(body, headers=headers)


@router.get(API_ROOT + "status/{status_id}/")
def get_status(request: Request, who: Who, status_id: str) -> JSONResponse:
    with _engine(request).connect() as conn:
        found = store.status(conn, status_id)
    if found is None:
        raise TaxiiError(404, f"no status {status_id}")
    return _reply(found)


async def on_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TaxiiError)
    headers = {"WWW-Authenticate": 'Basic realm="spywall", Bearer'} if exc.status == 401 \
        else None
    return _reply({"title": exc.title, "http_status": str(exc.status)}, exc.status, headers)


def mount(app: Any) -> None:
    """Add the TAXII routes and their error answers to the platform's app."""
    app.include_router(router)
    app.add_exception_handler(TaxiiError, on_error)
