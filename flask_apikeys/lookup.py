"""The key lookup of the hot path: one SELECT on the driver, no ORM work, never stale.

Every request runs the same single SELECT as the ORM would (the key, its owner and
whatever the host's user model loads eagerly with it, e.g. memberships), straight on the
driver connection that each worker thread keeps in autocommit mode: no ``BEGIN`` or
``ROLLBACK`` round trips, no SQLAlchemy execution machinery (three quarters of the
lookup's cost on SQLite), and every SELECT sees the latest committed revocation.

Turning rows into ORM objects is the other big cost, so each thread remembers, per key,
the rows it last saw and the objects the ORM made from them. When a request's rows are
*identical* to those, the objects are reused; when anything differs — a revocation, an
expiry, a deactivated owner, a changed membership — the ORM makes them again from a
fresh SELECT. The decision always comes from the rows just read: this caches object
construction, never validity. Objects that were changed, expired or deleted in a session
since are never reused.

Reused objects are handed out *detached*: the library's own checks only read columns
that were loaded with them. :meth:`KeyLookup.attach` puts them in the request's session
when something asks for them (``current_key.key``, ``current_key.owner``), so views
still get live ORM objects that lazy-load and persist changes.

Because the SELECT does not go through SQLAlchemy, engine statement events do not see
it; ``APIKEYS_FAST_LOOKUP = False`` runs the plain ORM query instead.

Layer 3: SQLAlchemy only, no Flask.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine.cursor import FullyBufferedCursorFetchStrategy
from sqlalchemy.orm import InstanceState, Session, contains_eager

__all__ = ["KeyLookup"]

_MAX_CACHED = 1024  # keys per thread
_fork_generation = 0  # a forked child must not use its parent's connections


def _forked() -> None:
    global _fork_generation
    _fork_generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class KeyLookup:
    """``find(key_hash) -> APIKey | None`` over *session* (a ``scoped_session``)."""

    def __init__(self, session: Any, api_key: Any, user: Any, user_pk: str) -> None:
        self._session = session
        self._api_key = api_key
        self.statement = (
            sa.select(api_key)
            .join(user, api_key.owner_id == getattr(user, user_pk))
            .options(contains_eager(api_key.owner))
            .where(api_key.key_hash == sa.bindparam("key_hash"))
        )
        # A long-lived session must not serve a stale, unrevoked copy of the key.
        self._orm_statement = self.statement.execution_options(populate_existing=True)
        self._local = threading.local()
        self._engine: sa.Engine | None = None
        self._driver_sql: tuple[str, Callable[[str], Any]] | None = None
        self._watched: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
        self._connections: list[sa.Connection] = []  # every thread's, to close them all
        self._connections_lock = threading.Lock()
        weakref.finalize(self, _close_all, self._connections, self._connections_lock)
        #: Whether the per-thread autocommit connection is used (not for in-memory SQLite).
        self.own_connection = True
        self._versioned: bool | None = None  # SQLite on our own connection

    def find(self, key_hash: str) -> Any:
        """The key for *key_hash* with its owner, or ``None``: one SELECT.

        The key may be detached from every session (reused from an earlier request of
        this thread); its loaded columns and eagerly loaded relationships can be read,
        :meth:`attach` makes it a live object of the request's session.
        """
        cache: dict[str, _Loaded] = self._local.__dict__.setdefault("cache", {})
        cached = cache.get(key_hash)
        version = self._data_version()
        if cached is not None:
            if version is not None and version == cached.version:
                # SQLite: no other connection has committed anything since these rows
                # were read, so they are still what a SELECT would return.
                if self._reusable(cached):
                    return cached.key
            else:
                rows = self._rows(key_hash)
                if not rows:
                    cache.pop(key_hash, None)
                    return None
                if cached.rows == rows and self._reusable(cached):
                    cached.version = version
                    return cached.key
            # Something changed since: the objects are made again (a second SELECT,
            # once per change and thread).
        key, rows = self._load(self._session(), key_hash)
        if key is None:
            cache.pop(key_hash, None)
            return None
        if len(cache) >= _MAX_CACHED:
            cache.pop(next(iter(cache)))
        graph = _loaded_graph(key)
        keys = tuple(frozenset(state.dict) for state in graph)
        cache[key_hash] = _Loaded(rows, key, graph, keys, version)
        return key

    def _data_version(self) -> int | None:
        """SQLite's ``PRAGMA data_version`` on this thread's connection: it changes
        whenever another connection commits. ``None`` for other databases."""
        if not self._versioned:
            if self._versioned is None:
                self._versioned = self._bind().dialect.name == "sqlite" and self.own_connection
            if not self._versioned:
                return None
        cursor, _ = self._cursor()
        cursor.execute("PRAGMA data_version")
        return cast(int, cursor.fetchone()[0])

    def attach(self, key: Any) -> Any:
        """*key*, with its owner and everything loaded with them, in the request's session.

        Returns *key* itself, or the session's own copy, loaded afresh, when the session
        already holds other copies of these rows.
        """
        session: Session = self._session()
        state = sa.inspect(key)
        if state.session_id == session.hash_key:
            return key
        cached = self._local.__dict__.get("cache", {}).get(key.key_hash)
        graph = cached.states if cached is not None and cached.key is key else _loaded_graph(key)
        if _attach(graph, session):
            return key
        return self._load(session, key.key_hash)[0]

    def _reusable(self, loaded: _Loaded) -> bool:
        """Whether objects made earlier can stand for the rows just read again.

        Whatever was loaded into them since (a lazy relationship a view or the
        permissions loader read) is unloaded again: the rows do not vouch for it, so it
        is read afresh, in the session, when asked for."""
        states = loaded.states
        for state, keys in zip(states, loaded.keys, strict=True):
            if not _unchanged(state):
                return False
            values = state.dict
            if len(values) != len(keys):
                for name in values.keys() - keys:
                    del values[name]
        attached = {state.session_id for state in states}
        if attached == {None}:
            return True
        # Still in a session: only this scope's own (a request that looks twice).
        registry = self._session.registry
        return registry.has() and attached == {registry().hash_key}

    # -- the SELECT ---------------------------------------------------------------------------

    def _rows(self, key_hash: str) -> list[Any]:
        """The raw rows of the lookup, as the driver returns them."""
        select, dbapi_error = self._select()
        try:
            return select(key_hash)
        except dbapi_error as exc:
            if not self.own_connection:
                raise
            first_error = exc
        self._drop_connection()  # e.g. the server restarted: one retry, fresh connection
        select, dbapi_error = self._select()
        try:
            return select(key_hash)
        except dbapi_error as exc:
            sql = self._driver_sql[0] if self._driver_sql else ""
            raise sa.exc.DBAPIError.instance(sql, None, exc, dbapi_error) from first_error

    def _select(self) -> tuple[Callable[[str], list[Any]], type[Exception]]:
        """This thread's way to run the SELECT, and the driver's error class."""
        cursor, dbapi_error = self._cursor()
        if not self.own_connection:  # the session's cursor, new each time
            return self._cursor_select(cursor), dbapi_error
        local = self._local
        if local.select is None:  # set when the connection was opened: None but on psycopg
            local.select = self._cursor_select(cursor)
        return local.select, dbapi_error

    def _cursor_select(self, cursor: Any) -> Callable[[str], list[Any]]:
        sql, params = self._driver_sql or self._compile(self._dialect())

        def select(key_hash: str) -> list[Any]:
            cursor.execute(sql, params(key_hash))
            return _undecoded_rows(cursor)

        return select

    def _compile(self, dialect: sa.Dialect) -> tuple[str, Callable[[str], Any]]:
        """The ORM's SELECT in the driver's own SQL and parameter style, compiled once."""
        compiled = self.statement.compile(
            dialect=dialect, compile_kwargs={"render_postcompile": True}
        )
        names = list(compiled.positiontup or ()) if dialect.positional else list(compiled.binds)
        if names != ["key_hash"]:  # pragma: no cover - the statement above has one parameter
            raise RuntimeError(f"unexpected parameters in the key lookup: {names}")
        params: Callable[[str], Any]
        if dialect.positional:
            params = lambda key_hash: (key_hash,)  # noqa: E731
        else:
            params = lambda key_hash: {"key_hash": key_hash}  # noqa: E731
        self._driver_sql = (compiled.string, params)
        return self._driver_sql

    def _prepared_select(self, dbapi_connection: Any) -> _PreparedSelect | None:
        """psycopg 3 on our own connection: the SELECT prepared once, run through libpq."""
        dialect = self._dialect()
        if dialect.driver != "psycopg" or dialect.paramstyle != "pyformat":
            return None
        if not hasattr(dbapi_connection, "pgconn") or _green():
            return None
        sql = (self._driver_sql or self._compile(dialect))[0]
        if sql.count("%(key_hash)s") != 1:  # pragma: no cover - the statement has one parameter
            return None
        # pyformat doubles every literal %; libpq's own style is $1 and a plain %.
        sql = sql.replace("%(key_hash)s", "$1").replace("%%", "%")
        # prepare_threshold=None means "never prepare" (e.g. behind PgBouncer's
        # transaction pooling): respected here too.
        return _PreparedSelect(
            dbapi_connection, sql, dbapi_connection.prepare_threshold is not None
        )

    def _load(self, session: Session, key_hash: str) -> tuple[Any, list[Any]]:
        """The key through the ORM, with the raw rows it was made from (one SELECT)."""
        self._watch(session)
        local = self._local
        local.capturing, local.captured = True, None
        try:
            key = session.execute(self._orm_statement, {"key_hash": key_hash}).scalars().first()
        finally:
            local.capturing = False
        rows = local.captured
        local.captured = None
        return key, list(rows or ())

    def _watch(self, session: Session) -> None:
        engine = session.get_bind(mapper=sa.inspect(self._api_key))
        if isinstance(engine, sa.Engine) and engine not in self._watched:
            self._watch_engine(engine)

    def _watch_engine(self, engine: sa.Engine) -> None:
        self._watched.add(engine)
        sa.event.listen(engine, "after_cursor_execute", self._capture)
        # engine.dispose() (after a fork, at test teardown) also closes our connections.
        sa.event.listen(engine, "engine_disposed", lambda _engine: self.close())

    def _capture(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        """Keep the raw rows of our own ORM lookup, and hand them on to the ORM."""
        local = self._local
        if not getattr(local, "capturing", False) or context is None or many:
            return
        if getattr(context, "invoked_statement", None) is not self._orm_statement:
            return  # e.g. the autoflush before our SELECT
        if cursor.description is None:
            return
        local.capturing = False
        rows = cursor.fetchall()
        local.captured = _undecoded_rows(cursor, rows)
        context.cursor_fetch_strategy = FullyBufferedCursorFetchStrategy(cursor, None, rows)

    # -- connections ------------------------------------------------------------------------

    def _dialect(self) -> sa.Dialect:
        return self._bind().dialect

    def _bind(self) -> sa.Engine:
        if self._engine is None:
            bind = self._session().get_bind(mapper=sa.inspect(self._api_key))
            if not isinstance(bind, sa.Engine):
                raise RuntimeError("flask-apikeys' key lookup needs the session bound to an Engine")
            url = bind.url
            if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
                self.own_connection = False  # one database per connection: use the session's
            self._engine = bind
        return self._engine

    def _cursor(self) -> tuple[Any, type[Exception]]:
        """A driver cursor: this thread's own (autocommit), or the session's connection's."""
        engine = self._bind()
        dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        local = self._local
        if local.__dict__.get("generation") == _fork_generation and local.cursor is not None:
            return local.cursor, dbapi_error
        if not self.own_connection:
            conn = self._session().connection(bind_arguments={"mapper": sa.inspect(self._api_key)})
            return conn.connection.dbapi_connection.cursor(), dbapi_error
        if engine not in self._watched:
            self._watch_engine(engine)
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        with self._connections_lock:
            self._connections.append(conn)
        local.conn = conn
        dbapi_connection = conn.connection.dbapi_connection
        local.cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
        local.select = self._prepared_select(dbapi_connection)
        local.generation = _fork_generation
        return local.cursor, dbapi_error

    def close(self) -> None:
        """Close every thread's connection (they reopen on the next lookup)."""
        _close_all(self._connections, self._connections_lock)
        self._local = threading.local()

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = self._local.cursor = self._local.select = None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is broken already; a new one follows
                conn.invalidate()
                conn.close()


