"""The statements the database driver runs: SQLAlchemy's and the key lookup's alike.

The hot-path lookup runs its SELECT straight on the driver, past SQLAlchemy's statement
events, so the tests count at the driver: SQLite's trace callback, and a recording
cursor class on psycopg connections. Installed for every pooled connection when this
module is imported (the root conftest does), so connections opened later are counted too.

On psycopg the lookup runs a prepared statement through libpq, which no cursor sees: it
is recorded where ``_PreparedSelect`` hands it to libpq. ``tests/test_lookup.py`` checks
that path on the wire, with libpq's own protocol trace.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from flask_apikeys.lookup import _PreparedSelect

_sinks: list[list[str]] = []
_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _record(statement: Any) -> None:
    if not _sinks:
        return
    text = statement if isinstance(statement, str) else repr(statement)
    if text.lstrip().upper().startswith(_TRANSACTION_CONTROL):
        return
    for sink in _sinks:
        sink.append(text)


@functools.cache
def _recording(cursor_class: type) -> type:
    class Recording(cursor_class):  # type: ignore[valid-type,misc]
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            _record(query)
            return super().execute(query, params, **kwargs)

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> Any:
            _record(query)
            return super().executemany(query, params_seq, **kwargs)

    return Recording


def _recording_prepared_select() -> None:
    run = _PreparedSelect.__call__

    def recorded(self: _PreparedSelect, key_hash: str) -> list[Any]:
        _record(self.sql.decode())
        return run(self, key_hash)

    _PreparedSelect.__call__ = recorded  # type: ignore[method-assign]


_recording_prepared_select()


@sa.event.listens_for(sa.pool.Pool, "connect")
def _instrument(dbapi_connection: Any, _record_: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.set_trace_callback(_record)
    elif hasattr(dbapi_connection, "cursor_factory"):  # psycopg 3
        dbapi_connection.cursor_factory = _recording(dbapi_connection.cursor_factory)


@contextmanager
def recorded_statements() -> Iterator[list[str]]:
    """Every statement any connection runs inside the block (transaction control left out)."""
    sink: list[str] = []
    _sinks.append(sink)
    try:
        yield sink
    finally:
        _sinks.remove(sink)


def writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith(WRITES)]


def lookups(statements: list[str], table: str = "api_keys") -> list[str]:
    """The SELECTs that read *table* (the key lookup's)."""
    return [s for s in statements if s.lstrip().upper().startswith("SELECT") and table in s]
