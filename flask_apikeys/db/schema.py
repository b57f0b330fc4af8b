"""The models of one host ``db``: :func:`build_models` makes every table's class.

Each feature's tables live in a module of their own (:mod:`~flask_apikeys.db.models` for
keys, events and usage days; ``policy``, ``quota``, ``requests``); this module puts them
together on the host's ``db.Model``, pointing at its user model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import mapped_column, relationship

from .models import APIKeyEventMixin, APIKeyMixin, APIKeyUsageDayMixin
from .policy import APIKeyPolicyMixin, build_policy_model
from .quota import APIKeyQuotaCounterMixin, build_quota_counter_model
from .requests import APIKeyRequestMixin, build_request_model

__all__ = ["Models", "build_models"]


@dataclass(frozen=True)
class Models:
    """The mapped classes :func:`build_models` made for one host ``db``."""

    APIKey: type[APIKeyMixin]
    APIKeyEvent: type[APIKeyEventMixin]
    APIKeyUsageDay: type[APIKeyUsageDayMixin]
    #: The host's user model: flask-apikeys reads only its primary key and ``is_active``.
    User: Any
    organization_type: sa.types.TypeEngine[Any]
    #: Organization policies (:mod:`~flask_apikeys.db.policy`); made by :func:`build_models`.
    APIKeyPolicy: type[APIKeyPolicyMixin] | None = None
    #: Quota counters (:mod:`~flask_apikeys.db.quota`); made by :func:`build_models`.
    APIKeyQuotaCounter: type[APIKeyQuotaCounterMixin] | None = None
    #: The request log (:mod:`~flask_apikeys.db.requests`); made by :func:`build_models`.
    APIKeyRequest: type[APIKeyRequestMixin] | None = None

    def coerce_organization_id(self, value: Any) -> Any:
        """Give *value* the Python type of the ``organization_id`` column."""
        if value is None:
            return None
        if isinstance(self.organization_type, sa.String):
            return str(value)
        return self.organization_type.python_type(value)

    def coerce_organization_id_or_none(self, value: Any) -> Any:
        """Like :meth:`coerce_organization_id`, but ``None`` for ids of the wrong shape."""
        try:
            return self.coerce_organization_id(value)
        except (TypeError, ValueError, OverflowError):
            return None


def build_models(
    db: Any,
    user_model: Any,
    *,
    organization_model: Any = None,
    table_prefix: str = "api_key",
    key_mixins: tuple[type, ...] = (),
) -> Models:
    """Make the flask-apikeys models on ``db.Model``, pointing at *user_model*.

    *organization_model*, when given, makes ``organization_id`` a foreign key to it;
    otherwise it is a string column holding the ids the organization loader gives.
    *key_mixins* are placed before :class:`APIKeyMixin`, to add columns or methods.
    """
    if not sa.inspect(user_model, raiseerr=False):
        raise RuntimeError(f"user_model {user_model!r} is not a mapped SQLAlchemy class")
    if len(sa.inspect(user_model).primary_key) != 1:
        raise RuntimeError("flask-apikeys needs a user model with a single-column primary key")
    key_table = f"{table_prefix}s"
    org_type: Any = sa.String(64)
    org_column: Any = None
    if organization_model is not None:
        org_column = sa.inspect(organization_model).primary_key[0]
        org_type = org_column.type

    key_attrs: dict[str, Any] = {
        "__tablename__": key_table,
        "__apikeys_user_model__": user_model,
        "__apikeys_org_type__": org_type,
    }
    if org_column is not None:
        key_attrs["organization_id"] = mapped_column(
            org_type, sa.ForeignKey(org_column), nullable=True, index=True
        )
    api_key: Any = type("APIKey", (*key_mixins, APIKeyMixin, db.Model), key_attrs)
    # The key lists' orders (newest first, by owner or organization) walk these, so a
    # page of 25 reads 25 rows however many keys there are; rotation links find a key's
    # successor. (Made on the table, not in __table_args__, which key_mixins may set.)
    columns = api_key.__table__.c
    sa.Index(f"ix_{key_table}_owner_created", columns.owner_id, columns.created_at)
    sa.Index(f"ix_{key_table}_organization_created", columns.organization_id, columns.created_at)
    sa.Index(f"ix_{key_table}_rotated_from_id", columns.rotated_from_id)
    api_key.rotated_from = relationship(
        api_key, remote_side=[api_key.id], foreign_keys=[api_key.rotated_from_id]
    )
    event = type(
        "APIKeyEvent",
        (APIKeyEventMixin, db.Model),
        {
            "__tablename__": f"{table_prefix}_events",
            "__apikeys_user_model__": user_model,
            "__apikeys_key_table__": key_table,
            "__apikeys_org_type__": org_type,
            "__table_args__": (
                sa.Index(f"ix_{table_prefix}_events_key_at", "key_id", "at"),
                sa.Index(f"ix_{table_prefix}_events_organization_at", "organization_id", "at"),
            ),
        },
    )
    usage = type(
        "APIKeyUsageDay",
        (APIKeyUsageDayMixin, db.Model),
        {"__tablename__": f"{table_prefix}_usage_days", "__apikeys_key_table__": key_table},
    )
    policy = build_policy_model(
        db, api_key, user_model, table_prefix=table_prefix, org_type=org_type, org_column=org_column
    )
    quota_counter = build_quota_counter_model(db, table_prefix, key_table)
    request_log = build_request_model(db, table_prefix, key_table)
    return Models(
        APIKeyPolicy=policy,
        APIKeyQuotaCounter=quota_counter,
        APIKeyRequest=request_log,
        APIKey=api_key,
        APIKeyEvent=event,
        APIKeyUsageDay=usage,
        User=user_model,
        organization_type=org_type,
    )
