"""The quota counter table: calls counted per key and period.

One row per ``(key_id, period_start)``: ``used`` calls of the key's quota in
the period that starts then (a day or a month in ``APIKEYS_QUOTA_TIMEZONE``, or the
Unix epoch for a total without refill). ``key_id`` is the key whose counter it is: the
first key of a rotation chain, so a rotated key's successors count on the same row.
Rows are only ever incremented, by one conditional ``INSERT ... ON CONFLICT DO UPDATE``
(see :mod:`flask_apikeys.quotas`); old periods' rows are history and may be deleted.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from .models import BigIntPK, UTCDateTime

__all__ = ["APIKeyQuotaCounterMixin", "build_quota_counter_model"]


class APIKeyQuotaCounterMixin:
    """How many calls one key's quota served in one period."""

    __apikeys_key_table__: str

    if TYPE_CHECKING:
        __table__: ClassVar[sa.Table]

        def __init__(self, **columns: Any) -> None: ...

    period_start: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    used: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    @declared_attr
    def key_id(cls) -> Mapped[int]:
        return mapped_column(
            BigIntPK,
            sa.ForeignKey(f"{cls.__apikeys_key_table__}.id"),
            primary_key=True,
        )

    def __repr__(self) -> str:
        return f"<APIKeyQuotaCounter key={self.key_id} {self.period_start:%Y-%m-%d} {self.used}>"


def build_quota_counter_model(
    db: Any, table_prefix: str, key_table: str
) -> type[APIKeyQuotaCounterMixin]:
    """The mapped counter class on ``db.Model`` (called by :func:`~.models.build_models`)."""
    model: type[APIKeyQuotaCounterMixin] = type(
        "APIKeyQuotaCounter",
        (APIKeyQuotaCounterMixin, db.Model),
        {
            "__tablename__": f"{table_prefix}_quota_counters",
            "__apikeys_key_table__": key_table,
        },
    )
    return model
