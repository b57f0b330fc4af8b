"""A presented key → a :class:`VerifiedKey`, or the reason it is refused.

Layer 3. A malformed key or a bad checksum costs no query; a well-formed one costs the
lookup's one SELECT (plus whatever the host's permissions loader does). Nothing is
written and nothing that decides validity is cached: revocation, expiry, the owner's
``is_active`` and the owner's permissions are judged on every call.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.exc import DetachedInstanceError

from ..db.lookup import KeyLookup
from ..db.models import APIKeyMixin, KeyStatus
from ..keys import format as keyformat
from .context import ServiceContext
from .quota_rules import Quota
from .resources import Selection, Statement, restrict_select, selection_allows

__all__ = ["AuthenticationFailed", "KeyVerification", "VerifiedKey"]


class AuthenticationFailed(Exception):
    """A presented key was refused. ``code`` is the error code of the contract; ``key``
    is the refused key when it was found (revoked, expired, inactive owner); ``reason``
    says more when the code does not (``"idle"``: expired by its organization's idle expiry)."""

    def __init__(
        self, code: str, message: str, key: APIKeyMixin | None = None, *, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.key = key
        self.reason = reason


class VerifiedKey:
    """A key that authenticated a request, with what it may do right now.

    ``scopes``, ``id``, ``display_prefix``, ``organization_id``, ``rate_limit`` and
    ``ip_allowlist`` are read from the key as the lookup loaded it. ``key`` and
    ``owner`` are objects of the request's session, merged into it the first time
    either is asked for (no query: they were loaded by the lookup), so views can
    lazy-load from them and change them.
    """

    __slots__ = ("_key", "_owner", "_session", "scopes")

    def __init__(
        self,
        key: APIKeyMixin,
        owner: Any,
        scopes: frozenset[str],
        session: Session | scoped_session[Session] | None = None,
    ) -> None:
        self._key = key
        self._owner = owner
        self._session = session
        #: The key's scopes ∩ what its owner holds now (all the owner holds for a
        #: full-access key).
        self.scopes = scopes

    def _attach(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            self._key = attach(session, self._key)
            self._owner = self._key.owner

    @property
    def key(self) -> APIKeyMixin:
        """The key, as an object of the request's session."""
        if self._session is not None:
            self._attach()
        return self._key

    @property
    def owner(self) -> Any:
        """The key's owner (the host's user model), as an object of the request's session."""
        if self._session is not None:
            self._attach()
        return self._owner

    @property
    def id(self) -> int:
        return self._key.id

    @property
    def organization_id(self) -> Any:
        return self._key.organization_id

    @property
    def display_prefix(self) -> str:
        return self._key.display_prefix

    @property
    def rate_limit(self) -> str | None:
        return self._key.rate_limit

    @property
    def ip_allowlist(self) -> list[str] | None:
        return self._key.ip_allowlist

    @property
    def quota(self) -> Quota | None:
        """The key's quota, with the counter it counts on (``None``: no quota)."""
        return Quota.of(self._key)

    @property
    def resources(self) -> Selection | None:
        """The resources the key is limited to, by kind (``None``: not limited). A copy:
        the key itself may serve later requests."""
        selection = self._key.resources
        return None if selection is None else {kind: list(ids) for kind, ids in selection.items()}

    def allows(self, kind: str, resource_id: Any) -> bool:
        """Whether the key may use resource *resource_id* of *kind* (ids compare as text)."""
        return selection_allows(self._key.resources, kind, resource_id)

    def restrict(self, statement: Statement, kind: str, column: Any) -> Statement:
        """*statement* with ``WHERE column IN (...)`` when the key is limited to chosen
        resources of *kind*; unchanged otherwise."""
        return restrict_select(statement, self._key.resources, kind, column)

    def has_scopes(self, *scopes: str) -> bool:
        return set(scopes) <= self.scopes

    def missing_scopes(self, scopes: Iterable[str]) -> list[str]:
        return sorted(set(scopes) - self.scopes)

    def __repr__(self) -> str:
        return f"<VerifiedKey {self.display_prefix} scopes={sorted(self.scopes)}>"


def attach(session: Session | scoped_session[Session], key: APIKeyMixin) -> APIKeyMixin:
    """*key* (and its owner, loaded with it) as objects of *session*, without a query."""
    if sa.inspect(key).detached:
        return session.merge(key, load=False)
    return key


class KeyVerification:
    """A presented secret → a :class:`VerifiedKey`: ``service.verifier``."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context

    @functools.cached_property
    def key_lookup(self) -> KeyLookup:
        """The hot path's one SELECT, on connections of the session's engine."""
        return KeyLookup(self.context.session, self.context.models)

    def find_by_secret(self, secret: str) -> APIKeyMixin | None:
        """The key for *secret* with its owner, in the session; ``None`` if unknown."""
        key = self.key_lookup.find(self.context.hash(secret))
        return None if key is None else attach(self.context.session, key)

    def verify(self, secret: str) -> VerifiedKey:
        """Check *secret* and return what it may do, or raise :class:`AuthenticationFailed`."""
        if not keyformat.is_well_formed(secret, self.context.prefix):
            raise AuthenticationFailed("invalid_api_key", "The API key is not valid.")
        return self.verify_well_formed(secret)

    def verify_well_formed(self, secret: str) -> VerifiedKey:
        """:meth:`verify` for a *secret* whose shape and checksum were checked already."""
        key_hash = self.context.hash(secret)
        key = self.key_lookup.find(key_hash)
        # The index found the row by hash; compare again in constant time anyway.
        if key is None or not hmac.compare_digest(key.key_hash, key_hash):
            raise AuthenticationFailed("invalid_api_key", "The API key is not valid.")
        now = self.context.clock()
        status = key.status_at(now)
        if status == KeyStatus.REVOKED:
            raise self._refused("revoked_api_key", "The API key has been revoked.", key)
        if status == KeyStatus.EXPIRED:
            raise self._refused("expired_api_key", "The API key has expired.", key)
        for check in self.context.extensions.key_checks:
            check(key, now)
        owner = key.owner
        if not self.context.is_active(owner):
            raise self._refused(
                "inactive_user", "The owner of this API key is no longer active.", key
            )
        try:
            scopes = self.context.effective_scopes(key, owner)
        except DetachedInstanceError:
            # The host's permissions loader reads something the lookup did not load
            # with the owner: it gets the owner in the request's session (and a query).
            key = attach(self.context.session, key)
            owner = key.owner
            scopes = self.context.effective_scopes(key, owner)
        return VerifiedKey(key, owner, scopes, self.context.session)

    def _refused(self, code: str, message: str, key: APIKeyMixin) -> AuthenticationFailed:
        # Listeners and the audit trail get the key as an object of the session.
        return AuthenticationFailed(code, message, attach(self.context.session, key))
