"""Organization policies: the longest key lifetime, idle expiry, the permissions keys may hold.

An admin of an organization (``api_key.manage``) or an operator sets them with
:meth:`KeyPolicies.set_policy`; each change is an audit event of the organization
(``policy_changed``, with the rules before and after). They bind:

* **creation** — a new key must expire within the organization's maximum lifetime (on
  top of ``APIKEYS_MAX_LIFETIME``) and may hold only allowed permissions; a rotation
  keeps the key's lifetime, cut to the maximum;
* **every request** — a key unused (since its last use, or its creation) for the idle
  expiry is refused as expired, and its effective scopes are also cut to the allowed
  permissions, so narrowing a policy takes effect on existing keys at once.

The request checks read the policy's columns in the key lookup's one SELECT (outer-joined
to the key): they cost no query, with or without a policy.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from ..db.models import APIKeyEventMixin, APIKeyMixin, KeyStatus
from ..db.policy import APIKeyPolicyMixin
from ..keys.network import storable_address
from .context import NewKey, ServiceContext
from .pipeline import AuthenticationFailed, KeyCheck, KeyPermissionLimit, KeyRow
from .queries import KeyQueries
from .validation import RequestRefused

__all__ = [
    "KEEP",
    "MAX_POLICY_DAYS",
    "KeyPolicies",
    "allowed_by_policy",
    "check_idle_expiry",
    "idle_expiry_passed",
    "key_status",
]

#: The longest lifetime or idle expiry a policy may set (about ten years).
MAX_POLICY_DAYS = 3650
_PERMISSION_MAX_LENGTH = 100
#: The audit event of a policy change.
POLICY_CHANGED = "policy_changed"


class _Keep(enum.Enum):
    KEEP = "keep"


#: For :meth:`KeyPolicies.set_policy`: leave this rule as it is.
KEEP = _Keep.KEEP


class KeyPolicies:
    """Organization policies: ``service.policies``. Joins the core at creation (allowed
    permissions, the lifetime), per request (idle expiry, allowed permissions) and in
    the lists (idle keys count as expired)."""

    def __init__(self, context: ServiceContext, queries: KeyQueries) -> None:
        self.context = context
        self.queries = queries
        joins = context.extensions
        joins.check_new_key.append(self.check_new_key)
        joins.grant_limits.append(lambda org_id: _allowed(self.policy_of(org_id)))
        joins.held_back.append(self.idle_expiry_clause)
        Policy = context.models.APIKeyPolicy
        if Policy is not None:  # per request: from the key's row, outer-joined to its policy
            keys, policies = context.models.APIKey.__table__.c, Policy.__table__.c
            joins.key_checks.append(
                KeyCheck(
                    {
                        "idle_expiry_days": policies.idle_expiry_days,
                        "last_active": sa.func.coalesce(keys.last_used_at, keys.created_at),
                    },
                    check_idle_expiry,
                )
            )
            joins.key_permission_limits.append(
                KeyPermissionLimit(
                    {"allowed_permissions": policies.allowed_permissions}, allowed_by_policy
                )
            )

    # -- reading ---------------------------------------------------------------------------

    def policy_of(self, organization_id: Any) -> APIKeyPolicyMixin | None:
        """The policy of *organization_id*, or ``None`` when it has none."""
        org_id = self.context.models.coerce_organization_id_or_none(organization_id)
        if org_id is None:
            return None
        return self.context.session.get(self._policy_model(), org_id)

    def lifetime_limit(self, organization_id: Any = None) -> dt.timedelta | None:
        """The longest lifetime of a new key in *organization_id*: the shorter of
        ``APIKEYS_MAX_LIFETIME`` and the organization's maximum (``None``: no limit)."""
        limits = [self.context.max_lifetime] if self.context.max_lifetime is not None else []
        policy = self.policy_of(organization_id)
        if policy is not None and policy.max_lifetime_days is not None:
            limits.append(dt.timedelta(days=policy.max_lifetime_days))
        return min(limits, default=None)

    def keys_outliving_policy(self, organization_id: Any) -> list[APIKeyMixin]:
        """Usable keys of *organization_id* that expire later than its maximum lifetime
        allows from now, or never: what an admin may want to rotate or revoke."""
        policy = self.policy_of(organization_id)
        if policy is None or policy.max_lifetime_days is None:
            return []
        APIKey = self.context.models.APIKey
        now = self.context.clock()
        bound = now + _with_slack(policy.max_lifetime_days)
        stmt = (
            self.queries.keys_query(organization_id=policy.organization_id)
            .where(self.queries.usable_clause(now))
            .where(sa.or_(APIKey.expires_at.is_(None), APIKey.expires_at > bound))
        )
        return list(self.context.session.scalars(stmt))

    def policy_events(self, organization_id: Any, limit: int = 20) -> list[APIKeyEventMixin]:
        """The policy changes of *organization_id*, newest first."""
        Event = self.context.models.APIKeyEvent
        org_id = self.context.models.coerce_organization_id_or_none(organization_id)
        if org_id is None:
            return []
        stmt = (
            sa.select(Event)
            .where(
                Event.organization_id == org_id,
                Event.key_id.is_(None),
                Event.event == POLICY_CHANGED,
            )
            .order_by(Event.at.desc(), Event.id.desc())
            .limit(limit)
        )
        return list(self.context.session.scalars(stmt))

    # -- changing --------------------------------------------------------------------------

    def set_policy(
        self,
        organization_id: Any,
        *,
        max_lifetime_days: int | _Keep | None = KEEP,
        idle_expiry_days: int | _Keep | None = KEEP,
        allowed_permissions: Iterable[str] | _Keep | None = KEEP,
        actor: Any = None,
        ip: str | None = None,
    ) -> APIKeyPolicyMixin | None:
        """Change the rules of *organization_id*; ``None`` lifts a rule, :data:`KEEP`
        (the default) leaves it. Returns the policy (``None`` once every rule is lifted).

        Allowed to admins of the organization and to operators (no *actor*). A change
        is audited as ``policy_changed`` with the rules before and after; no change, no
        event. Raises :class:`~flask_apikeys.RequestRefused` with a message.
        """
        if organization_id is None or organization_id == "":
            raise RequestRefused("Choose an organization.", field="organization")
        org_id = self.context.models.coerce_organization_id_or_none(organization_id)
        if org_id is None:
            raise RequestRefused(
                f"There is no organization {str(organization_id)[:40]!r}.", field="organization"
            )
        if actor is not None and not self.context.can_manage_organization(actor, org_id):
            raise RequestRefused(
                f"You need the '{self.context.manage_permission}' permission in this organization."
            )
        current = self.policy_of(org_id)
        before = current.rules() if current is not None else _NO_RULES
        after = dict(before)
        if max_lifetime_days is not KEEP:
            after["max_lifetime_days"] = _clean_days(
                max_lifetime_days, "max_lifetime_days", "The maximum lifetime"
            )
        if idle_expiry_days is not KEEP:
            after["idle_expiry_days"] = _clean_days(
                idle_expiry_days, "idle_expiry_days", "The idle expiry"
            )
        if allowed_permissions is not KEEP:
            after["allowed_permissions"] = self._clean_allowed(allowed_permissions)
        if after == before:
            return current
        now = self.context.clock()
        policy = current
        if all(value is None for value in after.values()):
            if current is not None:
                self.context.session.delete(current)
            policy = None
        else:
            if policy is None:
                policy = self._policy_model()(organization_id=org_id)
                self.context.session.add(policy)
            policy.max_lifetime_days = after["max_lifetime_days"]
            policy.idle_expiry_days = after["idle_expiry_days"]
            policy.allowed_permissions = after["allowed_permissions"]
            policy.updated_at = now
            policy.updated_by_id = self.context.user_id(actor) if actor is not None else None
        self.context.session.add(
            self.context.models.APIKeyEvent(
                key_id=None,
                organization_id=org_id,
                event=POLICY_CHANGED,
                actor_id=self.context.user_id(actor) if actor is not None else None,
                at=now,
                ip=storable_address(ip),
                details={"before": before, "after": after},
            )
        )
        try:
            self.context.session.commit()
        except sa.exc.IntegrityError:  # a foreign key to the host's organizations
            self.context.session.rollback()
            raise RequestRefused(
                f"There is no organization {str(org_id)[:40]!r}.", field="organization"
            ) from None
        return policy

    # -- what the rest of the service asks -------------------------------------------------

    def idle_expiry_clause(
        self, now: dt.datetime, organization_id: Any = None
    ) -> sa.ColumnElement[bool] | None:
        """Keys unused for their organization's idle expiry (of *organization_id*, or of
        every organization), as :func:`check_idle_expiry` judges them: one small SELECT of
        the organizations that set one."""
        Policy = self.context.models.APIKeyPolicy
        if Policy is None:
            return None
        rules = sa.select(Policy.organization_id, Policy.idle_expiry_days).where(
            Policy.idle_expiry_days.is_not(None)
        )
        if organization_id is not None:
            org_id = self.context.models.coerce_organization_id_or_none(organization_id)
            rules = rules.where(Policy.organization_id == org_id)
        APIKey = self.context.models.APIKey
        last = sa.func.coalesce(APIKey.last_used_at, APIKey.created_at)
        idle = [
            sa.and_(APIKey.organization_id == org, last <= now - dt.timedelta(days=days))
            for org, days in self.context.session.execute(rules)
        ]
        if not idle:
            return None
        # (Never NULL, so that NOT of it keeps the keys of no organization.)
        return sa.and_(APIKey.organization_id.is_not(None), sa.or_(*idle))

    def check_new_key(self, new: NewKey) -> None:
        """A new key holds only allowed permissions and expires within the maximum
        lifetime; a rotation's new key keeps its lifetime, cut to today's limit."""
        if new.rotated_from is not None:
            limit = self.lifetime_limit(new.organization_id)
            if limit is not None:
                latest = new.now + limit
                if new.expires_at is None or new.expires_at > latest:
                    new.expires_at = latest
            return
        policy = self.policy_of(new.organization_id)
        allowed = _allowed(policy)
        if allowed is not None:
            for scope in new.scopes:
                if scope not in allowed:
                    raise RequestRefused(
                        f"This organization's policy does not allow keys to hold '{scope}'.",
                        field="scopes",
                    )
        days = policy.max_lifetime_days if policy is not None else None
        if days is not None and (
            new.expires_at is None or new.expires_at > new.now + _with_slack(days)
        ):
            raise RequestRefused(
                f"This organization's keys must expire within {days} days.", field="expires"
            )

    def _policy_model(self) -> type[APIKeyPolicyMixin]:
        model = self.context.models.APIKeyPolicy
        if model is None:
            raise RuntimeError("these models have no policy table: make them with build_models")
        return model

    def _clean_allowed(self, permissions: Iterable[str] | None) -> list[str] | None:
        if permissions is None:
            return None
        if isinstance(permissions, str):
            permissions = [permissions]
        cleaned: set[str] = set()
        for name in permissions:
            if (
                not isinstance(name, str)
                or not name
                or len(name) > _PERMISSION_MAX_LENGTH
                or not name.isprintable()
            ):
                raise RequestRefused("Permissions must be names.", field="allowed_permissions")
            if not self.context.may_hold(name):
                raise RequestRefused(
                    f"'{name}' governs API keys themselves and cannot be put on a key.",
                    field="allowed_permissions",
                )
            if (
                self.context.known_permissions is not None
                and name not in self.context.known_permissions
            ):
                raise RequestRefused(
                    f"Unknown permission {name[:80]!r}.", field="allowed_permissions"
                )
            cleaned.add(name)
        if not cleaned:
            raise RequestRefused(
                "Allow at least one permission, or let keys hold any.",
                field="allowed_permissions",
            )
        return sorted(cleaned)


