"""A presented key → a :class:`VerifiedKey`, or the reason it is refused.

Layer 3. A malformed key or a bad checksum costs no query; a well-formed one costs the
lookup's one SELECT: the columns every step of the pipeline declares (:mod:`.pipeline`),
composed once per app. Nothing is written and nothing that decides validity is cached:
revocation, expiry, the owner's activity and permissions are judged on every call.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.orm.exc import DetachedInstanceError

from ..db.lookup import KeyLookup, key_select
from ..db.models import APIKeyMixin, KeyStatus
from ..keys import format as keyformat
from .context import ServiceContext
from .pipeline import AuthenticationFailed, Columns, KeyCheck, KeyField, KeyRow
from .verified import KeyObjects, VerifiedKey, attach

__all__ = ["AuthenticationFailed", "KeyVerification", "VerifiedKey"]

_INVALID = "The API key is not valid."


class KeyVerification:
    """A presented secret → a :class:`VerifiedKey`: ``service.verifier``."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context

    @functools.cached_property
    def pipeline(self) -> Pipeline:
        """The checks, fields and the one SELECT, composed on first use (once every part
        of the service has joined)."""
        return Pipeline(self.context)

    @property
    def key_lookup(self) -> KeyLookup:
        """The hot path's one SELECT, on connections of the session's engine."""
        return self.pipeline.lookup

    def find_by_secret(self, secret: str) -> APIKeyMixin | None:
        """The key for *secret*, as an object of the session; ``None`` if unknown."""
        APIKey = self.context.models.APIKey
        found: APIKeyMixin | None = self.context.session.scalar(
            sa.select(APIKey).where(APIKey.key_hash == self.context.hash(secret))
        )
        return found

    def verify(self, secret: str) -> VerifiedKey:
        """Check *secret* and return what it may do, or raise :class:`AuthenticationFailed`."""
        if not keyformat.is_well_formed(secret, self.context.prefix):
            raise AuthenticationFailed("invalid_api_key", _INVALID)
        return self.verify_well_formed(secret)

    def verify_well_formed(self, secret: str) -> VerifiedKey:
        """:meth:`verify` for a *secret* whose shape and checksum were checked already."""
        context, pipeline = self.context, self.pipeline
        row = pipeline.lookup.find(context.hash(secret))
        if row is None:
            raise AuthenticationFailed("invalid_api_key", _INVALID)
        now = context.clock()
        try:
            for check in pipeline.checks:
                check(row, now)
        except AuthenticationFailed as failure:
            if failure.key is None:  # listeners and the audit trail get the key
                failure.key = context.session.get(context.models.APIKey, row.id)
            raise
        owner = row[0] if pipeline.with_owner else None
        if pipeline.declared_permissions is None:
            try:
                held = context.permissions_of(owner, row.organization_id)
            except DetachedInstanceError:
                # The host's loader reads something not loaded with the owner: it gets
                # the owner in the request's session (and a query).
                owner = attach(context.session, owner)
                held = context.permissions_of(owner, row.organization_id)
        else:
            held = pipeline.declared_permissions(row.owner_permissions)
        key_scopes = row.key_scopes  # NULL: full access
        scopes = context.effective_scopes(held, key_scopes, key_scopes is None)
        for allowed in pipeline.limits:
            limit = allowed(row)
            if limit is not None:
                scopes &= limit
        return VerifiedKey(
            id=row.id,
            name=row.name,
            display_prefix=secret[: pipeline.display_length],
            owner_id=row.owner_id,
            organization_id=row.organization_id,
            scopes=scopes,
            objects=KeyObjects(context.session, context.models, owner),
            **{field.name: field.read(row) for field in pipeline.fields},
        )


Check = Callable[[KeyRow, dt.datetime], None]


