"""Quotas: N calls a day, a month, or in total (optionally refilled), counted exactly.

A key's quota is three columns: ``quota_limit`` (N), ``quota_period`` (``"day"``,
``"month"`` or ``"total"``) and ``quota_refill`` (``None``, ``"day"`` or ``"month"``,
for a total only). Days and months are calendar days and months in one time zone
(``APIKEYS_QUOTA_TIMEZONE``); a total without refill never resets. A total refilled
every month counts exactly like N a month: it is the same budget, said the way
usage-based products say it ("50,000 calls, topped up on the 1st").

Each call is counted by one atomic operation that cannot go past N, so any number of
processes and hosts share a quota exactly, and a refused call is not counted:

* in the database (the default), one statement on a counter row per key and period::

    INSERT INTO api_key_quota_counters (key_id, period_start, used) VALUES (:k, :p, 1)
    ON CONFLICT (key_id, period_start) DO UPDATE SET used = used + 1 WHERE used < :limit
    RETURNING used

  (PostgreSQL, and SQLite 3.35 or newer; no row comes back when the quota is used up);
* in Redis (:mod:`flask_apikeys.quota_redis`), a Lua script doing the same on a
  counter that expires after its period.

Only keys with a quota pay for this; the others cost nothing more.
SQLAlchemy only, no Flask.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from .validation import RequestRefused

__all__ = [
    "PERIODS",
    "REFILLS",
    "DatabaseQuotaStore",
    "Period",
    "Quota",
    "QuotaDecision",
    "QuotaStore",
    "QuotaUsage",
    "current_period",
    "packed_quota",
    "parse_quota",
    "quota_timezone",
    "unpack_quota",
]


PERIODS = ("day", "month", "total")
REFILLS = ("day", "month")
#: The period of a total without refill: it starts once and never ends.
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MAX_LIMIT = 10**12
_QUOTA_RE = re.compile(r"(\d[\d_,]*)\s*/\s*([a-z]+)\Z")
_UNITS = {"day": "a day", "month": "a month"}
_THIS = {"day": "today", "month": "this month"}


@dataclass(frozen=True)
class Quota:
    """*limit* calls per *period*; a ``"total"`` may be refilled every *refill*."""

    limit: int
    period: str
    refill: str | None = None
    #: The key whose counter the calls count on (the first of a rotation chain);
    #: ``None`` for a quota not read from a key.
    counter_id: int | None = field(default=None, compare=False)

    @classmethod
    def of(cls, key: Any) -> Quota | None:
        """The quota of *key* (an ``APIKey``), or ``None`` when it has none."""
        limit = key.quota_limit
        if limit is None:
            return None
        return cls(limit, key.quota_period, key.quota_refill, key.quota_counter_id or key.id)

    @property
    def resets(self) -> str | None:
        """``"day"`` or ``"month"``: when the count starts again (``None``: never)."""
        return self.refill if self.period == "total" else self.period

    @property
    def text(self) -> str:
        """``"1000/month"``, ``"50000/total"``: what :func:`parse_quota` reads."""
        return f"{self.limit}/{self.period}"

    def describe(self) -> str:
        """For people: "1,000 calls a month", "50,000 calls, refilled every month"."""
        calls = f"{self.limit:,} call{'s' if self.limit != 1 else ''}"
        if self.period in _UNITS:
            return f"{calls} {_UNITS[self.period]}"
        if self.refill is None:
            return f"{calls} in total"
        return f"{calls}, refilled every {self.refill}"

    def __str__(self) -> str:
        return self.text if self.refill is None else f"{self.text} (refill {self.refill})"


def packed_quota(api_key: Any) -> sa.ColumnElement[Any]:
    """A key's quota as one column of the key check's SELECT (four columns would cost the
    driver four times as much on every request): ``limit/period/refill/counter``, or
    ``NULL`` for a key without a quota."""
    keys = api_key.__table__.c
    text = sa.String()
    packed: sa.ColumnElement[Any] = (
        sa.cast(keys.quota_limit, text)
        + "/"
        + keys.quota_period
        + "/"
        + sa.func.coalesce(keys.quota_refill, "")
        + "/"
        + sa.cast(sa.func.coalesce(keys.quota_counter_id, keys.id), text)
    )
    return packed


def unpack_quota(row: Any) -> Quota | None:
    """The quota :func:`packed_quota` read for a presented key (``None``: no quota)."""
    packed: str | None = row.quota
    if packed is None:
        return None
    limit, period, refill, counter = packed.split("/")
    return Quota(int(limit), period, refill or None, int(counter))


def parse_quota(text: str, refill: str | None = None) -> Quota:
    """``"1000/day"``, ``"1000/month"`` or ``"50000/total"`` (with *refill* ``"day"``
    or ``"month"`` for a total that is refilled). Raises :class:`RequestRefused`."""
    value = text.strip().lower()
    match = _QUOTA_RE.match(value)
    if match is None or match.group(2) not in PERIODS:
        raise RequestRefused(
            f"Unknown quota {text[:40]!r}: write calls per period, like 1000/day, "
            "1000/month or 50000/total.",
            field="quota",
        )
    limit = int(match.group(1).replace("_", "").replace(",", ""))
    if not 1 <= limit <= MAX_LIMIT:
        raise RequestRefused(
            f"A quota is between 1 and {MAX_LIMIT:,} calls; to stop a key, revoke it.",
            field="quota",
        )
    period = match.group(2)
    refill = (refill or "").strip().lower() or None
    if refill is not None:
        if refill not in REFILLS:
            raise RequestRefused("A quota is refilled every day or every month.", field="refill")
        if period != "total":
            raise RequestRefused(
                f"Only a total is refilled: a quota of {limit}/{period} starts again "
                f"every {period} already.",
                field="refill",
            )
    return Quota(limit, period, refill)


def quota_timezone(name: str | dt.tzinfo | None) -> dt.tzinfo:
    """The zone of ``APIKEYS_QUOTA_TIMEZONE`` (an IANA name such as ``"Europe/Paris"``)."""
    if isinstance(name, dt.tzinfo):
        return name
    if not name or name == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise RuntimeError(
            f"APIKEYS_QUOTA_TIMEZONE must be a time zone name such as 'Europe/Paris', not {name!r}"
        ) from None


@dataclass(frozen=True)
class Period:
    """The period a quota counts in, in UTC; ``end`` is ``None`` for a total."""

    start: dt.datetime
    end: dt.datetime | None


def current_period(quota: Quota, now: dt.datetime, tz: dt.tzinfo) -> Period:
    """The calendar day or month of *now* in *tz* (or the whole of time for a total)."""
    unit = quota.resets
    if unit is None:
        return Period(EPOCH, None)
    today = now.astimezone(tz).date()
    if unit == "day":
        first, following = today, today + dt.timedelta(days=1)
    else:
        first = today.replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
    return Period(_midnight(first, tz), _midnight(following, tz))


def _midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)


@dataclass(frozen=True)
class QuotaUsage:
    """How much of a key's quota its current period used."""

    quota: Quota
    used: int
    period: Period

    @property
    def remaining(self) -> int:
        return max(0, self.quota.limit - self.used)

    @property
    def exhausted(self) -> bool:
        return self.used >= self.quota.limit

    @property
    def resets_at(self) -> dt.datetime | None:
        return self.period.end

    @property
    def percent(self) -> int:
        return min(100, math.floor(100 * self.used / self.quota.limit))

    @property
    def period_label(self) -> str:
        """ "today", "this month", "in total", "since this month's refill"."""
        quota = self.quota
        if quota.period == "total":
            return f"since {_THIS[quota.refill]}'s refill" if quota.refill else "in total"
        return "today" if quota.period == "day" else "this month"

    def summary(self) -> str:
        """ "120 of 1,000 calls this month"."""
        return f"{self.used:,} of {self.quota.limit:,} calls {self.period_label}"


