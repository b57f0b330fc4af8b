"""The one SELECT of the hot path: a key, its owner and its organization's policy, by hash.

Each lookup borrows a connection from the engine's pool and gives it back before it
returns, so it holds nothing between requests and is correct under any WSGI server:
a thread per request (``flask run``), gunicorn's sync, gthread and gevent workers,
waitress. It runs the ORM statement through a short-lived :class:`~sqlalchemy.orm.Session`
on that connection, so engine events (SQL logging, OpenTelemetry, Sentry) see it.

The key and its owner come back *detached*, with their columns and whatever the user
model loads eagerly (e.g. memberships): the checks only read those.
:class:`~flask_apikeys.VerifiedKey` merges them into the request's session when a view
asks for ``current_key.key`` or ``current_key.owner``.

Per database:

* **PostgreSQL and other servers** — the connection is in autocommit mode, so the
  lookup is one round trip: the SELECT, without ``BEGIN`` and ``ROLLBACK`` around it.
* **SQLite in a file** — SQLite's ``PRAGMA data_version`` changes whenever another
  connection commits, its ``schema_version`` with any schema change, and the
  driver's ``total_changes`` whenever this connection writes a row.
  While both are unchanged since a key was read *on this same connection*, the rows are
  still what a SELECT would return, so the objects read then are handed out again
  (validity, expiry and permissions are still judged afresh on every request). Anything
  committed anywhere — a revocation, a deactivated owner, a changed policy — makes the
  next lookup read the rows again.
* **SQLite in memory** — one connection is the whole database and the request's session
  holds it, so the lookup runs in the request's session.

Layer 3: SQLAlchemy only, no Flask.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, contains_eager, scoped_session
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from .models import APIKeyMixin
from .schema import Models

__all__ = ["KeyLookup"]

#: Where a SQLite connection keeps the keys it read (``Connection.info`` lives as long
#: as the driver's connection does).
_KNOWN = "flask_apikeys.known_keys"
_KNOWN_PER_CONNECTION = 256


@dataclass(frozen=True)
class _Known:
    """A key read on one SQLite connection, and that connection's state then."""

    version: tuple[int, int, int]
    key: APIKeyMixin


class KeyLookup:
    """``find(key_hash)``: the key with its owner, or ``None``, in one SELECT.

    *session* is the host's (scoped) session: its bind for the key model, asked for
    once, is the engine the lookup borrows connections from.
    """

    def __init__(self, session: Session | scoped_session[Session], models: Models) -> None:
        APIKey, User = models.APIKey, models.User
        user_pk = sa.inspect(User).primary_key[0].key
        self.statement = (
            sa.select(APIKey)
            .join(User, APIKey.owner_id == getattr(User, user_pk))
            .options(contains_eager(APIKey.owner))
            .where(APIKey.key_hash == sa.bindparam("key_hash"))
        )
        if models.APIKeyPolicy is not None:  # the organization's policy, in the same SELECT
            self.statement = self.statement.outerjoin(APIKey.organization_policy).options(
                contains_eager(APIKey.organization_policy)
            )
        # In the request's session: never serve its stale copy of a revoked key.
        self._in_session_statement = self.statement.execution_options(populate_existing=True)
        self._session = session
        self._mapper = sa.inspect(APIKey)
        self._where: _Source | None = None

    def find(self, key_hash: str) -> APIKeyMixin | None:
        """The key for *key_hash* with its owner loaded, or ``None``.

        The key is detached from every session, unless the database is SQLite in memory
        (then it is in the request's session).
        """
        source = self._source()
        if source.engine is None:
            return (
                self._session.execute(self._in_session_statement, {"key_hash": key_hash})
                .unique()
                .scalar_one_or_none()
            )
        with source.engine.connect() as connection:
            if not source.versioned:
                return self._select(connection, key_hash)
            version = _sqlite_version(connection)
            known: dict[str, _Known] = connection.info.setdefault(_KNOWN, {})
            seen = known.get(key_hash)
            if seen is not None and seen.version == version:
                return seen.key
            key = self._select(connection, key_hash)
            if key is None:
                known.pop(key_hash, None)
            else:
                if len(known) >= _KNOWN_PER_CONNECTION:
                    known.clear()
                known[key_hash] = _Known(version, key)
            return key

    def _select(self, connection: sa.Connection, key_hash: str) -> APIKeyMixin | None:
        with Session(bind=connection) as session:
            key: APIKeyMixin | None = (
                session.execute(self.statement, {"key_hash": key_hash})
                .unique()
                .scalar_one_or_none()
            )
        return key  # detached by the session's close, everything it loaded kept

    def _source(self) -> _Source:
        if self._where is None:
            bind = self._session.get_bind(mapper=self._mapper)
            self._where = _Source.of(bind if isinstance(bind, sa.Engine) else bind.engine)
        return self._where


@dataclass(frozen=True)
class _Source:
    """How the lookup reaches one engine's database."""

    #: Where connections come from; ``None``: use the request's session.
    engine: sa.Engine | None
    #: SQLite in a file: reuse keys while the connection's data version holds.
    versioned: bool

    @classmethod
    def of(cls, engine: sa.Engine) -> _Source:
        if engine.dialect.name != "sqlite":
            return cls(engine.execution_options(isolation_level="AUTOCOMMIT"), False)
        if isinstance(engine.pool, StaticPool | SingletonThreadPool):
            return cls(None, False)  # in memory: the session's connection is the database
        # The standard library's driver says how many rows its connection changed.
        return cls(engine, engine.dialect.driver == "pysqlite")


#: Moves with every commit of another connection, and with any schema change.
_VERSION_SQL = (
    "SELECT (SELECT data_version FROM pragma_data_version()),"
    " (SELECT schema_version FROM pragma_schema_version())"
)


def _sqlite_version(connection: sa.Connection) -> tuple[int, int, int]:
    """What changes when anything is written to the database: by another connection
    (``data_version``), by this one (``total_changes`` counts its rows written), or to
    the schema by either (``schema_version``)."""
    data_version, schema_version = connection.exec_driver_sql(_VERSION_SQL).one()
    driver = connection.connection.driver_connection
    own_writes = driver.total_changes if isinstance(driver, sqlite3.Connection) else -1
    return int(data_version), int(schema_version), int(own_writes)
