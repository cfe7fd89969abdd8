"""Fixtures of the platform tests: every test that takes ``db_url`` runs on SQLite and on
PostgreSQL. PostgreSQL is the real server at 127.0.0.1:5432 (trust auth); each test gets a
database of its own (``migrated_db`` in ``tests/conftest.py``, shared with the evidence
tests), and the PostgreSQL runs skip with a reason only when no server answers."""

from __future__ import annotations

import pytest


@pytest.fixture
def db_url(migrated_db: str) -> str:
    """A fresh, migrated platform database URL (SQLite file, or a new PostgreSQL db)."""
    return migrated_db