@dataclass(frozen=True)
class QuotaDecision:
    """Whether one call may proceed under its key's quota."""

    allowed: bool
    quota: Quota
    period: Period
    now: dt.datetime
    #: The count after this call; ``None`` when it was not counted (refused, or the
    #: storage could not count).
    used: int | None
    #: Seconds until the storage is tried again, when it could not count.
    unavailable_for: float | None = None

    @property
    def unavailable(self) -> bool:
        """Whether the storage could not count (the call is served uncounted or refused,
        as ``fail_open`` says)."""
        return self.unavailable_for is not None

    @property
    def resets_at(self) -> dt.datetime | None:
        return self.period.end

    @property
    def retry_after(self) -> int | None:
        """Whole seconds until the call may succeed (at least 1): the end of the
        period, or of a storage outage; ``None``: never (a total without refill)."""
        if self.unavailable_for is not None:
            return max(1, math.ceil(self.unavailable_for))
        if self.period.end is None:
            return None
        return max(1, math.ceil((self.period.end - self.now).total_seconds()))


class QuotaStore(Protocol):
    """Where quota counters live: the database or Redis."""

    def spend(self, counter_id: int, period: Period, limit: int, now: dt.datetime) -> int | None:
        """Count one call unless *limit* are counted already: the new count, or ``None``.
        *now* is in *period* (a counter may expire some time after the period ends)."""

    def used(self, wanted: Collection[tuple[int, Period]]) -> dict[tuple[int, dt.datetime], int]:
        """The counts of the ``(counter_id, period)`` pairs, by ``(counter_id, start)``."""


