"""Every change to a key — issue, rotate, revoke, rename, restrict — with its audit event.

Layer 3. Each method checks who may do it, writes the change and its audit row in one
transaction, commits, then tells the listener (the extension turns that into a
signal and a log line). Refusals raise :class:`~flask_apikeys.RequestRefused` with a
sentence for the person who asked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..db.models import APIKeyMixin, KeyStatus
from ..keys import format as keyformat
from ..keys.network import storable_address
from .queries import KeyQueries
from .validation import (
    RequestRefused,
    clean_name,
    clean_reason,
)

__all__ = ["IssuedKey", "KeyLifecycle"]

_DISPLAY_PREFIX_TRIES = 8


@dataclass(frozen=True)
class IssuedKey:
    """A key just created or rotated, with its secret: show it once, then drop it."""

    key: APIKeyMixin
    secret: str = field(repr=False)


class KeyLifecycle(KeyQueries):
    """The write side of :class:`~flask_apikeys.KeyService`."""

    def issue(
        self,
        owner: Any,
        name: str,
        scopes: Collection[str] = (),
        *,
        full_access: bool = False,
        organization_id: Any = None,
        expires_at: dt.datetime | None = None,
        actor: Any = None,
        ip: str | None = None,
        rate_limit: str | None = None,
        ip_allowlist: Sequence[str] | None = None,
        resources: dict[str, list[str]] | None = None,  # checked by KeyResources.issue
        quota: Any = None,  # a Quota: see KeyQuotas.issue
    ) -> IssuedKey:
        """Create a key for *owner* and return it with its secret (the only copy).

        *actor* is who asked (``None`` for an operator); only the owner may create
        their own keys. Raises :class:`RequestRefused` with a message for the user.
        """
        if actor is not None and self.user_id(actor) != self.user_id(owner):
            raise RequestRefused("You can only create API keys for yourself.")
        name = clean_name(name)
        organization_id = self._choose_organization(owner, organization_id)
        refusal = self.creation_refusal(owner, organization_id)
        if refusal is not None:
            raise RequestRefused(refusal)
        chosen = self._check_scopes(owner, organization_id, scopes, full_access)
        now = self.clock()
        self._check_expiry(expires_at, now, organization_id)
        allowlist = list(ip_allowlist) if ip_allowlist else None
        return self._create(
            owner=owner,
            name=name,
            scopes=chosen,
            full_access=full_access,
            organization_id=organization_id,
            expires_at=expires_at,
            actor=actor,
            ip=ip,
            rate_limit=rate_limit,
            ip_allowlist=allowlist,
            now=now,
            resources=resources,
            quota=quota,
        )

    def rotate(
        self,
        key: APIKeyMixin,
        *,
        actor: Any = None,
        grace: dt.timedelta = dt.timedelta(0),
        ip: str | None = None,
    ) -> IssuedKey:
        """Replace *key* with a new secret; the old one works for *grace* more.

        The new key keeps the name, scopes, organization and limits; an expiring
        key gets the same lifetime again, counted from now.
        """
        if actor is not None and self.user_id(actor) != key.owner_id:
            raise RequestRefused("Only the owner of a key can rotate it.")
        if grace < dt.timedelta(0):
            raise RequestRefused("The grace period cannot be negative.", field="grace")
        now = self.clock()
        if key.status_at(now) != KeyStatus.ACTIVE:
            raise RequestRefused("Only an active key can be rotated.")
        if key.revoked_at is not None:
            raise RequestRefused("This key has already been rotated.")
        owner = key.owner
        if not self.is_active(owner):
            raise RequestRefused("This user is not active.")
        held = self.permissions_of(owner, key.organization_id)
        if self.create_permission not in held:
            raise RequestRefused(
                f"You need the '{self.create_permission}' permission to rotate API keys."
            )
        scopes = [s for s in key.scopes or () if s in held]
        if not scopes and not key.full_access:
            raise RequestRefused("The owner no longer holds any of this key's permissions.")
        expires_at = None
        if key.expires_at is not None:
            expires_at = now + (key.expires_at - key.created_at)
        until = now + grace
        key.revoked_at = until
        key.revoked_reason = "rotated"
        key.revoked_by_id = self.user_id(actor) if actor is not None else None
        issued = self._create(
            owner=owner,
            name=key.name,
            scopes=scopes,
            full_access=key.full_access,
            organization_id=key.organization_id,
            expires_at=expires_at,
            actor=actor,
            ip=ip,
            rate_limit=key.rate_limit,
            ip_allowlist=key.ip_allowlist,
            now=now,
            rotated_from=key,
            commit=False,
        )
        self._audit(
            key,
            "rotated",
            actor,
            ip,
            now,
            replaced_by=issued.key.display_prefix,
            works_until=until.isoformat(),
        )
        self.session.commit()
        self._emit("rotated", key, actor=actor, new_key=issued.key, grace=grace)
        self._emit("created", issued.key, actor=actor)
        return issued

    def revoke(
        self,
        key: APIKeyMixin,
        *,
        actor: Any = None,
        reason: str | None = None,
        ip: str | None = None,
    ) -> bool:
        """Revoke *key* now. Returns ``False`` if it was already revoked.

        Allowed to its owner, to an admin of its organization, and to operators.
        """
        self._check_may_change(key, actor)
        reason = clean_reason(reason)
        now = self.clock()
        if key.revoked_at is not None and key.revoked_at <= now:
            return False
        key.revoked_at = now
        key.revoked_reason = reason or "revoked"
        key.revoked_by_id = self.user_id(actor) if actor is not None else None
        self._audit(key, "revoked", actor, ip, now, reason=reason)
        self.session.commit()
        self._emit("revoked", key, actor=actor, reason=reason)
        return True

    def revoke_user_keys(
        self,
        owner: Any,
        *,
        actor: Any = None,
        organization_id: Any = None,
        reason: str | None = None,
        ip: str | None = None,
    ) -> int:
        """Revoke every usable key of *owner* (in *organization_id*, when given).

        For offboarding. An admin must name an organization they manage; an
        operator (no actor) may revoke the user's keys everywhere. All or nothing.
        """
        if actor is not None and not self.can_manage_organization(actor, organization_id):
            raise RequestRefused(
                f"You need the '{self.manage_permission}' permission in this organization."
            )
        reason = clean_reason(reason) or "offboarded"
        now = self.clock()
        keys = self.usable_keys_of(owner, organization_id)
        for key in keys:
            key.revoked_at = now
            key.revoked_reason = reason
            key.revoked_by_id = self.user_id(actor) if actor is not None else None
            self._audit(key, "revoked", actor, ip, now, reason=reason, bulk=True)
        self.session.commit()
        for key in keys:
            self._emit("revoked", key, actor=actor, reason=reason)
        return len(keys)

    def rename(
        self, key: APIKeyMixin, name: str, *, actor: Any = None, ip: str | None = None
    ) -> None:
        """Give *key* a new name (owner or operator only)."""
        if actor is not None and self.user_id(actor) != key.owner_id:
            raise RequestRefused("Only the owner of a key can rename it.")
        name = clean_name(name)
        old = key.name
        if name == old:
            return
        key.name = name
        self._audit(key, "renamed", actor, ip, self.clock(), old_name=old, new_name=name)
        self.session.commit()
        self._emit("renamed", key, actor=actor, old_name=old)

    def audit(
        self,
        key: APIKeyMixin,
        event: str,
        *,
        actor: Any = None,
        ip: str | None = None,
        **details: Any,
    ) -> None:
        """Record *event* on *key* (e.g. a use after expiry) and commit."""
        self._audit(key, event, actor, ip, self.clock(), **details)
        self.session.commit()

    def _choose_organization(self, owner: Any, organization_id: Any) -> Any:
        if self._organizations is None:
            if organization_id is not None:
                raise RequestRefused("Organizations are not enabled.", field="organization")
            return None
        orgs = self.organizations_of(owner)
        if organization_id is None or organization_id == "":
            if len(orgs) > 1:
                raise RequestRefused("Choose an organization for the key.", field="organization")
            return orgs[0].id if orgs else None
        wanted = self.models.coerce_organization_id_or_none(organization_id)
        for org in orgs:
            if org.id == wanted:
                return org.id
        raise RequestRefused("You are not a member of that organization.", field="organization")

    def _check_scopes(
        self, owner: Any, organization_id: Any, scopes: Collection[str], full_access: bool
    ) -> list[str]:
        if isinstance(scopes, str):
            scopes = [scopes]
        held = self.permissions_of(owner, organization_id)
        chosen: list[str] = []
        for scope in scopes:
            if not isinstance(scope, str) or not scope:
                raise RequestRefused("Permissions must be names.", field="scopes")
            if self.known_permissions is not None and scope not in self.known_permissions:
                raise RequestRefused(f"Unknown permission {scope[:80]!r}.", field="scopes")
            if not self.may_hold(scope):
                raise RequestRefused(
                    f"'{scope}' governs API keys themselves and cannot be put on a key.",
                    field="scopes",
                )
            if scope not in held:
                raise RequestRefused(
                    f"You cannot grant '{scope}': you do not hold it.", field="scopes"
                )
            if scope not in chosen:
                chosen.append(scope)
        if full_access:
            return []
        if not chosen:
            raise RequestRefused("Choose at least one permission.", field="scopes")
        return sorted(chosen)

    def _check_expiry(
        self, expires_at: dt.datetime | None, now: dt.datetime, organization_id: Any = None
    ) -> None:  # organization_id: for its own limit (KeyPolicies)
        if expires_at is None:
            if self.max_lifetime is not None:
                raise RequestRefused(
                    f"Keys must expire within {self.max_lifetime.days} days.", field="expires"
                )
            return
        if expires_at.tzinfo is None:
            raise RequestRefused("The expiry needs a time zone.", field="expires")
        if expires_at <= now:
            raise RequestRefused("The expiry must be in the future.", field="expires")
        if self.max_lifetime is not None and expires_at > now + self.max_lifetime + dt.timedelta(
            days=1
        ):
            raise RequestRefused(
                f"Keys must expire within {self.max_lifetime.days} days.", field="expires"
            )

    def _create(
        self,
        *,
        owner: Any,
        name: str,
        scopes: list[str],
        full_access: bool,
        organization_id: Any,
        expires_at: dt.datetime | None,
        actor: Any,
        ip: str | None,
        rate_limit: str | None,
        ip_allowlist: list[str] | None,
        now: dt.datetime,
        rotated_from: Any = None,
        commit: bool = True,
        resources: dict[str, list[str]] | None = None,
        quota: Any = None,  # set by KeyQuotas._create
    ) -> IssuedKey:
        generated = self._generate_unique()
        key = self.models.APIKey(
            name=name,
            display_prefix=generated.display_prefix,
            key_hash=self.hash(generated.secret),
            scopes=scopes,
            full_access=full_access,
            organization_id=organization_id,
            owner_id=self.user_id(owner),
            created_by_id=self.user_id(actor) if actor is not None else None,
            created_at=now,
            expires_at=expires_at,
            usage_count=0,
            rate_limit=rate_limit,
            ip_allowlist=ip_allowlist,
            rotated_from_id=rotated_from.id if rotated_from is not None else None,
            resources=rotated_from.resources if rotated_from is not None else resources,
        )
        if rotated_from is not None:  # a rotation keeps who answers for the restrictions
            key.ip_allowlist_set_by_id = rotated_from.ip_allowlist_set_by_id
            key.rate_limit_set_by_id = rotated_from.rate_limit_set_by_id
        elif ip_allowlist:
            key.ip_allowlist_set_by_id = self.user_id(actor) if actor is not None else None
        self.session.add(key)
        self.session.flush()
        details: dict[str, Any] = {
            "scopes": "full access" if full_access else scopes,
            "expires_at": expires_at.isoformat() if expires_at else None,
        }
        if rotated_from is not None:
            details["rotated_from"] = rotated_from.display_prefix
        self._audit(key, "created", actor, ip, now, **details)
        if commit:
            self.session.commit()
            self._emit("created", key, actor=actor)
        return IssuedKey(key=key, secret=generated.secret)

    def _generate_unique(self) -> keyformat.GeneratedKey:
        APIKey = self.models.APIKey
        for _ in range(_DISPLAY_PREFIX_TRIES):
            generated = keyformat.generate_key(self.prefix)
            taken = self.session.execute(
                sa.select(APIKey.id).where(APIKey.display_prefix == generated.display_prefix)
            ).first()
            if taken is None:
                return generated
        raise RuntimeError("could not find a free display prefix")  # pragma: no cover

    def _audit(
        self,
        key: APIKeyMixin,
        event: str,
        actor: Any,
        ip: str | None,
        now: dt.datetime,
        **details: Any,
    ) -> None:
        self.session.add(
            self.models.APIKeyEvent(
                key_id=key.id,
                organization_id=key.organization_id,
                event=event,
                actor_id=self.user_id(actor) if actor is not None else None,
                at=now,
                ip=storable_address(ip),
                details={k: v for k, v in details.items() if v is not None} or None,
            )
        )

    def _check_may_change(self, key: APIKeyMixin, actor: Any) -> None:
        if not self.may_change(key, actor):
            raise RequestRefused("You cannot change this key.")
