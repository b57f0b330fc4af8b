"""The table of organization policies: what an organization's keys may be.

One row per organization that set a policy (none for the others): the longest
lifetime a new key may have, how many days of disuse expire a key, and which
permissions keys may hold at all. The key model gets a view-only ``organization_policy``
relationship to it, so the hot path's one SELECT reads a key's policy with the key.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, foreign, mapped_column, relationship

from .models import UTCDateTime, utcnow

__all__ = ["APIKeyPolicyMixin", "build_policy_model"]


class APIKeyPolicyMixin:
    """An organization's rules for its keys; a ``None`` column sets no rule."""

    __apikeys_user_model__: Any
    __apikeys_org_type__: Any

    if TYPE_CHECKING:
        __table__: ClassVar[sa.Table]

        def __init__(self, **columns: Any) -> None: ...

    #: New keys must expire within this many days.
    max_lifetime_days: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    #: Keys unused (since their last use, or their creation) for this many days stop working.
    idle_expiry_days: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    #: The only permissions keys may hold (``None``: any the owner may grant).
    allowed_permissions: Mapped[list[str] | None] = mapped_column(sa.JSON, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @declared_attr
    def organization_id(cls) -> Mapped[Any]:
        return mapped_column(cls.__apikeys_org_type__, primary_key=True, autoincrement=False)

    @declared_attr
    def updated_by_id(cls) -> Mapped[Any]:
        pk: sa.Column[Any] = sa.inspect(cls.__apikeys_user_model__).primary_key[0]
        return mapped_column(pk.type, sa.ForeignKey(pk), nullable=True)

    def rules(self) -> dict[str, Any]:
        """The three rules, as the audit trail records them."""
        return {
            "max_lifetime_days": self.max_lifetime_days,
            "idle_expiry_days": self.idle_expiry_days,
            "allowed_permissions": self.allowed_permissions,
        }

    def __repr__(self) -> str:
        return f"<APIKeyPolicy organization={self.organization_id} {self.rules()}>"


def build_policy_model(
    db: Any,
    api_key: Any,
    user_model: Any,
    *,
    table_prefix: str,
    org_type: Any,
    org_column: Any = None,
) -> type[APIKeyPolicyMixin]:
    """Make the policy model on ``db.Model`` and give *api_key* its ``organization_policy``."""
    attrs: dict[str, Any] = {
        "__tablename__": f"{table_prefix}_policies",
        "__apikeys_user_model__": user_model,
        "__apikeys_org_type__": org_type,
    }
    if org_column is not None:
        attrs["organization_id"] = mapped_column(
            org_type, sa.ForeignKey(org_column), primary_key=True, autoincrement=False
        )
    policy: Any = type("APIKeyPolicy", (APIKeyPolicyMixin, db.Model), attrs)
    # Read-only: a policy belongs to its organization, never written through a key.
    api_key.organization_policy = relationship(
        policy,
        primaryjoin=foreign(policy.organization_id) == api_key.organization_id,
        viewonly=True,
        uselist=False,
    )
    return policy  # type: ignore[no-any-return]
