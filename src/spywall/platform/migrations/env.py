"""Alembic environment: migrations run on the engine that ``spywall.platform.db`` made
(passed in the configuration's attributes), never on a URL of Alembic's own."""

from __future__ import annotations

from alembic import context

from spywall.platform.db import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
