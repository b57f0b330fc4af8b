"""The context every part of the service shares, and the extension points they join by.

:class:`ServiceContext` holds the session, the models, the settings and the host's
loaders, and answers what every part asks — what a user holds in an organization now,
whether they may create or manage keys, what a key may do (its scopes ∩ what its owner
holds *now*). Features join through the ordered lists in :class:`ExtensionPoints`
(checks on a new key, hooks when one is created, limits on permissions, checks on a
presented key): a part appends to them when it is made, and the core walks them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from ..db.models import APIKeyMixin, utcnow
from ..db.schema import Models
from ..keys import format as keyformat
from ..keys.drafts import KeyDraft, policy_with_draft
from ..keys.network import storable_address
from .pipeline import KeyCheck, KeyField, KeyPermissionLimit, OwnerSQL
from .validation import RequestRefused

__all__ = [
    "CreationPolicy",
    "ExtensionPoints",
    "NewKey",
    "Organization",
    "ServiceContext",
]

PermissionsLoader = Callable[[Any, Any], Iterable[str]]
OrganizationsLoader = Callable[[Any], Iterable[Any]]
#: ``policy(user, organization_id)``, or ``policy(user, organization_id, key)`` to see the
#: key asked for (:mod:`~flask_apikeys.drafts`): a message refuses creation, ``None`` allows.
CreationPolicy = Callable[..., "str | None"]
#: ``listener(event, key, **data)``: told of every change (the extension sends signals).
EventListener = Callable[..., None]


@dataclass(frozen=True)
class Organization:
    """An organization as the pages and the CLI show it."""

    id: Any
    name: str


@dataclass
class NewKey:
    """A key about to be created (issued, or the successor of a rotation), as the
    checks and hooks of :class:`ExtensionPoints` see it: they may refuse it
    (:class:`~flask_apikeys.RequestRefused`) or settle a field of theirs."""

    owner: Any
    name: str
    scopes: list[str]
    full_access: bool
    organization_id: Any
    expires_at: dt.datetime | None
    actor: Any
    ip: str | None
    now: dt.datetime
    rate_limit: str | None = None
    ip_allowlist: list[str] | None = None
    #: The key it replaces, for a rotation's new key.
    rotated_from: APIKeyMixin | None = None
    #: What the caller asked for that a feature reads and cleans (``resources``,
    #: ``quota``, ``quota_refill``): each feature's check replaces its raw value.
    options: dict[str, Any] = field(default_factory=dict)


#: ``check(new_key)``: refuse or settle part of a key about to be created.
NewKeyCheck = Callable[[NewKey], None]
#: ``hook(new_key, key)``: write what a feature keeps of a key just added (same transaction).
CreatedHook = Callable[[NewKey, APIKeyMixin], None]
#: ``limit(organization_id)``: the permissions a new key may hold, ``None``: any.
PermissionLimit = Callable[[Any], "frozenset[str] | None"]
#: ``clause(now, organization_id)``: keys held back although not revoked or expired.
HeldBackClause = Callable[[dt.datetime, Any], "sa.ColumnElement[bool] | None"]


@dataclass
class ExtensionPoints:
    """Where the parts of the service join the core, each list walked in order."""

    #: Before the creation policy sees a new key: clean what a feature's options ask for.
    prepare_new_key: list[NewKeyCheck] = field(default_factory=list)
    #: After the core's own rules (scopes held, expiry in bounds): a feature's rules.
    check_new_key: list[NewKeyCheck] = field(default_factory=list)
    #: After the key's row is added, before the commit.
    key_created: list[CreatedHook] = field(default_factory=list)
    #: Permissions a key may use now, from its row (per request).
    key_permission_limits: list[KeyPermissionLimit] = field(default_factory=list)
    #: Permissions a new key may hold, by organization (at creation).
    grant_limits: list[PermissionLimit] = field(default_factory=list)
    #: Checks on a presented key after revocation and expiry, before its owner's.
    key_checks: list[KeyCheck] = field(default_factory=list)
    #: What the verified key carries besides its scopes (resources, quota, ...).
    key_fields: list[KeyField] = field(default_factory=list)
    #: Keys that authenticate no more although neither revoked nor expired (lists).
    held_back: list[HeldBackClause] = field(default_factory=list)


class ServiceContext:
    """The settings, the host's loaders and the permission rules every part shares.

    *session* is a SQLAlchemy session (Flask-SQLAlchemy's ``db.session`` works);
    *permissions* gives what a user holds in an organization (``None`` for keys
    without one), or *owner_sql* declares it as SQL (:class:`~.pipeline.OwnerSQL`);
    *organizations* gives the organizations a user belongs to.
    """

    def __init__(
        self,
        session: Session | scoped_session[Session],
        models: Models,
        *,
        prefix: str,
        permissions: PermissionsLoader | None = None,
        owner_sql: OwnerSQL | None = None,
        organizations: OrganizationsLoader | None = None,
        pepper: bytes | None = None,
        create_permission: str = "api_key.create",
        manage_permission: str = "api_key.manage",
        known_permissions: Mapping[str, str] | None = None,
        max_lifetime: dt.timedelta | None = None,
        creation_policy: CreationPolicy | None = None,
        on_event: EventListener | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        sensitive_permissions: Collection[str] = (),
        grantable_sensitive_permissions: Collection[str] = (),
        describe_user: Callable[[Any], str] | None = None,
    ) -> None:
        self.session = session
        self.models = models
        self.prefix = keyformat.validate_prefix(prefix)
        self.pepper = pepper
        self.create_permission = create_permission
        self.manage_permission = manage_permission
        self.known_permissions = known_permissions
        self.max_lifetime = max_lifetime
        self.creation_policy = policy_with_draft(creation_policy)
        self.clock = clock
        if permissions is None and (owner_sql is None or owner_sql.permissions is None):
            raise TypeError("give a permissions loader, or declare the permissions as SQL")
        self._permissions = permissions
        #: What the host declared of its users as SQL (the lookup's fast path).
        self.owner_sql = owner_sql or OwnerSQL()
        self._organizations = organizations
        self._on_event = on_event
        #: The attribute of the user model that holds its primary key.
        self.user_pk: str = sa.inspect(models.User).primary_key[0].key
        #: Permissions that govern keys (``api_key.*``, the create and manage permissions)
        #: and any the host marks: never on a key, unless opted in below.
        self.sensitive_permissions = frozenset(
            {create_permission, manage_permission, *sensitive_permissions}
        )
        #: Sensitive permissions a key may hold when chosen by name (never through
        #: full access).
        self.grantable_sensitive_permissions = frozenset(grantable_sensitive_permissions)
        self._describe_user = describe_user
        #: Where the parts join (see :class:`ExtensionPoints`).
        self.extensions = ExtensionPoints()

    @property
    def has_organizations(self) -> bool:
        """Whether the host gave an organization loader."""
        return self._organizations is not None

    def hash(self, secret: str) -> str:
        return keyformat.hash_secret(secret, self.pepper)

    def user_id(self, user: Any) -> Any:
        return getattr(user, self.user_pk)

    @staticmethod
    def is_active(user: Any) -> bool:
        """Whether *user* may still use keys (``user.is_active``; true when absent)."""
        return bool(getattr(user, "is_active", True))

    @property
    def permissions_need_owner(self) -> bool:
        """Whether the owner's permissions come from a Python loader (of the object)."""
        return self.owner_sql.permissions is None

    def permissions_of(self, user: Any, organization_id: Any = None) -> frozenset[str]:
        """What *user* holds in *organization_id* now: the host's loader says, or its
        declared SQL (one query)."""
        if self._permissions is not None:
            return frozenset(self._permissions(user, organization_id))
        declared = self.owner_sql
        if declared.permissions is None:
            raise RuntimeError("no permissions loader and no declared permissions")
        owner_pk = sa.inspect(self.models.User).primary_key[0]
        expression = declared.permissions(
            sa.literal(self.user_id(user), owner_pk.type),
            sa.literal(organization_id, self.models.organization_type),
        )
        return declared.names(self.session.scalar(sa.select(expression)))

    def organizations_of(self, user: Any) -> list[Organization]:
        if self._organizations is None:
            return []
        found = []
        for org in self._organizations(user):
            if isinstance(org, Organization):
                found.append(org)
            else:
                org_id = self.models.coerce_organization_id(org.id)
                found.append(Organization(org_id, str(getattr(org, "name", org_id))))
        return found

    def managed_organizations(self, user: Any) -> list[Organization]:
        """The organizations of *user* in which they hold the manage permission."""
        return [o for o in self.organizations_of(user) if self.can_manage_organization(user, o.id)]

    def can_manage_organization(self, user: Any, organization_id: Any) -> bool:
        return organization_id is not None and self.manage_permission in self.permissions_of(
            user, organization_id
        )

    def is_sensitive(self, permission: str) -> bool:
        """Whether *permission* governs keys (or the host marked it): not for keys."""
        return permission.startswith("api_key.") or permission in self.sensitive_permissions

    def may_hold(self, permission: str) -> bool:
        """Whether a key may hold *permission* when chosen by name."""
        return (
            not self.is_sensitive(permission) or permission in self.grantable_sensitive_permissions
        )

    def grantable_permissions(
        self, user: Any, organization_id: Any = None, *, held: frozenset[str] | None = None
    ) -> frozenset[str]:
        """The permissions *user* may put on a new key in *organization_id* (*held*:
        what they hold there, when the caller has it already)."""
        if held is None:
            held = self.permissions_of(user, organization_id)
        if self.known_permissions is not None:
            held &= frozenset(self.known_permissions)
        grantable = frozenset(p for p in held if self.may_hold(p))
        for limit in self.extensions.grant_limits:
            allowed = limit(organization_id)
            if allowed is not None:
                grantable &= allowed
        return grantable

    def creation_refusal(
        self,
        user: Any,
        organization_id: Any = None,
        draft: KeyDraft | None = None,
        *,
        held: frozenset[str] | None = None,
    ) -> str | None:
        """Why *user* cannot create a key in *organization_id* now; ``None`` if they can.

        The one place that decides it: pages ask before showing the form, and
        :meth:`~flask_apikeys.KeyService.issue` asks again when the form comes back,
        with the key asked for as *draft* (a policy taking a third argument sees it).
        """
        if not self.is_active(user):
            return "This user is not active."
        if held is None:
            held = self.permissions_of(user, organization_id)
        if self.create_permission not in held:
            return f"You need the '{self.create_permission}' permission to create API keys."
        if self.creation_policy is not None:
            refusal = self.creation_policy(user, organization_id, draft)
            if refusal:
                # A Refusal (a str) keeps its link for the pages.
                return refusal if isinstance(refusal, str) else str(refusal)
        return None

    def effective_scopes(
        self, held: frozenset[str], scopes: Iterable[str] | None, full_access: bool
    ) -> frozenset[str]:
        """A key's *scopes* ∩ what its owner holds now (*held*); full access is the
        latter. Sensitive permissions only when opted in and chosen by name, never
        through full access. (Organization limits apply on top: the verifier's.)"""
        if full_access:
            return frozenset(p for p in held if not self.is_sensitive(p))
        return frozenset(p for p in held.intersection(scopes or ()) if self.may_hold(p))

    def may_change(self, key: APIKeyMixin, actor: Any) -> bool:
        """Owners, admins of the key's organization and operators (no actor) may."""
        if actor is None or self.user_id(actor) == key.owner_id:
            return True
        return self.can_manage_organization(actor, key.organization_id)

    def refuse_unless_may_change(self, key: APIKeyMixin, actor: Any) -> None:
        """Raise :class:`~flask_apikeys.RequestRefused` unless :meth:`may_change`."""
        if not self.may_change(key, actor):
            raise RequestRefused("You cannot change this key.")

    def describe_user(self, user: Any) -> str:
        """How messages for an operator name *user* (the extension: its lookup field,
        e.g. the e-mail address; otherwise the user's id)."""
        if self._describe_user is not None:
            return self._describe_user(user)
        return f"User {self.user_id(user)}"

    def actor_id(self, actor: Any) -> Any:
        """*actor*'s id, ``None`` for an operator (no actor)."""
        return None if actor is None else self.user_id(actor)

    def record_event(
        self,
        key: APIKeyMixin,
        event: str,
        actor: Any,
        ip: str | None,
        now: dt.datetime,
        **details: Any,
    ) -> None:
        """Add *event* on *key* to the audit trail (the caller commits)."""
        self.session.add(
            self.models.APIKeyEvent(
                key_id=key.id,
                organization_id=key.organization_id,
                event=event,
                actor_id=self.actor_id(actor),
                at=now,
                ip=storable_address(ip),
                details={k: v for k, v in details.items() if v is not None} or None,
            )
        )

    def emit(self, event: str, key: APIKeyMixin, **data: Any) -> None:
        """Tell the listener (the extension: a signal and a log line) of a change."""
        if self._on_event is not None:
            self._on_event(event, key, **data)
