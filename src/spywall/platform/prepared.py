"""Reads on the hot path of the inline gate, run on the driver's own cursor.

A ``Prepared`` is a Core ``SELECT`` (built with ``sa.bindparam`` names, in ``db``'s
tables) compiled once per dialect. Running it skips what SQLAlchemy does per execution
(the statement's cache key, the execution context, the result's metadata): for the two
one-row reads of a gate request (the key with the state token, the stored decision of an
event id) that work cost four times the queries themselves (measured on SQLite).

Rows come back as named tuples, each column through the result processor SQLAlchemy uses
for its type on that dialect (a JSON column is decoded on SQLite, where the driver gives
text; psycopg decodes it itself). Parameters go to the driver as they are: give only
values whose type needs no conversion (strings, integers). A driver error is raised as
SQLAlchemy wraps it (``sa.exc.OperationalError`` and so on), so the faces map it as any
other.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

_Plan = tuple[str, tuple[str, ...] | None, list[tuple[int, Callable[[Any], Any]]]]


class Prepared:
    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement
        names = [str(c.key) for c in statement.selected_columns]
        self.row: Any = namedtuple("Row", names)  # type: ignore[misc]
        self._plans: dict[str, _Plan] = {}

    def first(self, conn: sa.Connection, params: Mapping[str, Any]) -> Any | None:
        """The first row for ``params`` (by bind name), or None; in ``conn``'s
        transaction when it has one."""
        sql, order, processors = self._plans.get(conn.dialect.name) or self._plan(conn)
        args: Any = tuple(params[name] for name in order) if order is not None else params
        raw = conn.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            cursor.execute(sql, args)
            found = cursor.fetchone()
        except conn.dialect.loaded_dbapi.Error as exc:
            dropped = conn.dialect.is_disconnect(exc, conn.connection, cursor)
            if dropped:
                conn.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                sql, args, exc, conn.dialect.loaded_dbapi.Error,
                connection_invalidated=dropped, dialect=conn.dialect) from exc
        finally:
            cursor.close()
        if found is None:
            return None
        if processors:
            found = list(found)
            for i, process in processors:
                found[i] = process(found[i])
        return self.row._make(found)

    def _plan(self, conn: sa.Connection) -> _Plan:
        dialect = conn.dialect
        compiled = self.statement.compile(dialect=dialect)
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        processors: list[tuple[int, Callable[[Any], Any]]] = []
        for i, column in enumerate(self.statement.selected_columns):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                processors.append((i, process))
        plan: _Plan = (str(compiled), order, processors)
        self._plans[dialect.name] = plan
        return plan
