"""Restrictions on a key beyond its scopes: its rate limit and its IP allowlist.

Layer 3. Each change is audited like every other change to a key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .lifecycle import KeyLifecycle
from .models import APIKeyMixin
from .validation import RequestRefused, clean_ip_allowlist, clean_rate_limit

__all__ = ["KeyRestrictions"]


class KeyRestrictions(KeyLifecycle):
    """The restricting part of :class:`~flask_apikeys.KeyService`."""

    def set_rate_limit(
        self, key: APIKeyMixin, rate_limit: str | None, *, actor: Any = None, ip: str | None = None
    ) -> None:
        """Override the default rate limit of *key* (``"100/minute"``; ``None`` = default).

        Allowed to an admin of the key's organization and to operators only.
        """
        if actor is not None and not self.can_manage_organization(actor, key.organization_id):
            raise RequestRefused(
                f"You need the '{self.manage_permission}' permission to change rate limits."
            )
        value = clean_rate_limit(rate_limit)
        if value == key.rate_limit:
            return
        old = key.rate_limit
        key.rate_limit = value
        self._audit(
            key, "rate_limit_changed", actor, ip, self.clock(), old=old, new=value or "default"
        )
        self.session.commit()

    def set_ip_allowlist(
        self,
        key: APIKeyMixin,
        networks: Iterable[str] | str | None,
        *,
        actor: Any = None,
        ip: str | None = None,
    ) -> None:
        """Restrict *key* to client addresses in *networks* (CIDRs; empty = anywhere).

        Allowed to the key's owner, an admin of its organization, and operators.
        """
        self._check_may_change(key, actor)
        cleaned = clean_ip_allowlist(networks)
        if cleaned == (key.ip_allowlist or None):
            return
        old = key.ip_allowlist
        key.ip_allowlist = cleaned
        self._audit(key, "ip_allowlist_changed", actor, ip, self.clock(), old=old, new=cleaned)
        self.session.commit()
