"""Exchanging indicators with other TAXII 2.1 servers, through the OASIS reference client
(``taxii2-client``): push a local collection to a remote one, pull a remote collection
into the local ``shared`` collection (where an analyst reviews it before anything goes
into the registry: ``review``)."""

from __future__ import annotations

import json
from typing import Any

import requests
import sqlalchemy as sa

from spywall.errors import InputError
from spywall.platform import taxii_store as store
from spywall.platform.registry import Registry
from spywall.platform.registry_stix import from_stix
from spywall.platform.registry_store import import_registry

PAGE = 500


class BearerAuth(requests.auth.AuthBase):
    """A spywall API key for a spywall server."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.key}"
        return request


def remote(url: str, user: str | None, password: str | None, key: str | None) -> Any:
    """The remote collection at ``url`` (``.../collections/ID/``)."""
    from taxii2client.v21 import Collection

    if key:
        return Collection(url, auth=BearerAuth(key))
    return Collection(url, user=user, password=password)


def _all_objects(collection: Any, **filters: Any) -> list[dict[str, Any]]:
    from taxii2client.v21 import as_pages

    out: list[dict[str, Any]] = []
    for page in as_pages(collection.get_objects, per_request=PAGE, **filters):
        out.extend(page.get("objects", []))
    return out


def push(engine: sa.Engine, name: str, target: Any) -> dict[str, int]:
    """Every object of local collection ``name`` to ``target``, a page at a time."""
    from taxii2client.exceptions import TAXIIServiceException

    sent = stored = 0
    after: int | None = None
    while True:
        with engine.connect() as conn:
            rows, more = store.query(conn, name, after_seq=after, limit=PAGE,
                                     all_versions=True)
        if not rows:
            break
        envelope = {"objects": [json.loads(r.body) for r in rows]}
        try:
            status = target.add_objects(json.dumps(envelope), timeout=60)
        except (TAXIIServiceException, requests.RequestException) as exc:
            raise InputError(f"push to {target.url} failed: {exc}") from None
        sent += len(rows)
        stored += int(status.success_count)
        after = rows[-1].seq
        if not more:
            break
    return {"sent": sent, "stored": stored}


def pull(engine: sa.Engine, source: Any, added_after: str | None = None) -> dict[str, int]:
    """Every object of ``source`` (newer than ``added_after``) into local ``shared``."""
    from taxii2client.exceptions import TAXIIServiceException

    filters = {"added_after": added_after} if added_after else {}
    try:
        objects = _all_objects(source, **filters)
    except (TAXIIServiceException, requests.RequestException) as exc:
        raise InputError(f"pull from {source.url} failed: {exc}") from None
    with engine.begin() as conn:
        status = store.add_objects(conn, "shared", objects)
    return {"received": len(objects), "stored": int(status["success_count"])}


def review(engine: sa.Engine, actor: str, reason: str) -> dict[str, int]:
    """What was pulled into ``shared``, read as a registry (identities and the indicators
    attributed to them) and merged into the registry, with who and why."""
    with engine.connect() as conn:
        rows, _ = store.query(conn, "shared", limit=10**9)
    bundle = {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000",
              "objects": [json.loads(r.body) for r in rows]}
    registry: Registry = from_stix(json.dumps(bundle).encode())
    with engine.begin() as conn:
        return import_registry(conn, registry, actor, reason)
