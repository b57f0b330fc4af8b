"""The one SELECT of the hot path: a key's row, by hash, on a borrowed connection.

:func:`key_select` composes the statement once per app from the columns the checks
declare (``api_keys ⋈ users``, ``⟕`` the organization's policy when a column reads it);
:class:`KeyLookup` runs it on a connection borrowed from the engine's pool and given
back before it returns, so it holds nothing between requests under any WSGI server,
and engine events (SQL logging, OpenTelemetry, Sentry) see it. The row is a Core row:
no ORM object is built, unless the host's Python loaders need the owner (then the
owner comes in the same SELECT, through a short-lived ``Session``).

* **Database servers** — the connection is in autocommit mode: one round trip, without
  ``BEGIN`` and ``ROLLBACK`` around it. A connection the server dropped (a restart, a
  failover, an idle timeout) is retried once, on a fresh one.
* **SQLite in a file** — ``PRAGMA data_version`` changes whenever another connection
  commits, ``schema_version`` with any schema change, and the driver's
  ``total_changes`` whenever this connection writes a row. While all three hold since a
  key's row was read *on this same connection*, the row is what a SELECT would return,
  so it is used again (every check still judges it afresh, at this request's time).
* **SQLite in memory** — one connection is the whole database and the request's
  session holds it, so the lookup runs in the request's session.

Layer 2: SQLAlchemy only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from .schema import Models

__all__ = ["KeyLookup", "key_select"]


def key_select(
    models: Models, columns: Mapping[str, sa.ColumnElement[Any]], *, with_owner: bool = False
) -> sa.Select[Any]:
    """``SELECT <columns> FROM api_keys JOIN users [LEFT JOIN policies] WHERE key_hash
    = :key_hash``, each column labelled with its name; *with_owner*: the owner entity
    first (for Python loaders that need the object)."""
    keys = models.APIKey.__table__
    owner_pk: sa.Column[Any] = sa.inspect(models.User).primary_key[0]
    source: sa.FromClause = keys.join(owner_pk.table, keys.c.owner_id == owner_pk)
    labelled = [expression.label(name) for name, expression in columns.items()]
    if models.APIKeyPolicy is not None:
        policies = models.APIKeyPolicy.__table__
        if policies in sa.select(*labelled).columns_clause_froms:
            source = source.outerjoin(
                policies, policies.c.organization_id == keys.c.organization_id
            )
    entities = [models.User] if with_owner else []
    return (
        sa.select(*entities, *labelled)
        .select_from(source)
        .where(keys.c.key_hash == sa.bindparam("key_hash"))
    )


class KeyLookup:
    """``find(key_hash)``: the row of *statement* (from :func:`key_select`) for a key,
    or ``None``.

    *session* is the host's (scoped) session: its bind for the key model, asked for
    once, is the engine the lookup borrows connections from. *with_owner*: the
    statement selects the owner entity (an ORM object, detached once returned).
    """

    def __init__(
        self,
        session: Session | scoped_session[Session],
        models: Models,
        statement: sa.Select[Any],
        *,
        with_owner: bool = False,
    ) -> None:
        self.statement = statement
        self.with_owner = with_owner
        self._session = session
        self._mapper = sa.inspect(models.APIKey)
        self._engine: sa.Engine | None = None
        self._in_session: bool | None = None
        self._versioned = False
        #: Where this lookup keeps its rows in a SQLite connection's ``info``.
        self._known = (_KNOWN, object())

    def find(self, key_hash: str) -> sa.Row[Any] | None:
        """The key's row, or ``None`` when no key has *key_hash*."""
        params = {"key_hash": key_hash}
        engine = self._engine
        if engine is None:
            if self._in_session is None:
                self._choose_engine()
            if self._in_session:
                # In the request's session: never serve its stale copy of the owner.
                statement = self.statement.execution_options(populate_existing=True)
                return _one(self._session.execute(statement, params), self.with_owner)
            engine = self._engine
            if engine is None:  # pragma: no cover - _choose_engine sets one
                raise RuntimeError("the key lookup has no engine")
        try:
            with engine.connect() as connection:
                return self._select(connection, params)
        except sa.exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise
        # The database dropped the pooled connection (SQLAlchemy invalidated it, and the
        # pool's older ones): once more, on a fresh connection.
        with engine.connect() as connection:
            return self._select(connection, params)

    def _select(self, connection: sa.Connection, params: dict[str, Any]) -> sa.Row[Any] | None:
        if self._versioned:
            return self._select_unless_known(connection, params)
        return self._run(connection, params)

    def _select_unless_known(
        self, connection: sa.Connection, params: dict[str, Any]
    ) -> sa.Row[Any] | None:
        key_hash = params["key_hash"]
        version = _sqlite_version(connection)
        known: dict[str, _Known] = connection.info.setdefault(self._known, {})
        seen = known.get(key_hash)
        if seen is not None and seen.version == version:
            return seen.row
        row = self._run(connection, params)
        if row is None:
            known.pop(key_hash, None)
        else:
            if len(known) >= _KNOWN_PER_CONNECTION:
                known.clear()
            known[key_hash] = _Known(version, row)
        return row

    def _run(self, connection: sa.Connection, params: dict[str, Any]) -> sa.Row[Any] | None:
        if not self.with_owner:
            return connection.execute(self.statement, params).one_or_none()
        with Session(bind=connection) as session:
            # Detached by the session's close, with everything it loaded.
            return _one(session.execute(self.statement, params), True)

    def _choose_engine(self) -> None:
        bind = self._session.get_bind(mapper=self._mapper)
        source = _Source.of(bind if isinstance(bind, sa.Engine) else bind.engine)
        self._engine, self._in_session = source.engine, source.engine is None
        self._versioned = source.versioned