class DatabaseQuotaStore:
    """Counters in the counter table, on connections of *engine* (never the request's
    session). *engine* may be a callable returning it, resolved at first use."""

    def __init__(self, engine: sa.Engine | Callable[[], sa.Engine], table: sa.Table) -> None:
        self._engine = engine
        self.table = table
        self._spend: Any = None

    @property
    def engine(self) -> sa.Engine:
        if not isinstance(self._engine, sa.Engine):
            self._engine = self._engine()
        return self._engine

    def _statement(self, dialect: str) -> Any:
        if self._spend is None:
            from sqlalchemy.dialects import postgresql, sqlite

            insert: Any
            if dialect == "postgresql":
                insert = postgresql.insert
            elif dialect == "sqlite":
                insert = sqlite.insert
            else:
                raise RuntimeError(
                    f"quotas in the database need PostgreSQL or SQLite, not {dialect}: "
                    "count them in Redis (APIKEYS_QUOTA_STORAGE_URI)"
                )
            t = self.table
            self._spend = (
                insert(t)
                .values(key_id=sa.bindparam("key_id"), period_start=sa.bindparam("start"), used=1)
                .on_conflict_do_update(
                    index_elements=[t.c.key_id, t.c.period_start],
                    set_={"used": t.c.used + 1},
                    where=t.c.used < sa.bindparam("limit", type_=sa.BigInteger()),
                )
                .returning(t.c.used)
            )
        return self._spend

    def spend(self, counter_id: int, period: Period, limit: int, now: dt.datetime) -> int | None:
        engine = self.engine
        statement = self._statement(engine.dialect.name)
        params = {"key_id": counter_id, "start": period.start, "limit": limit}
        # One statement is atomic: SQLite's own transaction, PostgreSQL's autocommit.
        if engine.dialect.name == "sqlite":
            with engine.begin() as conn:
                used = conn.execute(statement, params).scalar()
        else:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                used = conn.execute(statement, params).scalar()
        return None if used is None else int(used)

    def used(self, wanted: Collection[tuple[int, Period]]) -> dict[tuple[int, dt.datetime], int]:
        if not wanted:
            return {}
        t = self.table
        pairs = {(counter_id, period.start) for counter_id, period in wanted}
        query = sa.select(t.c.key_id, t.c.period_start, t.c.used).where(
            sa.tuple_(t.c.key_id, t.c.period_start).in_(sorted(pairs))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {(row.key_id, row.period_start): int(row.used) for row in rows}
