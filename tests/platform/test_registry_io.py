"""The registry's JSON and STIX 2.1 forms, the schema migrations, and the record of
changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from spywall.errors import InputError
from spywall.platform import db
from spywall.platform.registry import load_json
from spywall.platform.registry_stix import from_stix, to_stix
from spywall.platform.registry_store import import_registry, load_registry
from spywall.platform.world import registry as world_registry

REGISTRY = world_registry("ab" * 32)
REGISTRY["parties"][0]["identifiers"] += [
    {"kind": "cidr", "value": "2001:db8:abcd::/48", "source": "t", "added": "2020-01-01"},
    {"kind": "asn", "value": "AS64500", "source": "t", "added": "2020-01-01"},
    {"kind": "phone_prefix", "value": "+35799", "source": "t", "added": "2020-01-01"},
    {"kind": "client", "value": "WIS/*", "source": "t", "added": "2020-01-01"},
    {"kind": "account", "value": "acct-'quoted'", "source": "t", "added": "2020-01-01"},
    {"kind": "device", "value": "rig-a", "source": "t", "added": "2020-01-01"}]


def test_stix_round_trip_keeps_every_party_and_identifier() -> None:
    import stix2
    from stix2patterns.validator import validate

    registry = load_json(json.dumps(REGISTRY).encode())
    text = to_stix(registry)
    assert to_stix(load_json(json.dumps(REGISTRY).encode())) == text, "deterministic"
    bundle = stix2.parse(text, allow_custom=True)          # the official library reads it
    patterns = [o.pattern for o in bundle.objects if o.type == "indicator"]
    assert patterns
    assert all(validate(p, stix_version="2.1") for p in patterns)   # and its grammar
    back = from_stix(text.encode())
    assert back.official_clients == registry.official_clients
    assert [(p.id, p.name, p.affiliate_of) for p in back.parties] == \
        [(p.id, p.name, p.affiliate_of) for p in registry.parties]
    for mine, theirs in zip(registry.parties, back.parties, strict=True):
        assert mine.orders == theirs.orders
        assert sorted((i.kind, i.value, i.source) for i in mine.identifiers) == \
            sorted((i.kind, i.value, i.source) for i in theirs.identifiers)


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["parties"][0]["identifiers"].append({"kind": "ip", "value": "300.1.1.1"}),
     "not an IP address"),
    (lambda r: r["parties"][0]["identifiers"].append({"kind": "colour", "value": "red"}),
     "unknown identifier kind"),
    (lambda r: r["parties"][1].update(affiliate_of="nobody"), "affiliate_of names no party"),
    (lambda r: r["parties"][0].update(affiliate_of="q-technologies"), "loop"),
    (lambda r: r["parties"][0]["orders"][0].update(date="17/10/2025"), "not a date"),
    (lambda r: r.update(extra=1), "registry"),
])
def test_bad_registries_are_refused_with_a_reason(change: object, message: str) -> None:
    data = json.loads(json.dumps(REGISTRY))
    change(data)  # type: ignore[operator]
    with pytest.raises(InputError, match=message):
        load_json(json.dumps(data).encode())


def test_migrated_schema_is_the_declared_one(db_url: str) -> None:
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []
    assert db.init_schema(engine) == db.init_schema(engine)   # upgrading twice is a no-op


def _index_definition(conn: sa.Connection, name: str) -> str:
    """An index's definition as the database's own catalogue gives it."""
    if conn.dialect.name == "postgresql":
        return str(conn.execute(sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                                {"n": name}).scalar_one())
    return str(conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = :n"),
                            {"n": name}).scalar_one())


def _uses_index(conn: sa.Connection, query: sa.Select[tuple[str]], name: str) -> bool:
    """Whether the database plans ``query`` through index ``name`` (on PostgreSQL with
    sequential scans priced out, as a test table is too small to need an index)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql.dialect() if conn.dialect.name == "postgresql" else sqlite.dialect()
    sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(str(r[0]) for r in conn.exec_driver_sql("EXPLAIN " + sql))
    else:
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    return name in plan


def test_migration_0004_makes_the_malicious_index_partial_and_back(db_url: str) -> None:
    from alembic import command

    engine = db.make_engine(db_url)
    cfg = db.migrations_config(engine)
    command.downgrade(cfg, "0003")
    clean = {"ref": "c1", "kind": "call", "event": "e1", "sender": "a", "targets": ["b"],
             "ts_us": 1, "answered": False, "blocked": False, "malicious": False,
             "payloads": [], "detectors": [], "infrastructure": [], "evidence": ["e1"]}
    with engine.begin() as conn:
        assert "WHERE" not in _index_definition(conn, "ix_deliveries_malicious").upper()
        conn.execute(db.deliveries.insert(), [clean, {**clean, "ref": "m1", "kind": "message",
                                                      "event": "e2", "malicious": True}])
    command.upgrade(cfg, "head")
    malicious = sa.select(db.deliveries.c.ref).where(db.MALICIOUS_ONLY)
    with engine.begin() as conn:
        definition = _index_definition(conn, "ix_deliveries_malicious")
        assert "WHERE" in definition.upper()
        assert "malicious" in definition.upper().split("WHERE", 1)[1].lower()
        assert conn.execute(malicious).scalars().all() == ["m1"]
        assert _uses_index(conn, malicious, "ix_deliveries_malicious")
    command.downgrade(cfg, "0003")
    with engine.begin() as conn:
        assert "WHERE" not in _index_definition(conn, "ix_deliveries_malicious").upper()
        assert sorted(conn.execute(sa.select(db.deliveries.c.ref)).scalars()) == ["c1", "m1"]
    command.upgrade(cfg, "head")
    engine.dispose()


def test_import_merges_and_records_who_and_why(db_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(db_url)
    registry = load_json(json.dumps(REGISTRY).encode())
    with engine.begin() as conn:
        first = import_registry(conn, registry, "alice", "court order filed")
    with engine.begin() as conn:
        second = import_registry(conn, registry, "bob", "same file again")
    assert first["identifiers"] == sum(len(p.identifiers) for p in registry.parties)
    assert second == {"parties": 0, "orders": 0, "identifiers": 0, "official_clients": 0}
    with engine.connect() as conn:
        stored = load_registry(conn)
        changes = conn.execute(sa.select(db.registry_changes)).all()
    assert {p.id for p in stored.parties} == {"nso-group", "q-technologies"}
    assert all(c.actor == "alice" and c.reason == "court order filed" for c in changes)
    assert {c.action for c in changes} == {"official-client-add", "party-add", "order-add",
                                           "identifier-add"}
    values = {(i.kind, i.value) for p in stored.parties for i in p.identifiers}
    assert ("asn", "64500") in values          # normalised once, on the way in
    assert ("cidr", "2001:db8:abcd::/48") in values
