"""The request log: what each key did — time, method, path, status, client address.

Nothing is written on the request path. :meth:`RequestLogBuffer.record` decides
whether to keep a request (requests that may change something — any method but
``GET``, ``HEAD`` and ``OPTIONS`` — always; reads with probability ``read_sample``;
refusals — 401, 403, 429 — always, up to ``REFUSALS_PER_FLUSH`` per key per flush)
and appends a tuple to a bounded in-memory buffer. The process's flusher thread
(:mod:`~flask_apikeys.flushing`, shared with the usage counters) inserts the rows in
bulk, in one transaction of its own, and prunes in the same transaction:

* a key's oldest rows beyond ``max_per_key``, each time this process has written a
  tenth of that many rows for the key (so the bound is approximate: a key may hold a
  little more until its next pruning);
* rows older than ``retention``, at the first flush and then at most once an hour.

``flask apikeys prune-requests`` (:meth:`KeyRequestLog.prune_requests`) prunes every
key exactly, e.g. from cron or after lowering the limits.

The path is stored without the query string (it may carry secrets), without control
characters, and cut at :data:`~flask_apikeys.models_requests.PATH_MAX_LENGTH`
characters; the address only when it is a real IP address
(:func:`~flask_apikeys.network.storable_address`).
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

from ..db.models import APIKeyMixin, utcnow
from ..db.requests import METHOD_MAX_LENGTH, PATH_MAX_LENGTH, APIKeyRequestMixin
from ..keys.network import storable_address
from .context import ServiceContext
from .flushing import BufferedWriter

__all__ = [
    "READ_METHODS",
    "REFUSALS",
    "KeyRequestLog",
    "RequestLogBuffer",
    "clean_method",
    "clean_path",
]

logger = logging.getLogger("flask_apikeys")

#: Methods that only read, and so are sampled; every other method is always logged.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Statuses of a refused request: logged whatever the method, up to
#: :data:`REFUSALS_PER_FLUSH` per key between two flushes (a flood stays cheap).
REFUSALS = frozenset({401, 403, 429})
REFUSALS_PER_FLUSH = 20

# key id, time (seconds since the epoch), method, path, status, client address
_Row = tuple[int, float, str, str, int, str | None]

_AGE_PRUNE_EVERY = 3600.0  # seconds between two prunings by age, per process


def clean_path(path: str) -> str:
    """*path* as stored: printable characters only, at most ``PATH_MAX_LENGTH``."""
    if not path.isprintable():
        path = "".join(ch for ch in path if ch.isprintable())
    if len(path) > PATH_MAX_LENGTH:
        path = path[: PATH_MAX_LENGTH - 1] + "…"
    return path or "/"


def clean_method(method: str) -> str:
    """*method* as stored: printable, upper case, at most ``METHOD_MAX_LENGTH``."""
    method = "".join(ch for ch in method[:METHOD_MAX_LENGTH] if ch.isprintable())
    return method.upper() or "?"


class RequestLogBuffer(BufferedWriter):
    """The recent requests of one app's keys, buffered and written to *table*.

    *read_sample* is the share of reads logged (``0``: none, ``1``: all);
    *retention* (a timedelta, or ``None`` to keep rows forever) and *max_per_key*
    (``None``: no cap) bound what the table keeps. At most ``2 * max_buffered``
    requests wait in memory: when the database stays down longer than that, the oldest
    are dropped (and a warning says how many).
    """

    what = "the request log"
    unit = "requests"

    def __init__(
        self,
        engine: sa.Engine | Callable[[], sa.Engine],
        table: sa.Table,
        *,
        read_sample: float = 0.1,
        retention: dt.timedelta | None = dt.timedelta(days=30),
        max_per_key: int | None = 1000,
        interval: float | None = 10.0,
        max_buffered: int = 10_000,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        if not 0.0 <= read_sample <= 1.0:
            raise ValueError(f"read_sample must be between 0 and 1, not {read_sample!r}")
        if max_per_key is not None and max_per_key < 1:
            raise ValueError("max_per_key must be at least 1 (or None: no cap)")
        self.table = table
        self.read_sample = float(read_sample)
        self.retention = retention
        self.max_per_key = max_per_key
        self.clock = clock
        self._system_clock = clock is utcnow
        self._capacity = 2 * max(1, int(max_buffered))
        self._dropped = 0
        # Rows this process wrote per key since it last pruned the key (flush lock).
        self._since_pruned: dict[int, int] = {}
        self._prune_after = max(1, (max_per_key or 0) // 10)
        self._next_age_prune = 0.0
        self._insert = sa.insert(table)
        super().__init__(engine, (table,), interval=interval, max_buffered=max_buffered)

    def _reset(self) -> None:
        self._rows: collections.deque[_Row] = collections.deque(maxlen=self._capacity)
        self._refusals: dict[int, int] = {}  # refusals kept per key since the last flush

    # -- recording (the request path) ----------------------------------------------------

    def sampled(self, method: str) -> bool:
        """Whether a request with *method* is to be logged (a random draw for reads)."""
        if method not in READ_METHODS:
            return True
        rate = self.read_sample
        # Sampling, not security: the cheapest draw will do.
        return rate >= 1.0 or (rate > 0.0 and random.random() < rate)  # noqa: S311  # nosec B311

    def refusal_kept(self, key_id: int) -> bool:
        """Whether to log a refused request of *key_id* (:data:`REFUSALS`): every one,
        up to :data:`REFUSALS_PER_FLUSH` per key until the next flush."""
        with self._lock:
            kept = self._refusals.get(key_id, 0)
            if kept >= REFUSALS_PER_FLUSH:
                return False
            self._refusals[key_id] = kept + 1
        return True

    def record(
        self,
        key_id: int,
        method: str,
        path: str,
        status: int,
        ip: str | None = None,
        at: dt.datetime | None = None,
    ) -> bool:
        """Log one request of *key_id* if it is :meth:`sampled` (a refusal: if it is
        :meth:`refusal_kept`); return whether it was.

        No I/O and never raises: an append under a lock. *path* must not hold the
        query string; it is cleaned when written.
        """
        if not (self.refusal_kept(key_id) if status in REFUSALS else self.sampled(method)):
            return False
        self.add(key_id, method, path, status, ip, at)
        return True

    def add(
        self,
        key_id: int,
        method: str,
        path: str,
        status: int,
        ip: str | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        """Log one request whatever its method (the caller sampled it)."""
        if at is None:
            stamp = time.time() if self._system_clock else self.clock().timestamp()
        else:
            stamp = at.timestamp()
        row = (key_id, stamp, method, path[: PATH_MAX_LENGTH + 1], status, ip)
        with self._lock:
            rows = self._rows
            if len(rows) == self._capacity:
                self._dropped += 1  # the append below pushes the oldest out
            rows.append(row)
            waiting = len(rows)
        self._recorded(waiting)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def snapshot(self) -> list[_Row]:
        """Take the buffered requests out (the caller must write or restore them)."""
        with self._lock:
            rows = self._rows
            self._reset()
            self._mark_clean()
        return list(rows)

    def restore(self, taken: Iterable[_Row]) -> None:
        """Put back requests whose write failed, before those that arrived since."""
        taken = list(taken)
        with self._lock:
            arrived = self._rows
            merged = collections.deque(itertools.chain(taken, arrived), maxlen=self._capacity)
            self._dropped += len(taken) + len(arrived) - len(merged)
            self._rows = merged
            if merged:
                self._mark_dirty()

    # -- flushing --------------------------------------------------------------------------

    def flush(self) -> int:
        """Write the buffered requests (and prune) in one transaction; return how many
        requests were written. Raises when the database refuses, after putting the
        requests back in the buffer."""
        with self._flush_lock:
            taken = self.snapshot()
            with self._lock:
                dropped, self._dropped = self._dropped, 0
            if dropped:
                logger.warning(
                    "flask-apikeys dropped %d requests from the request log: the buffer "
                    "was full (is the database reachable?)",
                    dropped,
                )
            if not taken:
                return 0
            now = time.monotonic()
            since = dict(self._since_pruned)
            if self.max_per_key is not None:
                for row in taken:
                    since[row[0]] = since.get(row[0], 0) + 1
            prune_keys = sorted(k for k, n in since.items() if n >= self._prune_after)
            prune_age = self.retention is not None and now >= self._next_age_prune
            values = [_values(row) for row in taken]
            try:
                with self.engine.begin() as conn:
                    conn.execute(self._insert, values)
                    if self.max_per_key is not None:
                        for key_id in prune_keys:
                            prune_key(conn, self.table, key_id, self.max_per_key)
                    if prune_age and self.retention is not None:
                        prune_older_than(conn, self.table, self.clock() - self.retention)
            except BaseException:
                self.restore(taken)
                raise
            for key_id in prune_keys:
                since.pop(key_id, None)
            self._since_pruned = since
            if prune_age:
                self._next_age_prune = now + _AGE_PRUNE_EVERY
            return len(taken)


def _values(row: _Row) -> dict[str, Any]:
    key_id, stamp, method, path, status, ip = row
    return {
        "key_id": key_id,
        "at": dt.datetime.fromtimestamp(stamp, dt.UTC),
        "method": clean_method(method),
        "path": clean_path(path),
        "status": status if 0 <= status <= 32767 else 0,
        "ip": storable_address(ip),
    }


def prune_key(conn: sa.Connection, table: sa.Table, key_id: int, keep: int) -> int:
    """Delete the rows of *key_id* beyond its newest *keep*; return how many went."""
    t = table
    newest_first = (t.c.at.desc(), t.c.id.desc())
    first_gone = conn.execute(
        sa.select(t.c.at, t.c.id)
        .where(t.c.key_id == key_id)
        .order_by(*newest_first)
        .offset(keep)
        .limit(1)
    ).first()
    if first_gone is None:
        return 0
    at, row_id = first_gone
    older = sa.or_(t.c.at < at, sa.and_(t.c.at == at, t.c.id <= row_id))
    return int(conn.execute(sa.delete(t).where(t.c.key_id == key_id, older)).rowcount)


def prune_older_than(conn: sa.Connection, table: sa.Table, cutoff: dt.datetime) -> int:
    """Delete the rows logged before *cutoff*; return how many went."""
    return int(conn.execute(sa.delete(table).where(table.c.at < cutoff)).rowcount)


class KeyRequestLog:
    """Each key's recent requests: ``service.requests``."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context

    def _request_model(self) -> type[APIKeyRequestMixin]:
        model = self.context.models.APIKeyRequest
        if model is None:
            raise RuntimeError("the request log's model was not made (see build_models)")
        return model

    def recent_requests(self, key: APIKeyMixin, limit: int = 50) -> list[APIKeyRequestMixin]:
        """The logged requests of *key*, newest first (at most *limit*).

        Each row has ``at``, ``method``, ``path`` (never the query string), ``status``
        (as sent) and ``ip``. Reads are sampled (``APIKEYS_REQUEST_LOG_READ_SAMPLE``),
        and rows reach the table when the process's buffer is flushed.
        """
        Request = self._request_model()
        stmt = (
            sa.select(Request)
            .where(Request.key_id == key.id)
            .order_by(Request.at.desc(), Request.id.desc())
            .limit(max(0, int(limit)))
        )
        return list(self.context.session.execute(stmt).scalars())

    def prune_requests(
        self, *, older_than: dt.datetime | None = None, max_per_key: int | None = None
    ) -> int:
        """Delete logged requests from before *older_than*, and each key's beyond its
        newest *max_per_key*; commit and return how many rows went."""
        if max_per_key is not None and max_per_key < 0:
            raise ValueError("max_per_key must not be negative")
        table = self._request_model().__table__
        conn = self.context.session.connection()
        deleted = 0
        if older_than is not None:
            deleted += prune_older_than(conn, table, older_than)
        if max_per_key is not None:
            crowded = conn.execute(
                sa.select(table.c.key_id)
                .group_by(table.c.key_id)
                .having(sa.func.count() > max_per_key)
                .order_by(table.c.key_id)
            ).scalars()
            for key_id in list(crowded):
                deleted += prune_key(conn, table, key_id, max_per_key)
        self.context.session.commit()
        return deleted
