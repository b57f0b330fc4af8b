"""Warnings before keys expire: once per key and threshold, across processes and hosts.

:meth:`ExpiryWarnings.warn_expiring` finds the keys that crossed a threshold
(e.g. 7 days, then 1 day before they expire) and *claims* each warning in the
database before handing it on::

    UPDATE api_keys SET expiry_warned_days = :days
    WHERE id = :id AND (expiry_warned_days IS NULL OR expiry_warned_days > :days)
      AND revoked_at IS NULL AND expires_at > :now

Only the run whose UPDATE changed the row (``rowcount == 1``) sends: when two runs,
processes or hosts race, the database lets exactly one of them through, and a warning
is never sent twice. The price of "never twice" is "at most once": a warning whose
sending fails is not retried.

A key that crosses several thresholds between two runs gets one warning, the nearest.
Revoked keys (rotated ones included), expired ones, keys of inactive owners and keys
past their organization's idle expiry get none.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..db.models import APIKeyMixin
from .context import ServiceContext
from .queries import KeyQueries

__all__ = ["ExpiryWarning", "ExpiryWarnings"]

logger = logging.getLogger("flask_apikeys")


@dataclass(frozen=True)
class ExpiryWarning:
    """A key about to expire, and the threshold (in days) it crossed."""

    key: APIKeyMixin
    days: int
    expires_at: dt.datetime


@dataclass(frozen=True)
class _Candidate:
    key_id: int
    threshold: int


class ExpiryWarnings:
    """The expiry-warning part of :class:`~flask_apikeys.KeyService`."""

    def __init__(self, context: ServiceContext, queries: KeyQueries) -> None:
        self.context = context
        self.queries = queries

    def due_expiry_warnings(
        self, thresholds: Iterable[int], now: dt.datetime | None = None
    ) -> list[tuple[int, int]]:
        """``(key id, days)`` of every key due a warning now, soonest to expire first."""
        return [(c.key_id, c.threshold) for c in self._candidates(thresholds, now)]

    def warn_expiring(
        self,
        thresholds: Iterable[int],
        send: Callable[[ExpiryWarning], Any],
        now: dt.datetime | None = None,
    ) -> list[ExpiryWarning]:
        """Claim, then *send*, every warning due now; return those claimed.

        *thresholds* are days before expiry (``[7, 1]``). Each claim is committed
        before *send* is called; an exception from *send* is logged and the warning
        stays claimed (it is not sent again).
        """
        now = now or self.context.clock()
        APIKey = self.context.models.APIKey
        sent: list[ExpiryWarning] = []
        for candidate in self._candidates(thresholds, now):
            key = self.context.session.get(APIKey, candidate.key_id)
            if key is None or not self.context.is_active(key.owner):
                continue
            if not self._claim(candidate, now):
                continue  # another run got there first
            expires_at = key.expires_at  # read again: the claim's commit expired the object
            if expires_at is None:  # pragma: no cover - the claim needs an expiry
                continue
            warning = ExpiryWarning(key=key, days=candidate.threshold, expires_at=expires_at)
            try:
                send(warning)
            except Exception:
                logger.exception(
                    "flask-apikeys could not send the expiry warning of %s", key.display_prefix
                )
            sent.append(warning)
        return sent

    def _candidates(self, thresholds: Iterable[int], now: dt.datetime | None) -> list[_Candidate]:
        days = sorted({int(t) for t in thresholds})
        if not days:
            return []
        now = now or self.context.clock()
        APIKey = self.context.models.APIKey
        columns: list[Any] = [
            APIKey.id,
            APIKey.expires_at,
            APIKey.expiry_warned_days,
            APIKey.last_used_at,
            APIKey.created_at,
        ]
        Policy = self.context.models.APIKeyPolicy
        stmt = sa.select(*columns)
        if Policy is not None:
            stmt = stmt.add_columns(Policy.idle_expiry_days).outerjoin(APIKey.organization_policy)
        stmt = stmt.where(
            APIKey.revoked_at.is_(None),
            APIKey.expires_at.is_not(None),
            APIKey.expires_at > now,
            APIKey.expires_at <= now + dt.timedelta(days=days[-1]),
            sa.or_(APIKey.expiry_warned_days.is_(None), APIKey.expiry_warned_days > days[0]),
        ).order_by(APIKey.expires_at, APIKey.id)
        found = []
        for row in self.context.session.execute(stmt):
            key_id, expires_at, warned, last_used_at, created_at = row[:5]
            idle_days = row[5] if len(row) > 5 else None
            if idle_days is not None and now - (last_used_at or created_at) >= dt.timedelta(
                days=idle_days
            ):
                continue  # already refused as idle
            left = expires_at - now
            nearest = next(d for d in days if left <= dt.timedelta(days=d))
            if warned is None or warned > nearest:
                found.append(_Candidate(key_id, nearest))
        return found

    def _claim(self, candidate: _Candidate, now: dt.datetime) -> bool:
        """Take the warning in one committed UPDATE; ``True`` when this run took it."""
        table = self.context.models.APIKey.__table__
        stmt = (
            sa.update(table)
            .where(
                table.c.id == candidate.key_id,
                sa.or_(
                    table.c.expiry_warned_days.is_(None),
                    table.c.expiry_warned_days > candidate.threshold,
                ),
                table.c.revoked_at.is_(None),
                table.c.expires_at > now,
            )
            .values(expiry_warned_days=candidate.threshold)
        )
        try:
            claimed = self.context.session.connection().execute(stmt).rowcount == 1
            self.context.session.commit()
        except BaseException:
            self.context.session.rollback()
            raise
        return claimed
