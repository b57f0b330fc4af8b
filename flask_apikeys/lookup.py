"""The key lookup of the hot path: one SELECT, little ORM work, never a stale answer.

Every request runs the same single SELECT as the ORM would (the key, its owner and
whatever the host's user model loads eagerly with it, e.g. memberships), on a
connection each worker thread keeps in autocommit mode: no ``BEGIN``/``ROLLBACK``
round trips, and every SELECT sees the latest committed revocation.

Turning rows into ORM objects is most of the cost of an ORM query, so each thread
remembers, per key, the rows it last saw and the objects it made from them. When a
request's rows are *identical* to those, the objects are reused (attached to the
request's session); when anything differs — a revocation, an expiry, a deactivated
owner, a changed membership — the objects are made again from the new rows. The
decision always comes from the rows just read: this caches object construction,
never validity. Objects that were changed, expired or deleted in a session since
are never reused. The SELECT always goes through SQLAlchemy's execution machinery, so
statement listeners (tracing, the tests that count statements) see exactly what runs.

Layer 3: SQLAlchemy only, no Flask.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.cursor import FullyBufferedCursorFetchStrategy
from sqlalchemy.orm import InstanceState, Session, contains_eager

__all__ = ["KeyLookup"]

_MAX_CACHED = 1024  # keys per thread


class KeyLookup:
    """``lookup(key_hash) -> APIKey | None`` over *session* (a ``scoped_session``)."""

    def __init__(self, session: Any, api_key: Any, user: Any, user_pk: str) -> None:
        self._session = session
        self._api_key = api_key
        self._user = user
        self._user_pk = user_pk
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
        self._watched: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
        self._connections: list[sa.Connection] = []  # every thread's, to close them all
        self._connections_lock = threading.Lock()
        weakref.finalize(self, _close_all, self._connections, self._connections_lock)
        #: Whether the per-thread autocommit connection is used (not for in-memory SQLite).
        self.own_connection = True

    def __call__(self, key_hash: str) -> Any:
        session: Session = self._session()
        cache: dict[str, _Loaded] = self._local.__dict__.setdefault("cache", {})
        cached = cache.get(key_hash)
        if cached is not None:
            rows = self._rows(session, key_hash)
            if not rows:
                cache.pop(key_hash, None)
                return None
            if cached.rows == rows and _reattach(cached.states, session):
                return cached.key
            # Something changed since: the objects are made again (a second SELECT,
            # once per change and thread).
        key, rows = self._load(session, key_hash)
        if key is None:
            cache.pop(key_hash, None)
            return None
        if len(cache) >= _MAX_CACHED:
            cache.pop(next(iter(cache)))
        cache[key_hash] = _Loaded(rows, key, _loaded_graph(key))
        return key

    def _rows(self, session: Session, key_hash: str) -> tuple[Any, ...]:
        """The raw rows of the lookup, on this thread's autocommit connection."""
        conn, owned = self._connection(session)
        textual = self._textual(conn)
        params = {"key_hash": key_hash}
        try:
            result = conn.execute(textual, params)
        except sa.exc.DBAPIError:
            if not owned:
                raise
            self._drop_connection()  # e.g. the server restarted: one retry, fresh connection
            conn, _ = self._connection(session)
            result = conn.execute(textual, params)
        return tuple(tuple(row) for row in result.fetchall())

    def _textual(self, conn: sa.Connection) -> sa.TextualSelect:
        """The lookup's SQL as text with untyped columns: the same SELECT as the ORM's,
        compiled once, its rows compared as the driver returns them (no conversion)."""
        cached: tuple[Any, sa.TextualSelect] | None = getattr(self._local, "textual", None)
        if cached is None or cached[0] is not conn.dialect:
            compiled = self.statement.compile(
                dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
            )
            width = len(compiled._result_columns)
            sql = compiled.string
            for name in compiled.bind_names.values():  # back to a named parameter
                sql = sql.replace(compiled.bindtemplate % {"name": name}, f"(:{name})")
            textual = sa.text(sql).columns(*(sa.column(f"c{i}") for i in range(width)))
            cached = self._local.textual = (conn.dialect, textual)
        return cached[1]

    def _load(self, session: Session, key_hash: str) -> tuple[Any, tuple[Any, ...]]:
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
        return key, tuple(tuple(row) for row in rows or ())

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
        local.captured = rows
        context.cursor_fetch_strategy = FullyBufferedCursorFetchStrategy(cursor, None, rows)

    # -- connections ------------------------------------------------------------------------

    def _connection(self, session: Session) -> tuple[sa.Connection, bool]:
        if self._engine is None:
            bind = session.get_bind(mapper=sa.inspect(self._api_key))
            if not isinstance(bind, sa.Engine):
                raise RuntimeError("flask-apikeys' key lookup needs the session bound to an Engine")
            self._engine = bind
            url = bind.url
            if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
                self.own_connection = False  # one database per connection: use the session's
        if not self.own_connection:
            return session.connection(bind_arguments={"mapper": sa.inspect(self._api_key)}), False
        local = self._local
        conn: sa.Connection | None = getattr(local, "conn", None)
        if conn is None or conn.closed or getattr(local, "pid", None) != os.getpid():
            if self._engine not in self._watched:
                self._watch_engine(self._engine)
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            local.conn, local.pid = conn, os.getpid()
            with self._connections_lock:
                self._connections.append(conn)
        return conn, True

    def close(self) -> None:
        """Close every thread's connection (they reopen on the next lookup)."""
        _close_all(self._connections, self._connections_lock)

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is broken already; a new one follows
                conn.invalidate()
                conn.close()


@dataclass(frozen=True)
class _Loaded:
    """What one thread made from a key's rows: the rows, the key, and every object
    loaded with it (the key, its owner, whatever the user model loads eagerly)."""

    rows: tuple[Any, ...]
    key: Any
    states: tuple[InstanceState[Any], ...]


def _loaded_graph(key: Any) -> tuple[InstanceState[Any], ...]:
    """The states ``session.add(key)`` would cascade to, found once per load rather than
    walked again on every request (attaching then takes 11 µs instead of 25 µs)."""
    state = sa.inspect(key)
    graph = [state]
    graph.extend(s for _, _, s, _ in state.mapper.cascade_iterator("save-update", state))
    return tuple(graph)


def _reattach(states: tuple[InstanceState[Any], ...], session: Session) -> bool:
    """Attach the objects made last time to *session*, if they are all still as loaded."""
    for state in states:
        if state.expired_attributes or state.modified or state.deleted or state.was_deleted:
            return False
    attached = {state.session_id for state in states}
    if attached == {session.hash_key}:
        return True
    if attached != {None}:
        return False  # still in another live session: make fresh objects
    attach = getattr(session, "_save_or_update_impl", None)
    try:
        if attach is None:  # pragma: no cover - another SQLAlchemy: the plain cascade
            session.add(states[0].obj())
        else:
            for state in states:  # what session.add(key) does, without the walk
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
