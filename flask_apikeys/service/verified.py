"""What a key that authenticated a request may do: :class:`VerifiedKey`, a small record.

It is made from the lookup's row, without an ORM object; ``.key`` and ``.owner`` load
the key and its owner into the request's session the first time a view asks for them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from ..db.models import APIKeyMixin
from ..db.schema import Models
from .quota_rules import Quota
from .resources import Selection, Statement, restrict_select, selection_allows

__all__ = ["KeyObjects", "VerifiedKey", "attach"]


class KeyObjects:
    """The key and its owner as objects of the request's session, loaded when first
    asked for (``Session.get``: no query when the session holds them already).

    *owner* is the owner object the lookup built for the host's Python loaders, if any.
    """

    __slots__ = ("_key", "_models", "_owner", "_session")

    def __init__(
        self,
        session: Session | scoped_session[Session],
        models: Models,
        owner: Any = None,
    ) -> None:
        self._session = session
        self._models = models
        self._owner = owner
        self._key: APIKeyMixin | None = None

    def key(self, key_id: int) -> APIKeyMixin:
        if self._key is None:
            key = self._session.get(self._models.APIKey, key_id)
            if key is None:  # keys are never deleted: only a test's cleanup gets here
                raise LookupError(f"API key {key_id} is gone")
            self._key = key
        return self._key

    def owner(self, owner_id: Any) -> Any:
        owner = self._owner
        if owner is None or sa.inspect(owner).detached:
            if owner is not None:  # loaded with the key's row: no query
                owner = self._session.merge(owner, load=False)
            else:
                owner = self._session.get(self._models.User, owner_id)
            self._owner = owner
        return owner


@dataclass(frozen=True, eq=False, slots=True)
class VerifiedKey:
    """A key that authenticated a request, with what it may do right now.

    Every field comes from the request's one SELECT. ``key`` and ``owner`` are the
    ORM objects, in the request's session: one query each, the first time a view
    asks (none when the session holds them already).
    """

    id: int
    name: str
    display_prefix: str
    owner_id: Any
    organization_id: Any
    #: The key's scopes ∩ what its owner holds now (all the owner holds for a
    #: full-access key), cut to what its organization allows.
    scopes: frozenset[str]
    expires_at: dt.datetime | None = None
    rate_limit: str | None = None
    ip_allowlist: list[str] | None = None
    #: The key's quota, with the counter it counts on (``None``: no quota).
    quota: Quota | None = None
    #: The resources the key is limited to, by kind (``None``: not limited).
    resources: Selection | None = None
    objects: KeyObjects | None = field(default=None, repr=False)

    @property
    def key(self) -> APIKeyMixin:
        """The key, as an object of the request's session."""
        return self._objects().key(self.id)

    @property
    def owner(self) -> Any:
        """The key's owner (the host's user model), as an object of the request's session."""
        return self._objects().owner(self.owner_id)

    def _objects(self) -> KeyObjects:
        if self.objects is None:
            raise RuntimeError("this VerifiedKey was made without a session")
        return self.objects

    def allows(self, kind: str, resource_id: Any) -> bool:
        """Whether the key may use resource *resource_id* of *kind* (ids compare as text)."""
        return selection_allows(self.resources, kind, resource_id)

    def restrict(self, statement: Statement, kind: str, column: Any) -> Statement:
        """*statement* with ``WHERE column IN (...)`` when the key is limited to chosen
        resources of *kind*; unchanged otherwise."""
        return restrict_select(statement, self.resources, kind, column)

    def has_scopes(self, *scopes: str) -> bool:
        return set(scopes) <= self.scopes

    def missing_scopes(self, scopes: Iterable[str]) -> list[str]:
        return sorted(set(scopes) - self.scopes)

    def __repr__(self) -> str:
        return f"<VerifiedKey {self.display_prefix} scopes={sorted(self.scopes)}>"


def attach(session: Session | scoped_session[Session], obj: Any) -> Any:
    """*obj* (with what was loaded with it) as an object of *session*, without a query."""
    if sa.inspect(obj).detached:
        return session.merge(obj, load=False)
    return obj