@dataclass(frozen=True)
class _Source:
    """How the lookup reaches one engine's database."""

    #: Where connections come from; ``None``: use the request's session.
    engine: sa.Engine | None
    #: SQLite in a file: reuse rows while the connection's data version holds.
    versioned: bool = False

    @classmethod
    def of(cls, engine: sa.Engine) -> _Source:
        if engine.dialect.name != "sqlite":
            return cls(engine.execution_options(isolation_level="AUTOCOMMIT"))
        if isinstance(engine.pool, StaticPool | SingletonThreadPool):
            return cls(None)  # in memory: the session's connection is the database
        # The standard library's driver says how many rows its connection changed.
        return cls(engine, engine.dialect.driver == "pysqlite")


#: Where a SQLite connection keeps the rows each lookup read (``Connection.info`` lives
#: as long as the driver's connection does).
_KNOWN = "flask_apikeys.known_keys"
_KNOWN_PER_CONNECTION = 256
#: Moves with every commit of another connection, and with any schema change.
_VERSION_SQL = (
    "SELECT (SELECT data_version FROM pragma_data_version()),"
    " (SELECT schema_version FROM pragma_schema_version())"
)


@dataclass(frozen=True)
class _Known:
    """A key's row read on one SQLite connection, and that connection's state then."""

    version: tuple[int, int, int]
    row: sa.Row[Any]


def _sqlite_version(connection: sa.Connection) -> tuple[int, int, int]:
    """What changes when anything is written to the database: by another connection
    (``data_version``), by this one (``total_changes`` counts its rows written), or to
    the schema by either (``schema_version``)."""
    data_version, schema_version = connection.exec_driver_sql(_VERSION_SQL).one()
    driver = connection.connection.driver_connection
    own_writes = driver.total_changes if isinstance(driver, sqlite3.Connection) else -1
    return int(data_version), int(schema_version), int(own_writes)


def _one(result: sa.Result[Any], with_owner: bool) -> sa.Row[Any] | None:
    if not with_owner:
        return result.one_or_none()
    # The owner's joined eager loads (a collection) may make several rows of one key.
    rows = result.unique(_owner_of).all()
    return rows[0] if rows else None


def _owner_of(row: sa.Row[Any]) -> Any:
    return row[0]
