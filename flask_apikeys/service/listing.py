"""Reading keys for the list pages: keyset pages, counts, policy marks, rotation links.

Nothing here writes. :meth:`KeyListing.key_page` reads one page of a filtered, sorted
list after or before a cursor (:mod:`.keyset`), never by OFFSET, with links to the pages
around it; :meth:`KeyListing.status_counts` counts the list by status in one bounded
query. :meth:`KeyListing.policy_clause` finds the keys that break their organization's
policy (outlive its lifetime, hold more than its permissions), and
:meth:`KeyListing.rotation_links` finds, in one SELECT, the key each key was rotated
from and the key that replaced it, so two keys of the same name can say which is which.
Links never cross owners or organizations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from ..db.models import APIKeyMixin, KeyStatus
from .context import ServiceContext
from .keyset import (
    COUNT_CAP,
    SORT_DIRECTIONS,
    KeyPage,
    Order,
    StatusCounts,
    page_links,
    read_cursor,
)
from .queries import KeyQueries, KeySelect
from .validation import RequestRefused

__all__ = [
    "POLICY_RULES",
    "SORT_DIRECTIONS",
    "KeyListing",
    "KeyPage",
    "RotationLinks",
    "StatusCounts",
]

#: What a list can ask of the organization's policy: keys that break any rule, or one.
POLICY_RULES = ("any", "lifetime", "permissions")


@dataclass
class RotationLinks:
    """For keys by id: the key each was rotated from, and the key that replaced it."""

    rotated_from: dict[int, APIKeyMixin] = field(default_factory=dict)
    replaced_by: dict[int, APIKeyMixin] = field(default_factory=dict)


class KeyListing:
    """Orders and rotation links for the pages of :class:`~flask_apikeys.KeyService`."""

    def __init__(self, context: ServiceContext, queries: KeyQueries) -> None:
        self.context = context
        self.queries = queries

    def order(self, sort: str = "created", direction: str | None = None) -> Order:
        """The order of a list sorted by *sort* (a key of :data:`SORT_DIRECTIONS`)
        ``asc`` or ``desc`` (default: the sort's own)."""
        if sort not in SORT_DIRECTIONS:
            raise RequestRefused(f"Unknown sort {sort[:20]!r}.", field="sort")
        direction = direction or SORT_DIRECTIONS[sort]
        if direction not in ("asc", "desc"):
            raise RequestRefused(f"Unknown direction {direction[:20]!r}.", field="dir")
        APIKey = self.context.models.APIKey
        column: Any = {
            "created": APIKey.created_at,
            "name": sa.func.lower(APIKey.name),
            "last_used": APIKey.last_used_at,
            "expires": APIKey.expires_at,
            "usage": APIKey.usage_count,
        }[sort]
        return Order.of(sort, direction, column, APIKey.id)

    def ordered_keys_query(
        self, sort: str = "created", direction: str | None = None, **filters: Any
    ) -> KeySelect:
        """:meth:`keys_query` with *filters*, ordered by *sort* (a key of
        :data:`SORT_DIRECTIONS`) ``asc`` or ``desc`` (default: the sort's own).

        Keys without a value (never used, never expiring) come last when sorted by the
        natural direction and first when reversed; ties are broken by id.
        """
        order = self.order(sort, direction)
        return self.queries.keys_query(**filters).order_by(None).order_by(*order.clauses())

    # -- pages -----------------------------------------------------------------------------

    def list_filters(
        self,
        *,
        owner: Any = None,
        organization_id: Any = None,
        status: str | None = None,
        search: str | None = None,
        breaks: str | None = None,
        now: dt.datetime | None = None,
    ) -> list[sa.ColumnElement[bool]]:
        """:meth:`~flask_apikeys.queries.KeyQueries.key_filters`, and *breaks* (one of
        :data:`POLICY_RULES`): only keys that break *organization_id*'s policy."""
        now = now or self.context.clock()
        clauses = self.queries.key_filters(
            owner=owner, organization_id=organization_id, status=status, search=search, now=now
        )
        if breaks:
            if organization_id is None:
                raise RequestRefused("Policies are an organization's.", field="policy")
            clauses.append(self.policy_clause(organization_id, breaks, now))
        return clauses

    def status_counts(self, *, cap: int = COUNT_CAP, **filters: Any) -> StatusCounts:
        """How many keys of the list *filters* pick are active, expired and revoked, in
        one query that reads at most *cap* keys (``capped`` when it read that many: the
        counts are then at least what they say)."""
        now = self.context.clock()
        organization_id = filters.get("organization_id")
        state = sa.case(
            (self.queries.status_clause(KeyStatus.REVOKED, now), KeyStatus.REVOKED),
            (self.queries.status_clause(KeyStatus.EXPIRED, now, organization_id), "expired"),
            else_=KeyStatus.ACTIVE,
        ).label("state")
        rows = sa.select(state).where(*self.list_filters(now=now, **filters)).limit(cap).subquery()
        stmt = sa.select(rows.c.state, sa.func.count()).group_by(rows.c.state)
        found = {str(name): int(count) for name, count in self.context.session.execute(stmt)}
        return StatusCounts.from_rows(found, cap)

    def key_page(
        self,
        *,
        sort: str = "created",
        direction: str | None = None,
        after: str | None = None,
        before: str | None = None,
        last: bool = False,
        number: int = 1,
        per_page: int = 25,
        window: int = 2,
        counts: StatusCounts | None = None,
        **filters: Any,
    ) -> KeyPage:
        """One page of the keys *filters* pick (see :meth:`list_filters`), sorted.

        The first page, the one after the cursor *after*, the one before *before*, or
        the *last* one; *number* is the page's number as the link that opened it said
        (corrected when the rows say otherwise). *counts* are :meth:`status_counts` of
        the same filters, when the caller has them. Two or three queries, whatever the
        page: the page and *window* pages beyond it, the pages before it, the count.
        """
        order = self.order(sort, direction)
        per_page = max(1, int(per_page))
        if counts is None:
            counts = self.status_counts(**{k: v for k, v in filters.items() if k != "status"})
        total = counts.of(filters.get("status"))
        pages = max(1, -(-total // per_page))
        where = self.list_filters(**filters)
        beyond = window * per_page + 1  # rows past a page: where the next pages start

        def done(rows: list[Any], number: int, behind: list[Any], ahead: list[Any]) -> KeyPage:
            return self._page(
                order, rows, number, per_page, total, pages, counts, behind, ahead, window
            )

        start_after = read_cursor(after, order) if after else None
        start_before = read_cursor(before, order) if before and not start_after else None
        if start_before is not None:
            rows = self._rows(order.reversed(), where, start_before, per_page + beyond)
            if len(rows) >= per_page:  # else back at the start: a whole first page
                page = rows[:per_page][::-1]
                ahead = self._points(order, where, page[-1], beyond - per_page)
                return done(page, max(2, number), _points(page[0], rows[per_page:]), ahead)
        elif last and not counts.capped and total > 0:
            size = total - (pages - 1) * per_page
            rows = self._rows(order.reversed(), where, None, size + beyond)
            page = rows[:size][::-1]
            if page:
                return done(page, pages, _points(page[0], rows[size:]), [_point(page[-1])])
        rows = self._rows(order, where, start_after, beyond)
        if start_after is not None and not rows:  # past the end (keys went): the last page
            return self.key_page(
                sort=sort, direction=direction, last=True, per_page=per_page, window=window,
                counts=counts, **filters,
            )  # fmt: skip
        page = rows[:per_page]
        if not page:
            return done([], 1, [], [])
        behind = [_point(page[0])]
        if start_after is not None:
            behind = self._points(order.reversed(), where, page[0], beyond)
        return done(page, number, behind, _points(page[-1], rows[per_page:]))

    def _rows(
        self, order: Order, where: list[Any], cursor: tuple[Any, int] | None, limit: int
    ) -> list[Any]:
        """Up to *limit* rows (key, sort value) in *order* after *cursor*."""
        APIKey = self.context.models.APIKey
        stmt = sa.select(APIKey, order.column.label("ak_sort")).where(*where)
        if cursor is not None:
            stmt = stmt.where(order.beyond(*cursor))
        if self.context.models.APIKeyPolicy is not None:  # idle keys show as expired
            stmt = stmt.options(selectinload(APIKey.organization_policy))
        stmt = stmt.order_by(*order.clauses()).limit(limit)
        return list(self.context.session.execute(stmt))

    def _points(self, order: Order, where: list[Any], row: Any, limit: int) -> list[Any]:
        """(value, id) of *row*, then of up to *limit* rows after it in *order*: where
        the pages beyond start. Reads the two columns only."""
        if limit <= 0:
            return [_point(row)]
        stmt = (
            sa.select(order.column, order.id_column)
            .where(*where, order.beyond(*_point(row)))
            .order_by(*order.clauses())
            .limit(limit)
        )
        return [_point(row), *((value, id_) for value, id_ in self.context.session.execute(stmt))]

    def _page(
        self,
        order: Order,
        rows: list[Any],
        number: int,
        per_page: int,
        total: int,
        pages: int,
        counts: StatusCounts,
        behind: list[Any],
        ahead: list[Any],
        window: int,
    ) -> KeyPage:
        number, nearby = page_links(order, number, per_page, behind, ahead, window)
        has_next = len(ahead) > 1
        pages = max(pages, number + (1 if has_next else 0))
        index = {n: link for n, link in nearby}
        last_link = None
        if has_next and not counts.capped and pages not in index:
            last_link = {"page": "last"}
        return KeyPage(
            keys=[row[0] for row in rows],
            number=number,
            per_page=per_page,
            total=total,
            pages=pages,
            capped=counts.capped,
            previous=index.get(number - 1),
            next=index.get(number + 1),
            nearby=nearby,
            last=last_link,
        )

    # -- policies --------------------------------------------------------------------------

    def policy_clause(
        self, organization_id: Any, rule: str = "any", now: dt.datetime | None = None
    ) -> sa.ColumnElement[bool]:
        """Working keys of *organization_id* that break its policy's *rule* (one of
        :data:`POLICY_RULES`): expire later than its maximum lifetime allows from now
        (or never), or hold a permission it does not allow. False when it has no such
        rule."""
        if rule not in POLICY_RULES:
            raise RequestRefused(f"Unknown policy rule {rule[:20]!r}.", field="policy")
        now = now or self.context.clock()
        APIKey = self.context.models.APIKey
        policy = self._policy(organization_id)
        rules: list[sa.ColumnElement[bool]] = []
        days = policy.max_lifetime_days if policy is not None else None
        if days is not None and rule in ("any", "lifetime"):
            bound = now + lifetime_slack(days)
            rules.append(sa.or_(APIKey.expires_at.is_(None), APIKey.expires_at > bound))
        allowed = policy.allowed_permissions if policy is not None else None
        if allowed is not None and rule in ("any", "permissions"):
            rules.append(self._holds_other_than(allowed))
        if not rules:
            return sa.false()
        return sa.and_(self.queries.usable_clause(now), sa.or_(*rules))

    def policy_breaches(self, key: APIKeyMixin, now: dt.datetime | None = None) -> list[str]:
        """The rules of its organization's policy *key* breaks: ``"lifetime"``,
        ``"permissions"``, both or none. Reads the policy loaded with the key."""
        policy = getattr(key, "organization_policy", None)
        now = now or self.context.clock()
        if policy is None or key.status_at(now) != KeyStatus.ACTIVE:
            return []
        broken = []
        days = policy.max_lifetime_days
        if days is not None and (
            key.expires_at is None or key.expires_at > now + lifetime_slack(days)
        ):
            broken.append("lifetime")
        allowed = policy.allowed_permissions
        scopes = () if key.full_access else key.scopes or ()
        if allowed is not None and any(scope not in allowed for scope in scopes):
            broken.append("permissions")
        return broken

    def keys_breaking_policy(
        self, organization_id: Any, rule: str, *, limit: int = 5
    ) -> tuple[list[APIKeyMixin], int]:
        """The newest *limit* keys that break *rule*, and how many do (in all)."""
        counts = self.status_counts(organization_id=organization_id, breaks=rule)
        if not counts.all:
            return [], 0
        stmt = self.queries.keys_query(organization_id=organization_id).where(
            self.policy_clause(organization_id, rule)
        )
        return list(self.context.session.scalars(stmt.limit(limit))), counts.all

    def _policy(self, organization_id: Any) -> Any:
        Policy = self.context.models.APIKeyPolicy
        org_id = self.context.models.coerce_organization_id_or_none(organization_id)
        if Policy is None or org_id is None:
            return None
        return self.context.session.get(Policy, org_id)

    def _holds_other_than(self, allowed: Sequence[str]) -> sa.ColumnElement[bool]:
        """Keys whose scopes name a permission not in *allowed* (full access is cut to
        the policy per request, so it breaks nothing)."""
        APIKey = self.context.models.APIKey
        dialect = self.context.session.get_bind().dialect.name
        if dialect == "postgresql":
            names: Any = sa.func.json_array_elements_text(APIKey.scopes).table_valued("value")
        elif dialect == "sqlite":
            names = sa.func.json_each(APIKey.scopes).table_valued("value")
        else:  # no JSON table function: the known names not allowed, in the JSON text
            known = self.context.known_permissions or {}
            text = sa.cast(APIKey.scopes, sa.Text)
            found = [
                text.like(f'%"{_escaped(name)}"%', escape="\\")
                for name in known
                if name not in allowed
            ]
            return sa.and_(APIKey.full_access.is_(False), sa.or_(sa.false(), *found))
        other = sa.select(names.c.value).where(names.c.value.not_in(list(allowed)))
        return sa.and_(APIKey.full_access.is_(False), other.exists())

    def rotation_links(self, keys: Sequence[APIKeyMixin]) -> RotationLinks:
        """The predecessors and successors of *keys*, in one SELECT (none for no keys).

        Only keys of the same owner and organization are linked, so a page never shows
        a key its viewer could not open.
        """
        links = RotationLinks()
        if not keys:
            return links
        APIKey = self.context.models.APIKey
        ids = [key.id for key in keys]
        previous = [key.rotated_from_id for key in keys if key.rotated_from_id is not None]
        condition: sa.ColumnElement[bool] = APIKey.rotated_from_id.in_(ids)
        if previous:
            condition = sa.or_(condition, APIKey.id.in_(previous))
        found = list(self.context.session.scalars(sa.select(APIKey).where(condition)))
        by_id = {key.id: key for key in [*found, *keys]}
        for key in keys:
            before = by_id.get(key.rotated_from_id) if key.rotated_from_id is not None else None
            if before is not None and _same_place(before, key):
                links.rotated_from[key.id] = before
        for other in sorted(found, key=lambda k: (k.created_at, k.id)):
            before = by_id.get(other.rotated_from_id) if other.rotated_from_id else None
            if before is not None and before.id in ids and _same_place(before, other):
                links.replaced_by[before.id] = other  # the newest successor wins
        return links


def _same_place(a: APIKeyMixin, b: APIKeyMixin) -> bool:
    return bool(a.owner_id == b.owner_id and a.organization_id == b.organization_id)


def _point(row: Any) -> tuple[Any, int]:
    """(sort value, id) of a row of :meth:`KeyListing._rows`."""
    return row[1], row[0].id


def _points(row: Any, more: list[Any]) -> list[tuple[Any, int]]:
    return [_point(row), *map(_point, more)]


def _escaped(name: str) -> str:
    return name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def lifetime_slack(days: int) -> dt.timedelta:
    """How far from now a key may expire under a maximum lifetime of *days*: a date
    picked on the form means "through that day", so up to a day past the limit."""
    return dt.timedelta(days=days + 1)
