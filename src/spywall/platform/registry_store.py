"""The registry in the database: import (merging, never silently replacing), export,
derived and retired identifiers, and a record of every change (who, when, what, why)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from spywall.errors import InputError
from spywall.platform import db
from spywall.platform.evidence_hook import record
from spywall.platform.registry import Identifier, Order, Party, Registry, normalise


def now_us() -> int:
    return time.time_ns() // 1000


def _change(conn: sa.Connection, actor: str, action: str, party: str | None,
            detail: dict[str, Any], reason: str) -> None:
    ts = now_us()
    conn.execute(db.registry_changes.insert().values(
        ts_us=ts, actor=actor, action=action, party=party, detail=detail, reason=reason))
    record(conn, [{"kind": "registry.change", "ts_us": ts, "actor": actor, "action": action,
                   "party": party, "detail": detail, "reason": reason}])


def import_registry(conn: sa.Connection, registry: Registry, actor: str,
                    reason: str) -> dict[str, int]:
    """Merge ``registry`` into the database. Returns counts of what was added."""
    counts = {"parties": 0, "orders": 0, "identifiers": 0, "official_clients": 0}
    known_parties = {r.id: r for r in conn.execute(sa.select(db.parties))}
    for pattern in registry.official_clients:
        exists = conn.execute(sa.select(db.official_clients.c.pattern).where(
            db.official_clients.c.pattern == pattern)).first()
        if exists is None:
            conn.execute(db.official_clients.insert().values(pattern=pattern))
            counts["official_clients"] += 1
            _change(conn, actor, "official-client-add", None, {"pattern": pattern}, reason)
    # Parents first, so that affiliate_of always names a stored party.
    for party in _parents_first(registry.parties):
        row = {"id": party.id, "name": party.name, "aliases": list(party.aliases),
               "affiliate_of": party.affiliate_of}
        if party.id in known_parties:
            conn.execute(db.parties.update().where(db.parties.c.id == party.id).values(**row))
        else:
            conn.execute(db.parties.insert().values(**row))
            counts["parties"] += 1
            _change(conn, actor, "party-add", party.id, row, reason)
        have_orders = {(o.court, o.case, o.date) for o in conn.execute(
            sa.select(db.orders).where(db.orders.c.party == party.id))}
        for order in party.orders:
            if (order.court, order.case, order.date) in have_orders:
                continue
            values = msgspec.structs.asdict(order)
            conn.execute(db.orders.insert().values(party=party.id, **values))
            counts["orders"] += 1
            _change(conn, actor, "order-add", party.id, values, reason)
        added = add_identifiers(conn, party.id, party.identifiers, actor, reason)
        counts["identifiers"] += added
    return counts


def _parents_first(parties: Sequence[Party]) -> list[Party]:
    by_id = {p.id: p for p in parties}
    out: list[Party] = []
    seen: set[str] = set()

    def visit(p: Party) -> None:
        if p.id in seen:
            return
        seen.add(p.id)
        if p.affiliate_of in by_id:
            visit(by_id[p.affiliate_of])
        out.append(p)

    for p in parties:
        visit(p)
    return out


def add_identifiers(conn: sa.Connection, party: str, idents: Sequence[Identifier],
                    actor: str, reason: str) -> int:
    """Add identifiers not already held by ``party`` (a retired one comes back to life)."""
    if conn.execute(sa.select(db.parties.c.id).where(db.parties.c.id == party)).first() is None:
        raise InputError(f"no party {party!r} in the registry")
    have = {(r.kind, r.value): r for r in conn.execute(
        sa.select(db.identifiers).where(db.identifiers.c.party == party))}
    added = 0
    for ident in idents:
        value = normalise(ident.kind, ident.value)
        row = have.get((ident.kind, value))
        if row is not None and row.retired_us is None:
            continue
        detail = {"kind": ident.kind, "value": value, "source": ident.source,
                  "added": ident.added, "derived_from": ident.derived_from}
        if row is not None:
            conn.execute(db.identifiers.update().where(db.identifiers.c.pk == row.pk).values(
                retired_us=None, retired_reason=None, source=ident.source))
        else:
            conn.execute(db.identifiers.insert().values(
                party=party, kind=ident.kind, value=value, source=ident.source,
                added=ident.added or time.strftime("%Y-%m-%d", time.gmtime()),
                added_by=ident.added_by or actor, derived_from=ident.derived_from))
            have[(ident.kind, value)] = None  # type: ignore[assignment]
        added += 1
        _change(conn, actor, "identifier-derive" if ident.derived_from else "identifier-add",
                party, detail, reason)
    return added


def retire_identifier(conn: sa.Connection, party: str, kind: str, value: str, actor: str,
                      reason: str) -> bool:
    value = normalise(kind, value)
    result = conn.execute(db.identifiers.update().where(
        db.identifiers.c.party == party, db.identifiers.c.kind == kind,
        db.identifiers.c.value == value, db.identifiers.c.retired_us.is_(None),
    ).values(retired_us=now_us(), retired_reason=reason))
    if result.rowcount:
        _change(conn, actor, "identifier-retire", party, {"kind": kind, "value": value},
                reason)
    return bool(result.rowcount)


def load_registry(conn: sa.Connection, include_retired: bool = False) -> Registry:
    """The registry as stored (live identifiers only, unless asked)."""
    parties = {r.id: Party(id=r.id, name=r.name, aliases=list(r.aliases),
                           affiliate_of=r.affiliate_of)
               for r in conn.execute(sa.select(db.parties).order_by(db.parties.c.id))}
    for r in conn.execute(sa.select(db.orders).order_by(db.orders.c.pk)):
        parties[r.party].orders.append(Order(court=r.court, case=r.case, date=r.date,
                                             scope=r.scope))
    query = sa.select(db.identifiers).order_by(db.identifiers.c.pk)
    if not include_retired:
        query = query.where(db.identifiers.c.retired_us.is_(None))
    for r in conn.execute(query):
        parties[r.party].identifiers.append(Identifier(
            kind=r.kind, value=r.value, source=r.source, added=r.added, added_by=r.added_by,
            derived_from=r.derived_from))
    official = [r.pattern for r in conn.execute(
        sa.select(db.official_clients).order_by(db.official_clients.c.pattern))]
    return Registry(official_clients=official, parties=list(parties.values()))


def registry_version(conn: sa.Connection) -> int:
    """Grows with every change: a gate in another process reloads when it moves."""
    return int(conn.execute(sa.select(sa.func.coalesce(
        sa.func.max(db.registry_changes.c.seq), 0))).scalar_one())
