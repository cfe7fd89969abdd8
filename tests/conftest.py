"""Shared pytest configuration, and the platform database every platform and evidence
test runs on (``migrated_db``)."""

from __future__ import annotations

import os
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings

# The suite is deterministic: property tests draw the same examples on every run (a rare
# failing example shows up every time or never, not one CI run in twenty). Longer random
# exploration is `make fuzz`'s job; HYPOTHESIS_PROFILE=explore draws afresh.
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

PG = os.environ.get("SPYWALL_TEST_PG", "postgresql+psycopg://{user}@127.0.0.1:5432/postgres")


def pytest_configure(config: pytest.Config) -> None:
    """Tests never read what ``spywall iocs update`` stored for the user (indicator sets,
    the list of iOS releases): the update folder is a fresh empty one."""
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="spywall-test-data-")


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """Byte-string parameters are named by their argument, not their content.

    Generated samples carry timestamps (a font's head table, a PDF's /ID), so an id made
    from the bytes differs between two collections; pytest-xdist's workers then disagree
    on the test list. pytest numbers repeated ids (``data0``, ``data1``...), in order.
    """
    if isinstance(val, bytes | bytearray):
        return argname
    return None


def _never_returns(*args: object, **kwargs: object) -> None:
    """A call into C++ that never returns, as Python sees it: no signal handler runs
    (SIGALRM held pending), so neither the time budget nor its backstop can stop it."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(3600)


@pytest.fixture
def never_returns() -> Callable[..., None]:
    """``_never_returns``: patched over a call in a scan worker (forked after the patch)
    it stands for a stuck qpdf; only the supervisor's kill ends it."""
    return _never_returns


@pytest.fixture
def forked() -> None:
    """Tests that patch the engine here: their patches reach workers only through fork."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("the patched engine reaches the workers only through fork")


def _pg_admin() -> sa.Engine | None:
    """An AUTOCOMMIT engine on the PostgreSQL server at 127.0.0.1:5432 (trust auth, as
    root or postgres), or None when none answers."""
    for user in ("root", "postgres"):
        engine = sa.create_engine(PG.format(user=user), isolation_level="AUTOCOMMIT",
                                  connect_args={"connect_timeout": 3})
        try:
            with engine.connect():
                return engine
        except sa.exc.OperationalError:
            engine.dispose()
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated platform database URL: a SQLite file, or a PostgreSQL database
    of its own (created and dropped here; skipped with a reason only when no server
    answers)."""
    from spywall.platform import db

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'platform.db'}"
    else:
        admin = _pg_admin()
        if admin is None:
            pytest.skip("PostgreSQL does not answer at 127.0.0.1:5432")
        name = f"spywall_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = db.make_engine(url)
    db.init_schema(engine)
    engine.dispose()
    try:
        yield url
    finally:
        if request.param == "postgresql":
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