@dataclass
class _Loaded:
    """What one thread made from a key's rows: the rows, the key, every object loaded
    with it (the key, its owner, whatever the user model loads eagerly), and SQLite's
    data version when the rows were last read."""

    rows: list[Any]
    key: Any
    states: tuple[InstanceState[Any], ...]
    keys: tuple[frozenset[str], ...]  # the attributes each object had when loaded
    version: int | None = None


def _undecoded_rows(cursor: Any, fetched: list[Any] | None = None) -> list[Any]:
    """The rows as compared from one request to the next: psycopg 3's undecoded bytes
    (decoding timestamps and JSON costs more than the comparison), else the rows."""
    result = getattr(cursor, "pgresult", None)
    if result is None:
        return fetched if fetched is not None else cast(list[Any], cursor.fetchall())
    return _result_rows(result)


def _green() -> bool:
    """Whether gevent has patched this process: psycopg then waits for the server
    cooperatively, where a blocking libpq call would stall every greenlet."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("select"))


def _result_rows(result: Any) -> list[Any]:
    """A libpq result's rows as bytes, undecoded."""
    fields = range(result.nfields)
    get = result.get_value
    return [tuple([get(row, field) for field in fields]) for row in range(result.ntuples)]


class _PreparedSelect:
    """The lookup on a psycopg 3 connection, straight through libpq.

    Prepared once per connection and then one ``PQexecPrepared`` per request: psycopg's
    cursor (query conversion, its own prepared-statement bookkeeping) costs more client
    CPU than the round trip itself. The connection is in autocommit mode and used by one
    thread only, so psycopg's own state is not disturbed. Results are text, like the
    ORM's, so rows read here compare equal to the rows the ORM made objects from.
    """

    NAME = b"flask_apikeys_key_lookup"

    def __init__(self, dbapi_connection: Any, sql: str, prepare: bool) -> None:
        from psycopg import OperationalError, pq

        self._pgconn = dbapi_connection.pgconn
        self._status = pq.ExecStatus
        self._error = OperationalError
        self.sql = sql.encode()
        self._prepare = prepare
        self._prepared = False

    def __call__(self, key_hash: str) -> list[Any]:
        pgconn, params = self._pgconn, [key_hash.encode()]
        if not self._prepare:
            return _result_rows(self._checked(pgconn.exec_params(self.sql, params)))
        if not self._prepared:
            self._checked(pgconn.prepare(self.NAME, self.sql), self._status.COMMAND_OK)
            self._prepared = True
        return _result_rows(self._checked(pgconn.exec_prepared(self.NAME, params)))

    def _checked(self, result: Any, expected: int | None = None) -> Any:
        if result.status != (self._status.TUPLES_OK if expected is None else expected):
            # Retried once on a fresh connection (a restarted server, a DISCARD ALL, a
            # changed table all end here), then raised as SQLAlchemy's DBAPIError.
            message = result.error_message or self._pgconn.error_message
            raise self._error(message.decode(errors="replace").strip() or "key lookup failed")
        return result


