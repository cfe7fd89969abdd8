"""The platform's operations as one small API that every face calls (CLI, HTTP, NATS):
open a database, import the registry, ingest, analyse, keys. No face holds logic of its
own."""

from __future__ import annotations

import sqlalchemy as sa

from spywall.errors import InputError
from spywall.platform import db
from spywall.platform.analysis import AnalysisResult, analyse
from spywall.platform.registry import Registry, load_json
from spywall.platform.registry_store import import_registry


def open_db(url: str | None, create: bool = False) -> sa.Engine:
    """An engine on the platform database; ``InputError`` when it cannot be reached or
    has no schema (and ``create`` is false)."""
    target = db.db_url(url)
    try:
        engine = db.make_engine(target)
        if create:
            db.init_schema(engine)
        elif not db.schema_ready(engine):
            raise InputError(f"no spywall schema in {_safe(target)}: run "
                             "'spywall platform init' first")
        else:
            current, head = db.schema_revisions(engine)
            if current != head:
                raise InputError(f"the schema in {_safe(target)} is at revision {current}, "
                                 f"this spywall needs {head}: run 'spywall platform init' "
                                 "to upgrade it")
    except sa.exc.OperationalError as exc:
        raise InputError(f"cannot open the database {_safe(target)}: {exc.orig}") from None
    except sa.exc.ArgumentError as exc:
        raise InputError(f"not a database URL: {exc}") from None
    return engine


def _safe(url: str) -> str:
    """A URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparseable URL)"


def load_registry_file(data: bytes) -> Registry:
    """The contract's registry JSON, or a STIX 2.1 bundle (told apart by content)."""
    head = data.lstrip()[:4096]
    if b'"type"' in head and b'"bundle"' in head:
        from spywall.platform.registry_stix import from_stix

        return from_stix(data)
    return load_json(data)


def import_file(engine: sa.Engine, data: bytes, actor: str, reason: str) -> dict[str, int]:
    registry = load_registry_file(data)
    with engine.begin() as conn:
        counts = import_registry(conn, registry, actor, reason)
        # Campaigns already stored may now belong to a party.
        run_analysis_in(conn)
    return counts


def run_analysis_in(conn: sa.Connection) -> AnalysisResult:
    return analyse(conn)


def run_analysis(engine: sa.Engine, full: bool = False) -> AnalysisResult:
    with engine.begin() as conn:
        return analyse(conn, full)
