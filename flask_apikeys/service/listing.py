"""Reading keys for the list pages: sortable orders and the links between rotated keys.

Nothing here writes. :meth:`KeyListing.ordered_keys_query` re-orders a
filtered :meth:`~flask_apikeys.queries.KeyQueries.keys_query` by a column in either
direction; :meth:`KeyListing.rotation_links` finds, in one SELECT, the key each key was
rotated from and the key that replaced it, so two keys of the same name can say which
is which. Links never cross owners or organizations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..db.models import APIKeyMixin
from .context import ServiceContext
from .queries import KeyQueries, KeySelect
from .validation import RequestRefused

__all__ = ["SORT_DIRECTIONS", "KeyListing", "RotationLinks"]

#: Each sort and the direction it takes when none is asked for.
SORT_DIRECTIONS: dict[str, str] = {
    "created": "desc",
    "name": "asc",
    "last_used": "desc",
    "expires": "asc",
    "usage": "desc",
}


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

    def ordered_keys_query(
        self, sort: str = "created", direction: str | None = None, **filters: Any
    ) -> KeySelect:
        """:meth:`keys_query` with *filters*, ordered by *sort* (a key of
        :data:`SORT_DIRECTIONS`) ``asc`` or ``desc`` (default: the sort's own).

        Keys without a value (never used, never expiring) come last when sorted by the
        natural direction and first when reversed; ties are broken by id.
        """
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
        natural = direction == SORT_DIRECTIONS[sort]
        nulls_last = column.is_(None) if natural else column.is_not(None)
        if direction == "asc":
            order = (nulls_last, column.asc(), APIKey.id.asc())
        else:
            order = (nulls_last, column.desc(), APIKey.id.desc())
        return self.queries.keys_query(**filters).order_by(None).order_by(*order)

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
