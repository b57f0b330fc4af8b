"""Restrictions on a key beyond its scopes: its rate limit and its IP allowlist.

Each change is audited like every other change to a key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from ..db.models import APIKeyMixin
from .context import ServiceContext
from .pipeline import KeyField, KeyRow
from .validation import RequestRefused, clean_ip_allowlist, clean_rate_limit

__all__ = ["KeyRestrictions"]


class KeyRestrictions:
    """The restricting part of :class:`~flask_apikeys.KeyService`."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        keys = context.models.APIKey.__table__.c
        fields = context.extensions.key_fields
        fields.append(KeyField("rate_limit", {"rate_limit": keys.rate_limit}, _rate_limit_of))
        fields.append(KeyField("ip_allowlist", {"ip_allowlist": keys.ip_allowlist}, _allowlist_of))

    def set_rate_limit(
        self, key: APIKeyMixin, rate_limit: str | None, *, actor: Any = None, ip: str | None = None
    ) -> None:
        """Override the default rate limit of *key* (``"100/minute"``; ``None`` = default).

        Allowed to an admin of the key's organization and to operators only.
        """
        if not self._acts_as_admin(key, actor):
            raise RequestRefused(
                f"You need the '{self.context.manage_permission}' permission to change rate limits."
            )
        value = clean_rate_limit(rate_limit)
        if value == key.rate_limit:
            return
        old = key.rate_limit
        key.rate_limit = value
        key.rate_limit_set_by_id = None if actor is None else self.context.user_id(actor)
        self.context.record_event(
            key,
            "rate_limit_changed",
            actor,
            ip,
            self.context.clock(),
            old=old,
            new=value or "default",
        )
        self.context.session.commit()

    def set_ip_allowlist(
        self,
        key: APIKeyMixin,
        networks: Iterable[str] | str | None,
        *,
        actor: Any = None,
        ip: str | None = None,
    ) -> None:
        """Restrict *key* to client addresses in *networks* (CIDRs; empty = anywhere).

        Allowed to the key's owner, an admin of its organization, and operators. An
        allowlist set by an admin or an operator binds the owner: they may narrow it,
        never widen or clear it.
        """
        self.context.refuse_unless_may_change(key, actor)
        cleaned = clean_ip_allowlist(networks)
        current = key.ip_allowlist or None
        if cleaned == current:
            return
        if not self._acts_as_admin(key, actor) and self.allowlist_binds_owner(key):
            if cleaned is None or not _narrows(cleaned, current or []):
                raise RequestRefused(
                    "An administrator set this allowlist: you can narrow it, "
                    "but not widen or remove it.",
                    field="ip_allowlist",
                )
        else:  # whoever sets it now answers for it
            key.ip_allowlist_set_by_id = None if actor is None else self.context.user_id(actor)
        key.ip_allowlist = cleaned
        self.context.record_event(
            key, "ip_allowlist_changed", actor, ip, self.context.clock(), old=current, new=cleaned
        )
        self.context.session.commit()

    def allowlist_binds_owner(self, key: APIKeyMixin) -> bool:
        """Whether *key*'s allowlist was set by someone other than its owner."""
        return bool(key.ip_allowlist) and key.ip_allowlist_set_by_id != key.owner_id

    def _acts_as_admin(self, key: APIKeyMixin, actor: Any) -> bool:
        return actor is None or self.context.can_manage_organization(actor, key.organization_id)


def _narrows(new: list[str], old: list[str]) -> bool:
    """Whether every network of *new* lies within a network of *old*."""
    allowed = [ipaddress.ip_network(n) for n in old]
    return all(
        any(
            network.version == outer.version and network.subnet_of(outer)  # type: ignore[arg-type]
            for outer in allowed
        )
        for network in (ipaddress.ip_network(n) for n in new)
    )


def _rate_limit_of(row: KeyRow) -> str | None:
    """A presented key's own rate limit (``None``: the default)."""
    limit: str | None = row.rate_limit
    return limit


def _allowlist_of(row: KeyRow) -> list[str] | None:
    """A presented key's allowlist, as a copy of its own (the row may be shared)."""
    networks = row.ip_allowlist
    return None if networks is None else list(networks)