_NO_RULES: dict[str, Any] = {
    "max_lifetime_days": None,
    "idle_expiry_days": None,
    "allowed_permissions": None,
}


def idle_expiry_passed(key: APIKeyMixin, now: dt.datetime) -> int | None:
    """The idle expiry (days) of *key*'s organization when *key* has gone unused that
    long since its last use (or its creation, when never used); else ``None``."""
    policy: APIKeyPolicyMixin | None = getattr(key, "organization_policy", None)
    days = policy.idle_expiry_days if policy is not None else None
    if days is None:
        return None
    last = key.last_used_at or key.created_at
    return days if now - last >= dt.timedelta(days=days) else None


def check_idle_expiry(row: KeyRow, now: dt.datetime) -> None:
    """Refuse a presented key, as expired, when its organization's idle expiry has
    passed since its last use (or its creation, when never used)."""
    days = row.idle_expiry_days
    if days is not None and now - row.last_active >= dt.timedelta(days=days):
        raise AuthenticationFailed(
            "expired_api_key",
            f"The API key has expired: it was not used for {days} days.",
            reason="idle",
        )


def allowed_by_policy(row: KeyRow) -> frozenset[str] | None:
    """The permissions a presented key's organization lets keys use (``None``: any)."""
    allowed = row.allowed_permissions
    return None if allowed is None else frozenset(allowed)


def key_status(key: APIKeyMixin, now: dt.datetime) -> str:
    """:meth:`~flask_apikeys.models.APIKeyMixin.status_at`, and ``"expired"`` for an
    active key that its organization's idle expiry holds back."""
    status = key.status_at(now)
    if status == KeyStatus.ACTIVE and idle_expiry_passed(key, now) is not None:
        return KeyStatus.EXPIRED
    return status


def _allowed(policy: APIKeyPolicyMixin | None) -> frozenset[str] | None:
    if policy is None or policy.allowed_permissions is None:
        return None
    return frozenset(policy.allowed_permissions)


def _with_slack(days: int) -> dt.timedelta:
    # A date picked on the form means "through that day": up to a day past the limit.
    return dt.timedelta(days=days + 1)


def _clean_days(value: Any, field: str, label: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestRefused(f"{label} must be a number of days.", field=field)
    if not 1 <= value <= MAX_POLICY_DAYS:
        raise RequestRefused(f"{label} must be between 1 and {MAX_POLICY_DAYS} days.", field=field)
    return value
