"""Reading keys for pages and the CLI: lists, filters, pages, events and usage.

Nothing here writes. Ids that come from URLs or forms are checked here, so
another user's or another organization's key is simply not found.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from ..db.models import APIKeyEventMixin, APIKeyMixin, KeyStatus
from .context import ServiceContext
from .validation import RequestRefused

__all__ = ["KeyQueries", "KeySelect"]

#: A SELECT of keys. (Its row type is spelled differently by SQLAlchemy 2.0 and 2.1.)
KeySelect = sa.Select[Any]


class KeyQueries:
    """Lists, filters, pages, events and usage of keys: ``service.queries``."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context

    def usable_clause(self, now: dt.datetime | None = None) -> sa.ColumnElement[bool]:
        """The one place that says which keys still authenticate."""
        now = now or self.context.clock()
        APIKey = self.context.models.APIKey
        return sa.and_(
            sa.or_(APIKey.revoked_at.is_(None), APIKey.revoked_at > now),
            sa.or_(APIKey.expires_at.is_(None), APIKey.expires_at > now),
        )

    def idle_clause(
        self, now: dt.datetime, organization_id: Any = None
    ) -> sa.ColumnElement[bool] | None:
        """The keys held back although neither revoked nor expired (an organization's
        idle expiry), or ``None`` when none is: the ``held_back`` extension points."""
        clauses = [
            clause
            for held_back in self.context.extensions.held_back
            if (clause := held_back(now, organization_id)) is not None
        ]
        return sa.or_(*clauses) if clauses else None

    def key_filters(
        self,
        *,
        owner: Any = None,
        organization_id: Any = None,
        status: str | None = None,
        search: str | None = None,
        now: dt.datetime | None = None,
    ) -> list[sa.ColumnElement[bool]]:
        """The WHERE clauses of :meth:`keys_query`'s filters, for other SELECTs of keys
        (counts, pages). *status* is ``active``, ``expired``, ``revoked`` or ``None``."""
        APIKey = self.context.models.APIKey
        now = now or self.context.clock()
        clauses: list[sa.ColumnElement[bool]] = []
        if owner is not None:
            clauses.append(APIKey.owner_id == self.context.user_id(owner))
        if organization_id is not None:
            clauses.append(
                APIKey.organization_id
                == self.context.models.coerce_organization_id_or_none(organization_id)
            )
        if status is not None:
            if status not in (KeyStatus.ACTIVE, KeyStatus.EXPIRED, KeyStatus.REVOKED):
                raise RequestRefused(f"Unknown status {status[:20]!r}.", field="status")
            clauses.append(self.status_clause(status, now, organization_id))
        # Free text from a search box: what cannot be typed (NUL and other control
        # characters, which PostgreSQL refuses) is left out rather than refused.
        search = "".join(ch for ch in search if ch.isprintable()) if search else None
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            clauses.append(
                sa.or_(
                    APIKey.name.ilike(pattern, escape="\\"),
                    APIKey.display_prefix.ilike(pattern, escape="\\"),
                )
            )
        return clauses

    def status_clause(
        self, status: str, now: dt.datetime, organization_id: Any = None
    ) -> sa.ColumnElement[bool]:
        """The keys a list shows as *status* at *now*. Keys held back by their
        organization's idle expiry are listed as expired, not active."""
        APIKey = self.context.models.APIKey
        if status == KeyStatus.REVOKED:
            return sa.and_(APIKey.revoked_at.is_not(None), APIKey.revoked_at <= now)
        idle = self.idle_clause(now, organization_id)
        if status == KeyStatus.ACTIVE:
            usable = self.usable_clause(now)
            return usable if idle is None else sa.and_(usable, sa.not_(idle))
        expired = sa.and_(APIKey.expires_at.is_not(None), APIKey.expires_at <= now)
        return sa.and_(
            sa.or_(APIKey.revoked_at.is_(None), APIKey.revoked_at > now),
            expired if idle is None else sa.or_(expired, idle),
        )

    def keys_query(
        self,
        *,
        owner: Any = None,
        organization_id: Any = None,
        status: str | None = None,
        search: str | None = None,
        sort: str | None = None,
    ) -> KeySelect:
        """A SELECT of keys, filtered as asked and ordered by ``created`` (newest first,
        the default), ``usage`` or ``last_used``; callers paginate it."""
        APIKey = self.context.models.APIKey
        stmt = sa.select(APIKey).where(
            *self.key_filters(
                owner=owner, organization_id=organization_id, status=status, search=search
            )
        )
        if self.context.models.APIKeyPolicy is not None:  # the pages show idle keys as expired
            stmt = stmt.options(selectinload(APIKey.organization_policy))
        if sort in (None, "", "created"):
            return stmt.order_by(APIKey.created_at.desc(), APIKey.id.desc())
        if sort == "usage":
            return stmt.order_by(APIKey.usage_count.desc(), APIKey.id.desc())
        if sort == "last_used":
            return stmt.order_by(
                APIKey.last_used_at.is_(None), APIKey.last_used_at.desc(), APIKey.id.desc()
            )
        raise RequestRefused(f"Unknown sort {sort[:20]!r}.", field="sort")

    def list_keys(self, **filters: Any) -> list[APIKeyMixin]:
        return list(self.context.session.scalars(self.keys_query(**filters)))

    def page_of(self, stmt: KeySelect, page: int, per_page: int) -> tuple[list[APIKeyMixin], int]:
        """Page *page* (from 1) of *stmt* and the total number of rows."""
        total = self.context.session.execute(
            sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
        ).scalar_one()
        page = max(1, page)
        rows = self.context.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page))
        return list(rows), int(total)

    def get_key(self, key_id: Any) -> APIKeyMixin | None:
        """Key *key_id* (any int-like value; anything else finds nothing)."""
        try:
            key_id = int(key_id)
        except (TypeError, ValueError):
            return None
        if not -(2**63) <= key_id < 2**63:
            return None
        return self.context.session.get(self.context.models.APIKey, key_id)

    def get_owned_key(self, user: Any, key_id: Any) -> APIKeyMixin | None:
        """*user*'s own key *key_id*, or ``None`` (also for other users' keys)."""
        key = self.get_key(key_id)
        if key is None or key.owner_id != self.context.user_id(user):
            return None
        return key

    def get_managed_key(self, admin: Any, key_id: Any) -> APIKeyMixin | None:
        """Key *key_id* if *admin* manages its organization, else ``None``."""
        key = self.get_key(key_id)
        if key is None or not self.context.can_manage_organization(admin, key.organization_id):
            return None
        return key

    def get_by_display_prefix(self, display_prefix: str) -> APIKeyMixin | None:
        APIKey = self.context.models.APIKey
        return self.context.session.execute(
            sa.select(APIKey).where(APIKey.display_prefix == display_prefix)
        ).scalar_one_or_none()

    def usable_keys_of(self, owner: Any, organization_id: Any = None) -> list[APIKeyMixin]:
        """The keys of *owner* (in *organization_id*, when given) that still work."""
        stmt = self.keys_query(owner=owner, organization_id=organization_id)
        return list(self.context.session.scalars(stmt.where(self.usable_clause())))

    def usable_key_counts(self, organization_id: Any) -> dict[Any, int]:
        """How many working keys each owner has in *organization_id*, in one query."""
        APIKey = self.context.models.APIKey
        stmt = (
            sa.select(APIKey.owner_id, sa.func.count())
            .where(
                APIKey.organization_id
                == self.context.models.coerce_organization_id_or_none(organization_id),
                self.usable_clause(),
            )
            .group_by(APIKey.owner_id)
        )
        return {owner_id: int(count) for owner_id, count in self.context.session.execute(stmt)}

    def key_owners(self, organization_id: Any) -> list[Any]:
        """Users owning at least one key in *organization_id*, ordered by id."""
        APIKey, User = self.context.models.APIKey, self.context.models.User
        user_pk = getattr(User, self.context.user_pk)
        owner_ids = sa.select(APIKey.owner_id).where(
            APIKey.organization_id
            == self.context.models.coerce_organization_id_or_none(organization_id)
        )
        stmt = sa.select(User).where(user_pk.in_(owner_ids)).order_by(user_pk)
        return list(self.context.session.execute(stmt).unique().scalars())

    def events(self, key: APIKeyMixin, limit: int = 100) -> list[APIKeyEventMixin]:
        """The audit events of *key*, newest first."""
        Event = self.context.models.APIKeyEvent
        stmt = (
            sa.select(Event)
            .where(Event.key_id == key.id)
            .order_by(Event.at.desc(), Event.id.desc())
            .limit(limit)
        )
        return list(self.context.session.execute(stmt).scalars())

    def daily_usage(self, key: APIKeyMixin, days: int = 30) -> list[tuple[dt.date, int]]:
        """Calls per UTC day for the last *days* days, oldest first, zeros included."""
        Usage = self.context.models.APIKeyUsageDay
        today = self.context.clock().date()
        first = today - dt.timedelta(days=days - 1)
        rows = self.context.session.execute(
            sa.select(Usage.day, Usage.count).where(Usage.key_id == key.id, Usage.day >= first)
        ).all()
        counts = {day: int(count) for day, count in rows}
        return [
            (first + dt.timedelta(days=n), counts.get(first + dt.timedelta(days=n), 0))
            for n in range(days)
        ]
