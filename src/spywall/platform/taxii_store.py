"""TAXII 2.1 collections in the platform database: objects, versions, paging, rights.

Two collections exist from the start:
- ``registry`` (read-only over TAXII): the registry as STIX 2.1 (``publish`` adds the
  objects of a new export; an object already held in that version is not added again);
- ``shared`` (read and write): indicators other platforms push, and a place to pull into.

An object's version is its ``modified`` (else ``created``) time; the same id and version
twice is one object. ``date_added`` is the server's time, strictly increasing, so
``added_after`` and the ``next`` token page through a collection without gaps or repeats.

Rights: a key's rights on a collection come from ``taxii_rights`` (by key name) when a row
exists; otherwise ``admin`` keys read and write every collection, ``analyst`` keys read.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from spywall.platform import db
from spywall.platform.auth import Principal

STIX_MEDIA = "application/stix+json;version=2.1"
TAXII_MEDIA = "application/taxii+json;version=2.1"
COLLECTIONS: dict[str, dict[str, Any]] = {
    "registry": {"id": "7b1b1f0e-1c1a-5c7d-9f36-3e1f4c9a0001", "title": "spywall registry",
                 "description": "barred parties and their identifiers (read-only)",
                 "writable": False},
    "shared": {"id": "7b1b1f0e-1c1a-5c7d-9f36-3e1f4c9a0002", "title": "shared indicators",
               "description": "indicators exchanged with other platforms",
               "writable": True},
}
BY_ID = {c["id"]: name for name, c in COLLECTIONS.items()}
MAX_PAGE = 1000


def rfc3339_us(us: int) -> str:
    """Microseconds -> RFC 3339 with millisecond precision at least, as TAXII dates are."""
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def rights(conn: sa.Connection, who: Principal, collection: str) -> tuple[bool, bool]:
    """(can read, can write) of ``who`` on ``collection``."""
    row = conn.execute(sa.select(db.taxii_rights).where(
        db.taxii_rights.c.key_name == who.name,
        db.taxii_rights.c.collection == collection)).first()
    writable = bool(COLLECTIONS[collection]["writable"])
    if row is not None:
        return bool(row.can_read), bool(row.can_write) and writable
    return (who.allows("analyst"), "admin" in who.scopes and writable)


def grant(conn: sa.Connection, key_name: str, collection: str, read: bool,
          write: bool) -> None:
    if collection not in COLLECTIONS:
        raise ValueError(f"no collection {collection!r} ({', '.join(COLLECTIONS)})")
    t = db.taxii_rights
    conn.execute(t.delete().where(t.c.key_name == key_name, t.c.collection == collection))
    conn.execute(t.insert().values(key_name=key_name, collection=collection, can_read=read,
                                   can_write=write))


def _version(obj: dict[str, Any]) -> str:
    return str(obj.get("modified") or obj.get("created") or "1970-01-01T00:00:00.000Z")


def add_objects(conn: sa.Connection, collection: str,
                objects: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Add objects (each version once); a TAXII status resource of what happened."""
    now = time.time_ns() // 1000
    last = conn.execute(sa.select(sa.func.max(db.taxii_objects.c.date_added_us)).where(
        db.taxii_objects.c.collection == collection)).scalar() or 0
    successes, failures = [], []
    t = db.taxii_objects
    for obj in objects:
        ident, kind = obj.get("id"), obj.get("type")
        if not isinstance(ident, str) or not isinstance(kind, str) or "--" not in ident:
            failures.append({"id": str(ident)[:128], "message": "not a STIX object (id, type)"})
            continue
        version = _version(obj)
        exists = conn.execute(sa.select(t.c.seq).where(
            t.c.collection == collection, t.c.id == ident, t.c.version == version)).first()
        if exists is None:
            now = max(now, last + 1)
            last = now
            conn.execute(t.insert().values(
                collection=collection, id=ident, version=version, type=kind,
                spec_version=str(obj.get("spec_version", "2.1")), date_added_us=now,
                body=json.dumps(obj, sort_keys=True)))
        successes.append({"id": ident, "version": version, "message": "stored"})
    status = {"id": str(uuid.uuid4()), "status": "complete",
              "request_timestamp": rfc3339_us(now), "total_count": len(successes) +
              len(failures), "success_count": len(successes), "successes": successes,
              "failure_count": len(failures), "failures": failures, "pending_count": 0,
              "pendings": []}
    conn.execute(db.taxii_status.insert().values(id=status["id"], body=status))
    return status


def status(conn: sa.Connection, ident: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(db.taxii_status.c.body).where(
        db.taxii_status.c.id == ident)).first()
    return dict(row.body) if row is not None else None


def query(conn: sa.Connection, collection: str, *, added_after: int | None = None,
          after_seq: int | None = None, limit: int = MAX_PAGE, ids: list[str] | None = None,
          types: list[str] | None = None, object_id: str | None = None,
          all_versions: bool = False) -> tuple[list[sa.Row[Any]], bool]:
    """Rows of a collection in the order they were added (one page), and whether more
    follow. By default only each object's newest version, as TAXII's ``match[version]``
    default says."""
    t = db.taxii_objects
    where = [t.c.collection == collection]
    if added_after is not None:
        where.append(t.c.date_added_us > added_after)
    if after_seq is not None:
        where.append(t.c.seq > after_seq)
    if ids:
        where.append(t.c.id.in_(ids))
    if object_id is not None:
        where.append(t.c.id == object_id)
    if types:
        where.append(t.c.type.in_(types))
    if not all_versions:
        newer = t.alias("newer")
        where.append(~sa.exists().where(newer.c.collection == t.c.collection,
                                        newer.c.id == t.c.id, newer.c.version > t.c.version))
    rows = list(conn.execute(sa.select(t).where(*where).order_by(t.c.seq).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def publish_registry(conn: sa.Connection) -> dict[str, Any]:
    """Add the registry's current STIX export to the ``registry`` collection, with the
    campaigns: their infrastructure and the payload hashes found malicious in them."""
    from spywall.platform.registry_stix import campaign_objects, stix_objects
    from spywall.platform.registry_store import load_registry
    from spywall.platform.views import campaigns

    bundle = stix_objects(load_registry(conn))
    found = campaigns(conn)["campaigns"]
    d, p = db.deliveries, db.delivery_payloads
    malicious: dict[str, list[str]] = {}
    for c in found:
        senders = c["actors"]
        rows = conn.execute(sa.select(p.c.sha256).join(d, d.c.ref == p.c.ref).join(
            db.payloads, db.payloads.c.sha256 == p.c.sha256).where(
            db.MALICIOUS_ONLY, d.c.sender.in_(senders[:900]),
            db.payloads.c.malicious.is_(True))).scalars()
        malicious[c["id"]] = sorted(set(rows))
    return add_objects(conn, "registry",
                       [*bundle["objects"], *campaign_objects(found, malicious)])
