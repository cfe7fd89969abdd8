"""The inline gate's short path over HTTP, on SQLite and PostgreSQL: the reads it runs on
the driver's cursor give what SQLAlchemy gives, its thread hands back answers and errors
in order, a decision starts the background analysis, and a connection the database
dropped while the gate held it costs no request."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import Api, blastpass_webp, connected, inline, make_api, message

from spywall.platform import api as api_module
from spywall.platform import db, intake
from spywall.platform.prepared import Prepared
from spywall.platform.worker import Worker


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    made = make_api(db_url, tmp_path / "media")
    yield made
    made.engine.dispose()


def test_prepared_reads_what_sqlalchemy_reads(api: Api) -> None:
    """The oracle is SQLAlchemy's own execution of the same statements: the key row with
    the state token (JSON scopes, NULL revocation, scalar subqueries) and the stored
    decision of an event (JSON reasons), found and not found."""
    assert api.post("/v1/gate", "ingest", connected("p1", "acct-vendor-1")).status_code == 200
    key_stmt = api_module._KEY_AND_TOKEN.statement
    stored_stmt = intake._STORED_ONE.statement
    with api.engine.connect() as conn:
        idents = list(conn.execute(sa.select(db.api_keys.c.id)).scalars())
        cases: list[tuple[Prepared, sa.Select[Any], dict[str, Any]]] = [
            *((api_module._KEY_AND_TOKEN, key_stmt, {"id": i}) for i in [*idents, "none"]),
            (intake._STORED_ONE, stored_stmt, {"id": "p1"}),
            (intake._STORED_ONE, stored_stmt, {"id": "p2"})]
        for prepared, statement, params in cases:
            expected = conn.execute(statement, params).first()
            got = prepared.first(conn, params)
            if expected is None:
                assert got is None
                continue
            assert tuple(got) == tuple(expected)
            assert got._fields == tuple(expected._fields)
    with api.engine.connect() as conn:
        [reasons] = conn.execute(sa.select(db.events.c.reasons)).scalars()
    assert reasons[0]["rule"] == "registry-identifier"       # decoded, not text


def test_prepared_raises_driver_errors_as_sqlalchemy_does(api: Api) -> None:
    missing = sa.Table("no_such_table", sa.MetaData(), sa.Column("id", sa.String))
    prepared = Prepared(sa.select(missing.c.id).where(missing.c.id == sa.bindparam("id")))
    with api.engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError) as raised:
            conn.execute(prepared.statement, {"id": "x"})
        conn.rollback()
        with pytest.raises(sa.exc.DBAPIError) as ours:
            prepared.first(conn, {"id": "x"})
    assert type(ours.value) is type(raised.value)       # OperationalError, ProgrammingError


def test_the_worker_answers_in_order_and_hands_back_errors() -> None:
    names: list[str] = []

    def job(i: int) -> int:
        names.append(threading.current_thread().name)
        if i == 3:
            raise ValueError("job 3")
        return i * i

    async def scenario(worker: Worker) -> list[Any]:
        return await asyncio.gather(*(worker.run(job, i) for i in range(6)),
                                    return_exceptions=True)

    worker = Worker("test-worker")
    results = asyncio.run(scenario(worker))
    assert results[:3] == [0, 1, 4]
    assert results[4:] == [16, 25]
    assert isinstance(results[3], ValueError)
    assert names == ["test-worker"] * 6
    thread = worker._thread
    assert thread is not None
    assert thread.is_alive()
    del worker, results          # (the error's traceback holds the awaiting frame)
    gc.collect()
    thread.join(timeout=60)
    assert not thread.is_alive()             # the thread ends with its worker


def test_a_gate_decision_starts_the_analysis(api: Api) -> None:
    """A malicious delivery judged by the gate becomes a campaign: the background
    analysis ran after the answer (the test client waits for background tasks)."""
    assert api.get("/v1/campaigns", "analyst").json()["campaigns"] == []
    r = api.post("/v1/gate", "ingest", message("a1", "attacker-9", ["victim-9"],
                                               [inline(blastpass_webp())]))
    assert r.json()["verdict"] == "deny"
    [campaign] = api.get("/v1/campaigns", "analyst").json()["campaigns"]
    assert campaign["actors"] == ["attacker-9"]
    assert campaign["targets"] == ["victim-9"]


def test_a_dropped_gate_connection_costs_no_request(api: Api) -> None:
    """The gate keeps its connection between requests. When the database drops it (a
    PostgreSQL restart, an administrator), the next request is answered on a fresh one,
    as the pool's pre-ping answered it before; SQLite has no server to drop it."""
    if api.engine.dialect.name != "postgresql":
        pytest.skip("only a database server drops connections")
    assert api.post("/v1/gate", "ingest", connected("d1", "someone")).status_code == 200
    held = api.client.app.state.platform._gate_conn            # type: ignore[attr-defined]
    assert held is not None
    with api.engine.connect() as conn:
        killed = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    assert killed is not None
    assert killed >= 1
    again = api.post("/v1/gate", "ingest", connected("d2", "someone"))
    assert again.status_code == 200, again.text
    assert again.json()["verdict"] == "allow"
    assert "d2" in api.stored_ids()


def test_the_gate_gives_its_connection_back_at_shut_down(api: Api) -> None:
    from fastapi.testclient import TestClient

    with TestClient(api.client.app) as client:           # runs the app's lifespan
        r = client.post("/v1/gate", headers=api.auth("ingest"), json=connected("s1", "x"))
        assert r.status_code == 200
        platform = client.app.state.platform              # type: ignore[attr-defined]
        assert platform._gate_conn is not None
    assert platform._gate_conn is None
    assert api.engine.pool.checkedout() == 0   # type: ignore[attr-defined]
