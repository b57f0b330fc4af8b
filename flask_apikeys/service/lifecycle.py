"""Every change to a key — issue, rotate, revoke, rename, restrict — with its audit event.

Each method checks who may do it, writes the change and its audit row in one
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
from ..keys.drafts import KeyDraft
from .context import NewKey, ServiceContext
from .queries import KeyQueries
from .validation import (
    RequestRefused,
    check_expiry,
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


class KeyLifecycle:
    """Issue, rotate, revoke and rename keys: ``service.keys``."""

    def __init__(self, context: ServiceContext, queries: KeyQueries) -> None:
        self.context = context
        self.queries = queries

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
        **options: Any,
    ) -> IssuedKey:
        """Create a key for *owner* and return it with its secret (the only copy).

        *actor* is who asked (``None`` for an operator); only the owner may create
        their own keys. *options* are read by the service's features: ``resources``
        (``{"client": ["3", "7"]}``), ``quota`` (``"1000/month"``) and ``quota_refill``.
        Each host loader runs once. Raises :class:`RequestRefused` with a message for
        the user.
        """
        ctx = self.context
        if actor is not None and ctx.user_id(actor) != ctx.user_id(owner):
            raise RequestRefused("You can only create API keys for yourself.")
        name = clean_name(name)
        organization_id = self.choose_organization(owner, organization_id)
        held = ctx.permissions_of(owner, organization_id)
        if not ctx.is_active(owner):
            raise RequestRefused("This user is not active.")
        if ctx.create_permission not in held:
            raise RequestRefused(
                f"You need the '{ctx.create_permission}' permission to create API keys."
            )
        new = NewKey(
            owner=owner,
            name=name,
            scopes=[],
            full_access=full_access,
            organization_id=organization_id,
            expires_at=expires_at,
            actor=actor,
            ip=ip,
            now=ctx.clock(),
            rate_limit=rate_limit,
            ip_allowlist=list(ip_allowlist) if ip_allowlist else None,
            options=dict(options),
        )
        for prepare in ctx.extensions.prepare_new_key:
            prepare(new)
        grantable = ctx.grantable_permissions(owner, organization_id, held=held)
        draft = KeyDraft.of(
            scopes if isinstance(scopes, str) else [s for s in scopes if isinstance(s, str)],
            full_access=full_access,
            readable=[p for p in grantable if p.endswith(".read")],
            resources=new.options.get("resources"),
        )
        refusal = ctx.creation_refusal(owner, organization_id, draft, held=held)
        if refusal is not None:
            raise RequestRefused(refusal)
        new.scopes = self.chosen_scopes(held, scopes, full_access, owner=None if actor else owner)
        check_expiry(expires_at, new.now, ctx.max_lifetime)
        for check in ctx.extensions.check_new_key:
            check(new)
        return self.create(new)

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
        if actor is not None and self.context.user_id(actor) != key.owner_id:
            raise RequestRefused("Only the owner of a key can rotate it.")
        if grace < dt.timedelta(0):
            raise RequestRefused("The grace period cannot be negative.", field="grace")
        now = self.context.clock()
        if key.status_at(now) != KeyStatus.ACTIVE:
            raise RequestRefused("Only an active key can be rotated.")
        if key.revoked_at is not None:
            raise RequestRefused("This key has already been rotated.")
        owner = key.owner
        if not self.context.is_active(owner):
            raise RequestRefused("This user is not active.")
        held = self.context.permissions_of(owner, key.organization_id)
        if self.context.create_permission not in held:
            raise RequestRefused(
                f"You need the '{self.context.create_permission}' permission to rotate API keys."
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
        key.revoked_by_id = self.context.actor_id(actor)
        new = NewKey(
            owner=owner,
            name=key.name,
            scopes=scopes,
            full_access=key.full_access,
            organization_id=key.organization_id,
            expires_at=expires_at,
            actor=actor,
            ip=ip,
            now=now,
            rate_limit=key.rate_limit,
            ip_allowlist=key.ip_allowlist,
            rotated_from=key,
        )
        for check in self.context.extensions.check_new_key:
            check(new)
        issued = self.create(new, commit=False)
        self.context.record_event(
            key,
            "rotated",
            actor,
            ip,
            now,
            replaced_by=issued.key.display_prefix,
            works_until=until.isoformat(),
        )
        self.context.session.commit()
        self.context.emit("rotated", key, actor=actor, new_key=issued.key, grace=grace)
        self.context.emit("created", issued.key, actor=actor)
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
        self.context.refuse_unless_may_change(key, actor)
        reason = clean_reason(reason)
        now = self.context.clock()
        if key.revoked_at is not None and key.revoked_at <= now:
            return False
        key.revoked_at = now
        key.revoked_reason = reason  # None when none was given: pages then say nothing
        key.revoked_by_id = self.context.actor_id(actor)
        self.context.record_event(key, "revoked", actor, ip, now, reason=reason)
        self.context.session.commit()
        self.context.emit("revoked", key, actor=actor, reason=reason)
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
        if actor is not None and not self.context.can_manage_organization(actor, organization_id):
            raise RequestRefused(
                f"You need the '{self.context.manage_permission}' permission in this organization."
            )
        reason = clean_reason(reason) or "offboarded"
        now = self.context.clock()
        keys = self.queries.usable_keys_of(owner, organization_id)
        for key in keys:
            key.revoked_at = now
            key.revoked_reason = reason
            key.revoked_by_id = self.context.actor_id(actor)
            self.context.record_event(key, "revoked", actor, ip, now, reason=reason, bulk=True)
        self.context.session.commit()
        for key in keys:
            self.context.emit("revoked", key, actor=actor, reason=reason)
        return len(keys)

    def rename(
        self, key: APIKeyMixin, name: str, *, actor: Any = None, ip: str | None = None
    ) -> None:
        """Give *key* a new name (owner or operator only)."""
        if actor is not None and self.context.user_id(actor) != key.owner_id:
            raise RequestRefused("Only the owner of a key can rename it.")
        name = clean_name(name)
        old = key.name
        if name == old:
            return
        key.name = name
        self.context.record_event(
            key, "renamed", actor, ip, self.context.clock(), old_name=old, new_name=name
        )
        self.context.session.commit()
        self.context.emit("renamed", key, actor=actor, old_name=old)

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
        self.context.record_event(key, event, actor, ip, self.context.clock(), **details)
        self.context.session.commit()

    def choose_organization(self, owner: Any, organization_id: Any) -> Any:
        """The organization a new key of *owner* goes in: the one asked for, if they
        belong to it, or their only one; refused when that is ambiguous."""
        ctx = self.context
        if not ctx.has_organizations:
            if organization_id is not None:
                raise RequestRefused("Organizations are not enabled.", field="organization")
            return None
        orgs = ctx.organizations_of(owner)
        if organization_id is None or organization_id == "":
            if len(orgs) > 1:
                raise RequestRefused("Choose an organization for the key.", field="organization")
            return orgs[0].id if orgs else None
        wanted = ctx.models.coerce_organization_id_or_none(organization_id)
        for org in orgs:
            if org.id == wanted:
                return org.id
        raise RequestRefused("You are not a member of that organization.", field="organization")

    def chosen_scopes(
        self,
        held: frozenset[str],
        scopes: Collection[str],
        full_access: bool,
        *,
        owner: Any = None,
    ) -> list[str]:
        """*scopes* checked against what the owner *held*: the names to store. With
        *owner* (an operator asks for someone else), refusals name them, not "you"."""
        if isinstance(scopes, str):
            scopes = [scopes]
        ctx = self.context
        chosen: list[str] = []
        for scope in scopes:
            if not isinstance(scope, str) or not scope:
                raise RequestRefused("Permissions must be names.", field="scopes")
            if ctx.known_permissions is not None and scope not in ctx.known_permissions:
                raise RequestRefused(f"Unknown permission {scope[:80]!r}.", field="scopes")
            if not ctx.may_hold(scope):
                raise RequestRefused(
                    f"'{scope}' governs API keys themselves and cannot be put on a key.",
                    field="scopes",
                )
            if scope not in held:
                if owner is not None:
                    who = ctx.describe_user(owner)
                    raise RequestRefused(f"{who} does not hold '{scope}'.", field="scopes")
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

    def create(self, new: NewKey, *, commit: bool = True) -> IssuedKey:
        """Write *new* (checked already), its ``created`` event and what the features'
        ``key_created`` hooks add; commit and tell the listener unless *commit* is false."""
        ctx = self.context
        generated = self.generate_unique()
        rotated_from = new.rotated_from
        key = ctx.models.APIKey(
            name=new.name,
            display_prefix=generated.display_prefix,
            key_hash=ctx.hash(generated.secret),
            scopes=new.scopes,
            full_access=new.full_access,
            organization_id=new.organization_id,
            owner_id=ctx.user_id(new.owner),
            created_by_id=ctx.actor_id(new.actor),
            created_at=new.now,
            expires_at=new.expires_at,
            usage_count=0,
            rate_limit=new.rate_limit,
            ip_allowlist=new.ip_allowlist,
            rotated_from_id=rotated_from.id if rotated_from is not None else None,
        )
        if rotated_from is not None:  # a rotation keeps who answers for the restrictions
            key.ip_allowlist_set_by_id = rotated_from.ip_allowlist_set_by_id
            key.rate_limit_set_by_id = rotated_from.rate_limit_set_by_id
        elif new.ip_allowlist:
            key.ip_allowlist_set_by_id = ctx.actor_id(new.actor)
        ctx.session.add(key)
        ctx.session.flush()
        details: dict[str, Any] = {
            "scopes": "full access" if new.full_access else new.scopes,
            "expires_at": new.expires_at.isoformat() if new.expires_at else "never",
            "resources": rotated_from.resources if rotated_from else new.options.get("resources"),
        }
        if rotated_from is not None:
            details["rotated_from"] = rotated_from.display_prefix
        ctx.record_event(key, "created", new.actor, new.ip, new.now, **details)
        for hook in ctx.extensions.key_created:
            hook(new, key)
        if commit:
            ctx.session.commit()
            ctx.emit("created", key, actor=new.actor)
        return IssuedKey(key=key, secret=generated.secret)

    def generate_unique(self) -> keyformat.GeneratedKey:
        """A new secret whose display prefix no key has."""
        ctx = self.context
        APIKey = ctx.models.APIKey
        for _ in range(_DISPLAY_PREFIX_TRIES):
            generated = keyformat.generate_key(ctx.prefix)
            taken = ctx.session.execute(
                sa.select(APIKey.id).where(APIKey.display_prefix == generated.display_prefix)
            ).first()
            if taken is None:
                return generated
        raise RuntimeError("could not find a free display prefix")  # pragma: no cover
