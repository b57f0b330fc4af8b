"""Usage counts and last-used times, without a write per request.

Each process keeps a small in-memory buffer: per key, how many verified requests it
served (in total and per UTC day) and when and from where it was last used.
:meth:`UsageBuffer.record` appends to a list under a lock; the counting is done in
bulk when the buffer is taken for a flush. The buffer is a
:class:`~flask_apikeys.flushing.BufferedWriter`: the process's flusher thread writes it
out every ``interval`` seconds (sooner when ``max_buffered`` uses are waiting), and
:func:`flush_all` writes every buffer of the process at exit.

The writes are atomic increments, so any number of processes and hosts can flush
into the same database and the counts stay exact::

    UPDATE api_keys SET usage_count = usage_count + :delta, ... WHERE id = :id
    INSERT INTO api_key_usage_days (key_id, day, count) VALUES (...)
        ON CONFLICT (key_id, day) DO UPDATE SET count = count + excluded.count

``last_used_at`` only moves forward, and only by at least ``last_used_resolution``
seconds, whatever order the flushers of several processes run in.

A flush runs in one transaction on its own connection (never the request's session).
When it fails, the deltas go back into the buffer and the next flush retries them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..db.models import UTCDateTime, utcnow
from ..keys.network import storable_address
from .flushing import BufferedWriter, flush_all

__all__ = ["UsageBuffer", "UsageSnapshot", "flush_all"]

_EPOCH_DAY = dt.date(1970, 1, 1)


@dataclass
class UsageSnapshot:
    """What a buffer held when it was swapped out for a flush."""

    counts: dict[int, int]
    days: dict[tuple[int, dt.date], int]
    last_used: dict[int, tuple[dt.datetime, str | None]]

    @property
    def uses(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return bool(self.counts) or bool(self.last_used)


class UsageBuffer(BufferedWriter):
    """Buffered usage of one app's keys, flushed to *engine* with atomic increments.

    *engine* is a SQLAlchemy engine or a callable returning one (resolved at the first
    flush); *key_table* and *day_table* are the ``APIKey`` and ``APIKeyUsageDay`` tables.
    ``interval`` of ``0`` or ``None`` starts no flusher thread: call :meth:`flush`
    yourself (tests do), and the buffer is still flushed at exit.
    """

    what = "key usage"
    unit = "uses"

    def __init__(
        self,
        engine: sa.Engine | Callable[[], sa.Engine],
        key_table: sa.Table,
        day_table: sa.Table,
        *,
        interval: float | None = 10.0,
        max_buffered: int = 10_000,
        last_used_resolution: float = 60.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.key_table = key_table
        self.day_table = day_table
        self.last_used_resolution = dt.timedelta(seconds=max(0.0, float(last_used_resolution)))
        self.clock = clock
        self._system_clock = clock is utcnow
        self._update_stmt = self._build_update()
        super().__init__(
            engine, (key_table, day_table), interval=interval, max_buffered=max_buffered
        )

    # -- recording (the hot path) ------------------------------------------------------

    def _reset(self) -> None:
        self._uses: list[tuple[int, str | None, float]] = []
        self._carried = UsageSnapshot({}, {}, {})  # a failed flush's usage, to retry

    def record(self, key_id: int, ip: str | None = None, at: dt.datetime | None = None) -> None:
        """Count one use of *key_id* from *ip* at *at* (default now); no I/O, never raises.

        An append to a list under a lock: the counting is done in bulk when the buffer
        is taken for a flush, off the request.
        """
        if at is None:
            stamp = time.time() if self._system_clock else self.clock().timestamp()
        else:
            stamp = at.timestamp()
        with self._lock:
            uses = self._uses
            uses.append((key_id, ip, stamp))
            waiting = len(uses)
        self._recorded(waiting)

    @property
    def pending(self) -> int:
        """Uses recorded and not yet flushed."""
        with self._lock:
            return len(self._uses) + self._carried.uses

    def snapshot(self) -> UsageSnapshot:
        """Take the buffered usage out of the buffer (the caller must write or restore it)."""
        with self._lock:
            uses, carried = self._uses, self._carried
            self._reset()
            self._mark_clean()
        counts, days, last = carried.counts, carried.days, carried.last_used
        stamps: dict[int, tuple[float, str | None]] = {}
        day_numbers: dict[tuple[int, int], int] = {}
        for key_id, ip, stamp in uses:
            counts[key_id] = counts.get(key_id, 0) + 1
            day_key = (key_id, int(stamp // 86400))
            day_numbers[day_key] = day_numbers.get(day_key, 0) + 1
            latest = stamps.get(key_id)
            if latest is None or stamp >= latest[0]:
                stamps[key_id] = (stamp, ip)
        for (key_id, number), count in day_numbers.items():
            day = _EPOCH_DAY + dt.timedelta(days=number)
            days[(key_id, day)] = days.get((key_id, day), 0) + count
        for key_id, (stamp, ip) in stamps.items():
            at = dt.datetime.fromtimestamp(stamp, dt.UTC)
            previous = last.get(key_id)
            if previous is None or at >= previous[0]:
                last[key_id] = (at, storable_address(ip))
        return UsageSnapshot(counts, days, last)

    def restore(self, taken: UsageSnapshot) -> None:
        """Put back a snapshot whose write failed, merging with what arrived since."""
        with self._lock:
            if taken:
                self._mark_dirty()
            carried = self._carried
            for key_id, delta in taken.counts.items():
                carried.counts[key_id] = carried.counts.get(key_id, 0) + delta
            for day_key, delta in taken.days.items():
                carried.days[day_key] = carried.days.get(day_key, 0) + delta
            for key_id, (at, ip) in taken.last_used.items():
                last = carried.last_used.get(key_id)
                if last is None or at > last[0]:
                    carried.last_used[key_id] = (at, ip)

    # -- flushing ------------------------------------------------------------------------

    def _build_update(self) -> sa.Update:
        t = self.key_table
        advanced = sa.or_(
            t.c.last_used_at.is_(None),
            t.c.last_used_at <= sa.bindparam("u_threshold", type_=UTCDateTime()),
        )
        # SET expressions read the row as it was (SQLite and PostgreSQL), so both
        # CASEs test the old time.
        return (
            sa.update(t)
            .where(t.c.id == sa.bindparam("u_id"))
            .values(
                {
                    t.c.usage_count: t.c.usage_count + sa.bindparam("u_delta", type_=sa.BigInteger),
                    t.c.last_used_ip: sa.case(
                        (advanced, sa.bindparam("u_ip", type_=t.c.last_used_ip.type)),
                        else_=t.c.last_used_ip,
                    ),
                    t.c.last_used_at: sa.case(
                        (advanced, sa.bindparam("u_at", type_=UTCDateTime())),
                        else_=t.c.last_used_at,
                    ),
                }
            )
        )

    def flush(self) -> int:
        """Write the buffer out in one transaction; return how many uses were written.

        Raises when the database refuses, after putting the usage back in the buffer.
        """
        with self._flush_lock:
            taken = self.snapshot()
            if not taken:
                return 0
            try:
                with self.engine.begin() as conn:
                    self._write(conn, taken)
            except BaseException:
                self.restore(taken)
                raise
            return taken.uses

    def _write(self, conn: sa.Connection, taken: UsageSnapshot) -> None:
        # A fixed order (by key id, then day) so that concurrent flushers of several
        # processes lock rows in the same order and cannot deadlock each other.
        rows = []
        for key_id in sorted(taken.counts.keys() | taken.last_used.keys()):
            at, ip = taken.last_used.get(key_id, (None, None))
            rows.append(
                {
                    "u_id": key_id,
                    "u_delta": taken.counts.get(key_id, 0),
                    "u_at": at,
                    "u_ip": ip,
                    "u_threshold": (at - self.last_used_resolution) if at is not None else None,
                }
            )
        if rows:
            conn.execute(self._update_stmt, rows)
        days = [
            {"key_id": key_id, "day": day, "count": count}
            for (key_id, day), count in sorted(taken.days.items())
            if count
        ]
        if days:
            self._upsert_days(conn, days)

    def _upsert_days(self, conn: sa.Connection, days: list[dict[str, Any]]) -> None:
        t = self.day_table
        name = conn.dialect.name
        if name in {"postgresql", "sqlite"}:
            from sqlalchemy.dialects import postgresql, sqlite

            stmt: Any = (postgresql.insert if name == "postgresql" else sqlite.insert)(t)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[t.c.key_id, t.c.day],
                    set_={"count": t.c["count"] + stmt.excluded["count"]},
                ),
                days,
            )
            return
        # Other databases: increment, and insert the rows that did not exist yet.
        update = (
            sa.update(t)
            .where(t.c.key_id == sa.bindparam("d_key"), t.c.day == sa.bindparam("d_day"))
            .values({t.c["count"]: t.c["count"] + sa.bindparam("d_count", type_=sa.BigInteger)})
        )
        for row in days:
            params = {"d_key": row["key_id"], "d_day": row["day"], "d_count": row["count"]}
            if conn.execute(update, params).rowcount == 0:
                conn.execute(sa.insert(t), row)
