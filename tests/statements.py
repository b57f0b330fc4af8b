"""The statements SQLAlchemy sends to the database, from every engine.

The key lookup goes through SQLAlchemy, so engine events see it like any other
statement: the tests count with the same hook SQL tracing and OpenTelemetry use
(``before_cursor_execute``, listened for on every engine when this module is imported).
Transaction control is left out (SQLAlchemy asks the driver for it directly). Only the
statements of the thread that records count: the usage flushers of other tests' apps run
in threads of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

_sinks: list[tuple[int, list[str]]] = []
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@sa.event.listens_for(sa.Engine, "before_cursor_execute")
def _record(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> None:
    thread = threading.get_ident()
    for owner, sink in _sinks:
        if owner == thread:
            sink.append(statement)


@contextmanager
def recorded_statements() -> Iterator[list[str]]:
    """Every statement any engine runs inside the block."""
    entry: tuple[int, list[str]] = (threading.get_ident(), [])
    _sinks.append(entry)
    try:
        yield entry[1]
    finally:
        _sinks.remove(entry)


def writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith(WRITES)]


def lookups(statements: list[str], table: str = "api_keys") -> list[str]:
    """The SELECTs that read *table* (the key lookup's)."""
    return [s for s in statements if s.lstrip().upper().startswith("SELECT") and table in s]


def version_checks(statements: list[str]) -> list[str]:
    """SQLite's data-version checks, which stand in for the SELECT while nothing changed."""
    return [s for s in statements if "pragma_data_version" in s]