def _loaded_graph(key: Any) -> tuple[InstanceState[Any], ...]:
    """The states ``session.add(key)`` would cascade to, found once per load rather than
    walked again on every attach (attaching then takes 11 µs instead of 25 µs)."""
    state = sa.inspect(key)
    graph = [state]
    graph.extend(s for _, _, s, _ in state.mapper.cascade_iterator("save-update", state))
    return tuple(graph)


def _unchanged(state: InstanceState[Any]) -> bool:
    """Whether an object is still exactly as loaded: not changed, expired or deleted."""
    # ``_deleted`` is what ``deleted`` and ``was_deleted`` both come down to, read
    # without their chain of properties (this runs for every object on every request).
    return not (state.expired_attributes or state.modified or state._deleted)


def _attach(states: tuple[InstanceState[Any], ...], session: Session) -> bool:
    """Attach detached, unchanged objects to *session*; ``False`` when it cannot be done."""
    for state in states:
        if not _unchanged(state):
            return False
        if state.session_id not in (None, session.hash_key):
            return False  # still in another live session: make fresh objects
    attach = getattr(session, "_save_or_update_impl", None)
    try:
        if attach is None:  # pragma: no cover - another SQLAlchemy: the plain cascade
            session.add(states[0].obj())
        else:
            for state in states:  # what session.add(key) does, without the walk
                if state.session_id is None:
                    attach(state)
    except sa.exc.InvalidRequestError:
        return False  # the session holds other copies of these rows: load into those
    return True


def _close_all(connections: list[sa.Connection], lock: threading.Lock) -> None:
    with lock:
        taken = list(connections)
        connections.clear()
    for conn in taken:
        with contextlib.suppress(Exception):  # closing is best effort
            # Invalidate: really close the DBAPI connection, also when its pool is
            # gone (engine.dispose() replaced it), rather than return it to the pool.
            conn.invalidate()
            conn.close()
