"""API keys with scopes. A key is shown once, when it is made; only its SHA-256 is
stored. A key reads ``sw_<id>_<secret>``: the id finds the row, the secret is checked
against the stored hash in constant time.

Scopes: ``ingest`` (send events, read them back), ``analyst`` (views, reviews),
``admin`` (registry and keys; implies the others).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import msgspec
import sqlalchemy as sa

from spywall.errors import InputError
from spywall.platform import db

SCOPES = ("ingest", "analyst", "admin")


class Principal(msgspec.Struct, frozen=True):
    id: str
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(conn: sa.Connection, name: str, scopes: list[str]) -> str:
    """A new key for ``name`` with ``scopes``; the key itself is returned, never stored."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise InputError(f"scopes must be among {', '.join(SCOPES)} (got {scopes})")
    if not name.strip() or len(name) > 128:
        raise InputError("a key name must be 1 to 128 characters")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    now = time.time_ns() // 1000
    conn.execute(db.api_keys.insert().values(id=key_id, name=name, hash=_digest(secret),
                                             scopes=sorted(set(scopes)), created_us=now))
    conn.execute(db.audit.insert().values(ts_us=now, actor="cli", action="key-add",
                                          detail={"id": key_id, "name": name,
                                                  "scopes": sorted(set(scopes))}))
    return f"sw_{key_id}_{secret}"


def key_id(key: str) -> str | None:
    """The id part of a well-formed key (None for anything else)."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "sw" or len(key) > 200:
        return None
    return parts[1]


def verify(conn: sa.Connection, key: str) -> Principal | None:
    """The principal a key belongs to, or None (unknown, malformed or revoked)."""
    ident = key_id(key)
    if ident is None:
        return None
    row = conn.execute(sa.select(db.api_keys).where(db.api_keys.c.id == ident)).first()
    return check(row, key)


def check(row: Any, key: str) -> Principal | None:
    """``key`` against its stored row (None: no row, revoked, or the wrong secret)."""
    parts = key.split("_", 2)
    if row is None or row.revoked_us is not None or len(parts) != 3:
        return None
    if not hmac.compare_digest(row.hash, _digest(parts[2])):
        return None
    return Principal(id=row.id, name=row.name, scopes=frozenset(row.scopes))


def revoke_key(conn: sa.Connection, ident: str, actor: str, reason: str) -> None:
    """Revoke a key at once (every later request with it gets 401); recorded in the
    audit log with who and why."""
    k = db.api_keys
    row = conn.execute(sa.select(k.c.revoked_us).where(k.c.id == ident)).first()
    if row is None:
        raise InputError(f"no API key with id {ident!r} (see: spywall platform keys list)")
    if row.revoked_us is not None:
        raise InputError(f"the API key {ident} is already revoked")
    now = time.time_ns() // 1000
    conn.execute(k.update().where(k.c.id == ident).values(revoked_us=now))
    conn.execute(db.audit.insert().values(ts_us=now, actor=actor, action="key-revoke",
                                          detail={"id": ident, "reason": reason}))


def list_keys(conn: sa.Connection) -> list[dict[str, Any]]:
    return [{"id": r.id, "name": r.name, "scopes": list(r.scopes),
             "revoked": r.revoked_us is not None}
            for r in conn.execute(sa.select(db.api_keys).order_by(db.api_keys.c.created_us))]


def audit(conn: sa.Connection, actor: str, action: str, detail: dict[str, Any]) -> None:
    conn.execute(db.audit.insert().values(ts_us=time.time_ns() // 1000, actor=actor,
                                          action=action, detail=detail))