class Pipeline:
    """The steps of one app's key check and the SELECT of the columns they read."""

    def __init__(self, context: ServiceContext) -> None:
        models, joins = context.models, context.extensions
        keys = models.APIKey.__table__.c
        columns: dict[str, sa.ColumnElement[Any]] = {
            "id": keys.id,
            "name": keys.name,
            "owner_id": keys.owner_id,
            "organization_id": keys.organization_id,
            # One column for two (each costs the driver as much as the next): the
            # scopes, or NULL for a full-access key.
            "key_scopes": sa.type_coerce(
                sa.case((keys.full_access, sa.null()), else_=keys.scopes), keys.scopes.type
            ),
        }
        owner_check = _owner_check(context)
        steps = [_status_check(context), *joins.key_checks]
        steps += [owner_check] if owner_check is not None else []
        declared = context.owner_sql
        self.declared_permissions: Callable[[Any], frozenset[str]] | None = None
        if declared.permissions is not None:
            columns["owner_permissions"] = declared.permissions(keys.owner_id, keys.organization_id)
            self.declared_permissions = declared.names
        readers: list[Columns] = [step.columns for step in steps]
        readers += [limit.columns for limit in joins.key_permission_limits]
        readers += [field.columns for field in joins.key_fields]
        for declared_columns in readers:
            _merge(columns, declared_columns)
        #: Whether the row starts with the owner object (for the host's Python loaders).
        self.with_owner = context.permissions_need_owner or (
            owner_check is not None and not owner_check.columns
        )
        self.checks: list[Check] = [step.check for step in steps]
        self.limits = [limit.allowed for limit in joins.key_permission_limits]
        self.fields: list[KeyField] = list(joins.key_fields)
        self.display_length = len(context.prefix) + 1 + keyformat.DISPLAY_LENGTH
        statement = key_select(models, columns, with_owner=self.with_owner)
        self.lookup = KeyLookup(context.session, models, statement, with_owner=self.with_owner)


def _status_check(context: ServiceContext) -> KeyCheck:
    """Revoked, then expired. One column, the earlier of the two times; a refused key is
    loaded (as refusals are, for listeners and the audit trail) to say which."""
    keys = context.models.APIKey.__table__.c
    ends_at = sa.case(
        (keys.revoked_at.is_(None), keys.expires_at),
        (sa.or_(keys.expires_at.is_(None), keys.revoked_at <= keys.expires_at), keys.revoked_at),
        else_=keys.expires_at,
    )

    def check_status(row: KeyRow, now: dt.datetime) -> None:
        if row.ends_at is None or row.ends_at > now:
            return
        key = context.session.get(context.models.APIKey, row.id, populate_existing=True)
        if key is not None and key.status_at(now) == KeyStatus.REVOKED:
            raise AuthenticationFailed("revoked_api_key", "The API key has been revoked.", key)
        raise AuthenticationFailed("expired_api_key", "The API key has expired.", key)

    return KeyCheck({"ends_at": ends_at}, check_status)


_INACTIVE = "The owner of this API key is no longer active."


def _owner_check(context: ServiceContext) -> KeyCheck | None:
    """The owner must still be active: by the declared SQL, the user model's
    ``is_active`` column, or its ``is_active`` attribute (on the owner object)."""
    active: Any = context.owner_sql.active
    if active is None:
        attribute = getattr(context.models.User, "is_active", None)
        if attribute is None:
            return None  # a user model without is_active: owners are always active
        if isinstance(attribute, QueryableAttribute | sa.ColumnElement):
            active = attribute
    if active is None:

        def check_owner_object(row: KeyRow, now: dt.datetime) -> None:
            if not context.is_active(row[0]):
                raise AuthenticationFailed("inactive_user", _INACTIVE)

        return KeyCheck({}, check_owner_object)

    def check_owner_active(row: KeyRow, now: dt.datetime) -> None:
        if not row.owner_active:
            raise AuthenticationFailed("inactive_user", _INACTIVE)

    return KeyCheck({"owner_active": active}, check_owner_active)


def _merge(columns: dict[str, sa.ColumnElement[Any]], more: Mapping[str, Any]) -> None:
    """Add *more* to *columns*; one label must always name the same expression."""
    for label, expression in more.items():
        known = columns.setdefault(label, expression)
        if known is not expression and not known.compare(expression):
            raise ValueError(f"two checks read different columns as {label!r}")
