"""Keys' quotas in the service: set them (audited), read their usage, spend them.

:class:`QuotaCounter` counts in a store of :mod:`~flask_apikeys.quotas` (or
:mod:`~flask_apikeys.quota_redis`) and decides what an outage of the store means.

Like rate limits, only an admin of the key's organization or an operator sets a quota
(``quota_changed`` in the audit trail). A rotation gives the new key the old one's
quota and its counter: the period is counted once, however often the key is rotated,
and a key in its grace period shares the count with its successor.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from ..db.models import APIKeyMixin, utcnow
from .context import NewKey, ServiceContext
from .outage import OutageBreaker
from .pipeline import KeyField
from .quota_rules import (
    DatabaseQuotaStore,
    Period,
    Quota,
    QuotaDecision,
    QuotaStore,
    QuotaUsage,
    current_period,
    packed_quota,
    parse_quota,
    quota_timezone,
    unpack_quota,
)
from .validation import RequestRefused

__all__ = ["KeyQuotas", "QuotaCounter"]

logger = logging.getLogger("flask_apikeys")


class QuotaCounter:
    """Counts calls against quotas in *store*, with periods in *timezone*.

    When the store fails (Redis unreachable), *fail_open* decides: serve uncounted
    (default) or refuse. One warning is logged when an outage starts and one when it
    ends; meanwhile the store is tried again every *retry_after_failure* seconds.
    """

    def __init__(
        self,
        store: QuotaStore,
        *,
        timezone: str | dt.tzinfo | None = "UTC",
        fail_open: bool = True,
        retry_after_failure: float = 5.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.store = store
        self.timezone = quota_timezone(timezone)
        self.clock = clock
        self.breaker = OutageBreaker(
            "quota storage", fail_open=fail_open, retry_after=retry_after_failure
        )

    @property
    def fail_open(self) -> bool:
        return self.breaker.fail_open

    @property
    def retry_after_failure(self) -> float:
        return self.breaker.retry_after

    @retry_after_failure.setter
    def retry_after_failure(self, seconds: float) -> None:
        self.breaker.retry_after = seconds

    def period(self, quota: Quota, now: dt.datetime | None = None) -> Period:
        return current_period(quota, now or self.clock(), self.timezone)

    def spend(self, quota: Quota) -> QuotaDecision:
        """Count one call against *quota* if it has room; say whether it may proceed."""
        if quota.counter_id is None:
            raise ValueError("only a key's quota (Quota.of(key)) can be spent")
        now = self.clock()
        period = self.period(quota, now)
        if self.breaker.is_open:
            return self._unavailable(quota, period, now)
        try:
            used = self.store.spend(quota.counter_id, period, quota.limit, now)
        except Exception as error:
            self.breaker.failed("counting a call", error)
            return self._unavailable(quota, period, now)
        self.breaker.answered()
        return QuotaDecision(used is not None, quota, period, now, used)

    def usage(self, quotas: Mapping[int, Quota]) -> dict[int, QuotaUsage]:
        """The current period's usage of each quota in *quotas* (by key id), in one
        query; empty when the store cannot answer."""
        now = self.clock()
        periods = {key_id: self.period(q, now) for key_id, q in quotas.items()}
        wanted = [(q.counter_id, periods[k]) for k, q in quotas.items() if q.counter_id]
        try:
            counts = self.store.used(wanted)
        except Exception as error:
            self.breaker.failed("reading quota usage", error)
            return {}
        self.breaker.answered()
        usage = {}
        for key_id, quota in quotas.items():
            period = periods[key_id]
            used = counts.get((quota.counter_id or 0, period.start), 0)
            usage[key_id] = QuotaUsage(quota, used, period)
        return usage

    def _unavailable(self, quota: Quota, period: Period, now: dt.datetime) -> QuotaDecision:
        return QuotaDecision(
            self.fail_open, quota, period, now, None, unavailable_for=self.retry_after_failure
        )


class KeyQuotas:
    """Quotas per day, month or in total: ``service.quotas``. Joins the core at
    creation: ``issue(..., quota="1000/month")`` gives the key a quota in the same
    transaction; a rotation's new key keeps the old key's quota and counter."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self._counter: QuotaCounter | None = None
        context.extensions.prepare_new_key.append(self.read_quota_option)
        context.extensions.key_created.append(self.give_quota)
        context.extensions.key_fields.append(
            KeyField("quota", {"quota": packed_quota(context.models.APIKey)}, unpack_quota)
        )

    def configure_quotas(
        self,
        *,
        timezone: str | None = "UTC",
        storage_uri: str | None = None,
        key_prefix: str = "apikeys",
        fail_open: bool = True,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        """Count quotas in *storage_uri* (``None``: the database; ``redis://...``),
        with days and months in *timezone*. The extension calls this with the
        ``APIKEYS_QUOTA_*`` settings; without it, quotas count in the database, in UTC.
        """
        store: Any
        if not storage_uri:
            table = self.context.models.APIKeyQuotaCounter
            if table is None:  # pragma: no cover - build_models always makes it
                raise RuntimeError("the quota counter model is missing")
            store = DatabaseQuotaStore(self._quota_engine, table.__table__)
        else:
            from .quota_stores import RedisQuotaStore

            store = RedisQuotaStore(storage_uri, key_prefix=key_prefix, options=storage_options)
        self._counter = QuotaCounter(
            store, timezone=timezone, fail_open=fail_open, clock=lambda: self.context.clock()
        )

    @property
    def counter(self) -> QuotaCounter:
        """What counts calls against quotas."""
        if self._counter is None:
            self.configure_quotas()
        if self._counter is None:  # pragma: no cover - configure_quotas sets it
            raise RuntimeError("the quota counter is not configured")
        return self._counter

    def _quota_engine(self) -> sa.Engine:
        bind = self.context.session.get_bind(mapper=sa.inspect(self.context.models.APIKey))
        return bind if isinstance(bind, sa.Engine) else bind.engine

    # -- reading and spending ------------------------------------------------------

    def spend_quota(self, quota: Quota) -> QuotaDecision:
        """Count one call of the key *quota* belongs to (:meth:`Quota.of`), if it has room."""
        return self.counter.spend(quota)

    def quota_usage(self, key: APIKeyMixin) -> QuotaUsage | None:
        """*key*'s quota and how much of it this period used; ``None`` without a quota
        (or when the storage cannot answer)."""
        return self.quota_usages([key]).get(key.id)

    def quota_usages(self, keys: Iterable[APIKeyMixin]) -> dict[int, QuotaUsage]:
        """:meth:`quota_usage` of every key with a quota, by key id, in one query."""
        quotas = {key.id: quota for key in keys if (quota := Quota.of(key)) is not None}
        return self.counter.usage(quotas) if quotas else {}

    # -- setting -------------------------------------------------------------------

    def set_quota(
        self,
        key: APIKeyMixin,
        quota: str | Quota | None,
        *,
        refill: str | None = None,
        actor: Any = None,
        ip: str | None = None,
    ) -> None:
        """Give *key* a quota (``"1000/month"``, ``"50000/total"`` with *refill*
        ``"month"``), or none (``None``). The calls counted this period still count.

        Allowed to an admin of the key's organization and to operators only.
        """
        if actor is not None and not self.context.can_manage_organization(
            actor, key.organization_id
        ):
            raise RequestRefused(
                f"You need the '{self.context.manage_permission}' permission to change quotas."
            )
        new = _checked(quota, refill)
        old = Quota.of(key)
        if new == old:
            return
        key.quota_limit = new.limit if new else None
        key.quota_period = new.period if new else None
        key.quota_refill = new.refill if new else None
        self.context.record_event(
            key,
            "quota_changed",
            actor,
            ip,
            self.context.clock(),
            old=str(old) if old else "none",
            new=str(new) if new else "none",
        )
        self.context.session.commit()

    def read_quota_option(self, new: NewKey) -> None:
        """``issue(..., quota=..., quota_refill=...)``: read and check the quota. The host
        decides who gets one: unlike :meth:`set_quota`, no permission is asked."""
        new.options["quota"] = _checked(
            new.options.get("quota"), new.options.pop("quota_refill", None)
        )

    def give_quota(self, new: NewKey, key: APIKeyMixin) -> None:
        """A new key gets its quota; a rotation's new key the old key's quota and counter."""
        rotated_from = new.rotated_from
        quota = Quota.of(rotated_from) if rotated_from is not None else new.options.get("quota")
        if quota is None:
            return
        key.quota_limit = quota.limit
        key.quota_period = quota.period
        key.quota_refill = quota.refill
        if rotated_from is not None:
            key.quota_counter_id = rotated_from.quota_counter_id or rotated_from.id
        else:
            self.context.record_event(
                key, "quota_changed", new.actor, new.ip, new.now, old="none", new=str(quota)
            )


def _checked(quota: str | Quota | None, refill: str | None) -> Quota | None:
    """*quota* read (``"1000/month"``) or checked (a :class:`Quota`); ``None`` or a
    blank text for no quota. Raises :class:`RequestRefused`."""
    if isinstance(quota, str):
        return parse_quota(quota, refill) if quota.strip() else None
    if quota is not None:
        return parse_quota(quota.text, quota.refill)
    return None
