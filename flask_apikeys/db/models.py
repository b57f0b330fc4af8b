"""Models: API keys, their audit events and their daily usage.

The tables live in the host's Flask-SQLAlchemy metadata,
so ``db.create_all()`` and Flask-Migrate/Alembic see them like the host's own. They
point at the host's user model, whatever its table name and primary-key type.

The columns are declared once on mixins with typed attributes; :func:`build_models`
makes the mapped classes on the host's ``db.Model``, after any mixins the host passes
to add columns or methods of its own.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

__all__ = [
    "APIKeyEventMixin",
    "APIKeyMixin",
    "APIKeyUsageDayMixin",
    "KeyStatus",
    "UTCDateTime",
    "utcnow",
]

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class KeyStatus:
    """The statuses a key shows in lists."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def _user_pk(cls: Any) -> sa.Column[Any]:
    column: sa.Column[Any] = sa.inspect(cls.__apikeys_user_model__).primary_key[0]
    return column


class APIKeyMixin:
    """The columns of an API key. Never deleted; revocation is a timestamp."""

    __tablename__: str
    __apikeys_user_model__: Any
    __apikeys_org_type__: Any

    if TYPE_CHECKING:  # the mapped class built on the host's db.Model
        __table__: ClassVar[sa.Table]
        organization_policy: Any  # APIKeyPolicy | None (models_policy.py)

        def __init__(self, **columns: Any) -> None: ...

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    display_prefix: Mapped[str] = mapped_column(sa.String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    full_access: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A revocation time in the future is a rotation's grace period.
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_ip: Mapped[str | None] = mapped_column(sa.String(45), nullable=True)
    usage_count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rate_limit: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    ip_allowlist: Mapped[list[str] | None] = mapped_column(sa.JSON, nullable=True)
    # -- resources --
    #: The host's resources the key is limited to, by kind: ``{"client": ["3", "7"]}``.
    #: ``None``, or a kind left out, means every resource of that kind (resources.py).
    resources: Mapped[dict[str, list[str]] | None] = mapped_column(sa.JSON, nullable=True)
    # -- quotas -- (quotas.py): N calls per "day" or "month", or in "total" (optionally
    # refilled every "day" or "month"); no quota when quota_limit is None.
    quota_limit: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    quota_period: Mapped[str | None] = mapped_column(sa.String(8), nullable=True)
    quota_refill: Mapped[str | None] = mapped_column(sa.String(8), nullable=True)
    # Expiry warnings (expiry.py): the nearest threshold, in days, already warned of.
    expiry_warned_days: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)

    @declared_attr
    def owner_id(cls) -> Mapped[Any]:
        pk = _user_pk(cls)
        return mapped_column(pk.type, sa.ForeignKey(pk), index=True)

    @declared_attr
    def created_by_id(cls) -> Mapped[Any]:
        pk = _user_pk(cls)
        return mapped_column(pk.type, sa.ForeignKey(pk), nullable=True)

    @declared_attr
    def revoked_by_id(cls) -> Mapped[Any]:
        pk = _user_pk(cls)
        return mapped_column(pk.type, sa.ForeignKey(pk), nullable=True)

    @declared_attr
    def ip_allowlist_set_by_id(cls) -> Mapped[Any]:
        """Who set the allowlist: when an admin did, the owner may only narrow it."""
        pk = _user_pk(cls)
        return mapped_column(pk.type, sa.ForeignKey(pk), nullable=True)

    @declared_attr
    def rate_limit_set_by_id(cls) -> Mapped[Any]:
        """Who set the key's own rate limit (``None``: an operator, or never set)."""
        pk = _user_pk(cls)
        return mapped_column(pk.type, sa.ForeignKey(pk), nullable=True)

    @declared_attr
    def quota_counter_id(cls) -> Mapped[int | None]:
        """The key whose quota counter this key counts on (``None``: its own); a
        rotation's successor shares its predecessor's, so a period is counted once."""
        return mapped_column(BigIntPK, sa.ForeignKey(f"{cls.__tablename__}.id"), nullable=True)

    @declared_attr
    def rotated_from_id(cls) -> Mapped[int | None]:
        return mapped_column(
            BigIntPK,
            sa.ForeignKey(f"{cls.__tablename__}.id"),
            nullable=True,
        )

    @declared_attr
    def organization_id(cls) -> Mapped[Any]:
        return mapped_column(cls.__apikeys_org_type__, nullable=True, index=True)

    @declared_attr
    def owner(cls) -> Mapped[Any]:
        return relationship(cls.__apikeys_user_model__, foreign_keys=[cls.owner_id])

    def status_at(self, now: dt.datetime) -> str:
        if self.revoked_at is not None and self.revoked_at <= now:
            return KeyStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return KeyStatus.EXPIRED
        return KeyStatus.ACTIVE

    @property
    def status(self) -> str:
        return self.status_at(utcnow())

    @property
    def in_grace_period(self) -> bool:
        """Rotated away from, but still accepted until :attr:`revoked_at`."""
        return self.revoked_at is not None and self.revoked_at > utcnow()

    def __repr__(self) -> str:
        return f"<APIKey {self.id} {self.display_prefix} {self.name!r}>"


class APIKeyEventMixin:
    """One audit event: who did what, when, from where, to which key or organization.

    ``key_id`` is ``None`` for events of an organization as a whole (a policy changed);
    ``organization_id`` is the key's organization, copied so an admin's audit trail is
    one indexed query.
    """

    __apikeys_user_model__: Any
    __apikeys_key_table__: str
    __apikeys_org_type__: Any

    if TYPE_CHECKING:

        def __init__(self, **columns: Any) -> None: ...

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    event: Mapped[str] = mapped_column(sa.String(32))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str | None] = mapped_column(sa.String(45), nullable=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)

    @declared_attr
    def key_id(cls) -> Mapped[int | None]:
        return mapped_column(
            BigIntPK,
            sa.ForeignKey(f"{cls.__apikeys_key_table__}.id"),
            nullable=True,
            index=True,
        )

    @declared_attr
    def organization_id(cls) -> Mapped[Any]:
        return mapped_column(cls.__apikeys_org_type__, nullable=True)

    @declared_attr
    def actor_id(cls) -> Mapped[Any]:
        pk = _user_pk(cls)
        return mapped_column(pk.type, sa.ForeignKey(pk), nullable=True)

    @declared_attr
    def actor(cls) -> Mapped[Any]:
        return relationship(cls.__apikeys_user_model__, foreign_keys=[cls.actor_id])

    def __repr__(self) -> str:
        return f"<APIKeyEvent {self.event} key={self.key_id} at={self.at:%Y-%m-%dT%H:%M:%SZ}>"


class APIKeyUsageDayMixin:
    """How many verified requests a key served on one UTC day."""

    __apikeys_key_table__: str

    if TYPE_CHECKING:
        __table__: ClassVar[sa.Table]

        def __init__(self, **columns: Any) -> None: ...

    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    @declared_attr
    def key_id(cls) -> Mapped[int]:
        return mapped_column(
            BigIntPK,
            sa.ForeignKey(f"{cls.__apikeys_key_table__}.id"),
            primary_key=True,
        )
