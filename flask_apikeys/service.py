"""Service: everything done to API keys, over a SQLAlchemy session.

Layer 3 of the architecture. Pages, the CLI and ``require_key`` all call this module;
it needs no request, so scripts and background jobs can use it too. It enforces the
contract's rules in one place:

* a key holds only permissions its creator holds, and creating one needs the
  create permission (``api_key.create`` by default);
* per request, a key's effective scopes are its scopes intersected with what its
  owner holds *now*, and an inactive owner's keys are refused;
* only the owner, an organization admin (``api_key.manage``) or an operator (no
  actor, e.g. the CLI) changes a key; every change writes an audit event.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.orm.exc import DetachedInstanceError

from . import keyformat
from .lookup import KeyLookup
from .models import KeyStatus, Models, utcnow

__all__ = [
    "NAME_MAX_LENGTH",
    "AuthenticationFailed",
    "IssuedKey",
    "KeyService",
    "Organization",
    "RequestRefused",
    "VerifiedKey",
    "parse_duration",
    "parse_expiry",
]

NAME_MAX_LENGTH = 100
REASON_MAX_LENGTH = 200
_DISPLAY_PREFIX_TRIES = 8

PermissionsLoader = Callable[[Any, Any], Iterable[str]]
OrganizationsLoader = Callable[[Any], Iterable[Any]]
CreationPolicy = Callable[[Any, Any], "str | None"]
EventListener = Callable[..., None]


class RequestRefused(Exception):
    """A request to create or change a key was refused; the message says why.

    The message is written for the person who asked, so pages and the CLI show it
    as it is. ``field`` names the form field at fault, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class AuthenticationFailed(Exception):
    """A presented key was refused. ``code`` is the error code of the contract."""

    def __init__(self, code: str, message: str, key: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.key = key


@dataclass(frozen=True)
class Organization:
    """An organization as the pages and the CLI show it."""

    id: Any
    name: str


@dataclass(frozen=True)
class IssuedKey:
    """A key just created or rotated, with its secret: show it once, then drop it."""

    key: Any
    secret: str = field(repr=False)


class VerifiedKey:
    """A key that authenticated a request, with what it may do right now.

    ``key`` and ``owner`` are ORM objects of the request's session. On the hot path
    they may be handed over detached (reused from an earlier request) and are attached
    the first time either is asked for, so a request that only needs ``scopes``, ``id``
    or ``organization_id`` never touches the session.
    """

    __slots__ = ("_attach", "_key", "_owner", "scopes")

    def __init__(
        self,
        key: Any,
        owner: Any,
        scopes: frozenset[str],
        *,
        attach: Callable[[Any], Any] | None = None,
    ) -> None:
        self._key = key
        self._owner = owner
        self.scopes = scopes
        self._attach = attach

    def _attached(self) -> None:
        attach, self._attach = self._attach, None
        if attach is not None:
            self._key = attach(self._key)
            self._owner = self._key.owner

    @property
    def key(self) -> Any:
        if self._attach is not None:
            self._attached()
        return self._key

    @property
    def owner(self) -> Any:
        if self._attach is not None:
            self._attached()
        return self._owner

    @property
    def id(self) -> int:
        return int(self._key.id)

    @property
    def organization_id(self) -> Any:
        return self._key.organization_id

    @property
    def display_prefix(self) -> str:
        return str(self._key.display_prefix)

    def has_scopes(self, *scopes: str) -> bool:
        return set(scopes) <= self.scopes

    def missing_scopes(self, scopes: Iterable[str]) -> list[str]:
        return sorted(set(scopes) - self.scopes)

    def __repr__(self) -> str:
        return f"<VerifiedKey {self.display_prefix} scopes={sorted(self.scopes)}>"


_EXPIRY_SHORTCUTS = {"30d": 30, "90d": 90, "1y": 365}
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def parse_expiry(text: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """Turn ``30d``, ``90d``, ``1y``, ``YYYY-MM-DD`` or ``never`` into an expiry time.

    A date means "valid through that day": the key expires at the following
    midnight UTC. ``never`` gives ``None``. Anything else raises :class:`RequestRefused`.
    """
    now = now or utcnow()
    value = text.strip().lower()
    if value == "never":
        return None
    if value in _EXPIRY_SHORTCUTS:
        return now + dt.timedelta(days=_EXPIRY_SHORTCUTS[value])
    if _DATE_RE.match(value):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise RequestRefused(f"{text!r} is not a valid date.", field="expires") from None
        if day <= now.date():
            raise RequestRefused("The expiry date must be after today.", field="expires")
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    raise RequestRefused(
        f"Unknown expiry {text!r}: use 30d, 90d, 1y, a date (YYYY-MM-DD) or never.",
        field="expires",
    )


_DURATION_RE = re.compile(r"(\d{1,6})\s*([smhd])\Z")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> dt.timedelta:
    """Turn ``now``, ``0``, ``90s``, ``30m``, ``1h``, ``24h`` or ``7d`` into a timedelta."""
    value = text.strip().lower()
    if value in {"now", "0"}:
        return dt.timedelta(0)
    match = _DURATION_RE.match(value)
    if match is None:
        raise RequestRefused(
            f"Unknown duration {text!r}: use now, or a number with s, m, h or d (e.g. 1h, 7d).",
            field="grace",
        )
    amount, unit = match.groups()
    duration = dt.timedelta(**{_DURATION_UNITS[unit]: int(amount)})
    if duration > dt.timedelta(days=365):
        raise RequestRefused("A grace period can be at most a year.", field="grace")
    return duration


def clean_rate_limit(value: str | None) -> str | None:
    """Check a rate limit in the ``limits`` notation (``100/minute``, ``10 per second``)."""
    if value is None or not str(value).strip():
        return None
    from limits import parse_many

    text = " ".join(str(value).split())
    try:
        items = parse_many(text)
    except ValueError:
        items = []
    if not items or len(text) > 64:
        raise RequestRefused(
            f"{text[:40]!r} is not a rate limit: write e.g. 100/minute or 5000/day.",
            field="rate_limit",
        )
    return text


def clean_ip_allowlist(networks: Iterable[str] | str | None) -> list[str] | None:
    """Check CIDRs (IPv4 or IPv6; a bare address means just that address)."""
    if networks is None:
        return None
    if isinstance(networks, str):
        networks = networks.replace(",", " ").split()
    cleaned: list[str] = []
    for item in networks:
        item = item.strip()
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise RequestRefused(
                f"{item[:50]!r} is not an IP address or network (e.g. 203.0.113.0/24).",
                field="ip_allowlist",
            ) from None
        if str(network) not in cleaned:
            cleaned.append(str(network))
    if len(cleaned) > 100:
        raise RequestRefused("At most 100 networks per key.", field="ip_allowlist")
    return cleaned or None


def clean_name(name: str) -> str:
    """Trim *name* and check it is a printable, non-empty, bounded key name."""
    if not isinstance(name, str):
        raise RequestRefused("Give the key a name.", field="name")
    name = " ".join(name.split())
    if not name:
        raise RequestRefused("Give the key a name.", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise RequestRefused(f"The name can be at most {NAME_MAX_LENGTH} characters.", field="name")
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in name):
        raise RequestRefused("The name contains characters that cannot be shown.", field="name")
    return name


class KeyService:
    """Issue, verify, rotate, revoke, rename and list API keys.

    *session* is a SQLAlchemy session (a Flask-SQLAlchemy ``db.session`` works);
    methods that change keys commit it. *permissions* gives the permissions a user
    holds in an organization (the organization id is ``None`` for keys without one);
    *organizations* gives the organizations a user belongs to.
    """

    def __init__(
        self,
        session: Session | Any,
        models: Models,
        *,
        prefix: str,
        permissions: PermissionsLoader,
        organizations: OrganizationsLoader | None = None,
        pepper: bytes | None = None,
        create_permission: str = "api_key.create",
        manage_permission: str = "api_key.manage",
        known_permissions: Mapping[str, str] | None = None,
        max_lifetime: dt.timedelta | None = None,
        creation_policy: CreationPolicy | None = None,
        on_event: EventListener | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        key_lookup: KeyLookup | None = None,
    ) -> None:
        self.session = session
        #: The hot-path lookup that replaces the plain ORM query of :meth:`verify` and
        #: :meth:`find_by_secret` (the extension passes one unless ``APIKEYS_FAST_LOOKUP``
        #: is off).
        self.key_lookup = key_lookup
        self._judge_in_session = False
        self.models = models
        self.prefix = keyformat.validate_prefix(prefix)
        self.pepper = pepper
        self._permissions = permissions
        self._organizations = organizations
        self.create_permission = create_permission
        self.manage_permission = manage_permission
        self.known_permissions = known_permissions
        self.max_lifetime = max_lifetime
        self.creation_policy = creation_policy
        self._on_event = on_event
        self.clock = clock
        self._user_pk = sa.inspect(models.User).primary_key[0].key

    # -- who holds what -------------------------------------------------------

    def user_id(self, user: Any) -> Any:
        return getattr(user, self._user_pk)

    def permissions_of(self, user: Any, organization_id: Any = None) -> frozenset[str]:
        """What *user* holds in *organization_id* now, as the host's loader says."""
        return frozenset(self._permissions(user, organization_id))

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

    def can_create(self, user: Any, organization_id: Any = None) -> bool:
        return self.create_permission in self.permissions_of(user, organization_id)

    def can_manage_organization(self, user: Any, organization_id: Any) -> bool:
        return organization_id is not None and self.manage_permission in self.permissions_of(
            user, organization_id
        )

    def grantable_permissions(self, user: Any, organization_id: Any = None) -> frozenset[str]:
        """The permissions *user* may put on a new key in *organization_id*."""
        held = self.permissions_of(user, organization_id)
        if self.known_permissions is not None:
            held &= frozenset(self.known_permissions)
        return held

    def effective_scopes(self, key: Any, owner: Any) -> frozenset[str]:
        """Key scopes ∩ what the owner holds now; full access is the latter."""
        held = self.permissions_of(owner, key.organization_id)
        if key.full_access:
            return held
        return held.intersection(key.scopes or ())

    def _is_active(self, user: Any) -> bool:
        return bool(getattr(user, "is_active", True))

    # -- verification (the hot path) ------------------------------------------

    def hash(self, secret: str) -> str:
        return keyformat.hash_secret(secret, self.pepper)

    def find_by_secret(self, secret: str) -> Any:
        """The key for *secret* with its owner, in the session; ``None`` if unknown."""
        key_hash = self.hash(secret)
        if self.key_lookup is None:
            return self._select_by_hash(key_hash)
        key = self.key_lookup.find(key_hash)
        return None if key is None else self.key_lookup.attach(key)

    def _select_by_hash(self, key_hash: str) -> Any:
        APIKey, User = self.models.APIKey, self.models.User
        stmt = (
            sa.select(APIKey)
            .join(User, APIKey.owner_id == getattr(User, self._user_pk))
            .options(contains_eager(APIKey.owner))
            .where(APIKey.key_hash == key_hash)
            # A long-lived session must not serve a stale, unrevoked copy of the key.
            .execution_options(populate_existing=True)
        )
        return self.session.execute(stmt).scalars().first()

    def verify(self, secret: str) -> VerifiedKey:
        """Check *secret* and return what it may do, or raise :class:`AuthenticationFailed`.

        A malformed key or bad checksum costs no query; a well-formed one costs one
        indexed SELECT (plus whatever the host's permissions loader does). Nothing
        is written.
        """
        try:
            keyformat.parse_key(secret, self.prefix)
        except keyformat.KeyFormatError:
            raise AuthenticationFailed("invalid_api_key", "The API key is not valid.") from None
        return self.verify_well_formed(secret)

    def verify_well_formed(self, secret: str) -> VerifiedKey:
        """:meth:`verify` for a *secret* whose shape and checksum were checked already."""
        key_hash = self.hash(secret)
        lookup = self.key_lookup
        if lookup is None:
            key = self._select_by_hash(key_hash)
            attach = None
        else:
            key = lookup.find(key_hash)
            attach = lookup.attach
        if key is None or not hmac.compare_digest(key.key_hash, key_hash):
            raise AuthenticationFailed("invalid_api_key", "The API key is not valid.")
        if attach is not None and self._judge_in_session:
            key, attach = attach(key), None
        try:
            return self._judge(key, attach)
        except DetachedInstanceError:
            if attach is None:
                raise
            # The host's loaders read something that was not loaded with the owner:
            # from now on, judge keys in the session.
            self._judge_in_session = True
            return self._judge(attach(key), None)

    def _judge(self, key: Any, attach: Callable[[Any], Any] | None) -> VerifiedKey:
        status = key.status_at(self.clock())
        if status == KeyStatus.REVOKED:
            raise self._failed("revoked_api_key", "The API key has been revoked.", key, attach)
        if status == KeyStatus.EXPIRED:
            raise self._failed("expired_api_key", "The API key has expired.", key, attach)
        owner = key.owner
        if not self._is_active(owner):
            raise self._failed(
                "inactive_user", "The owner of this API key is no longer active.", key, attach
            )
        return VerifiedKey(key, owner, self.effective_scopes(key, owner), attach=attach)

    @staticmethod
    def _failed(
        code: str, message: str, key: Any, attach: Callable[[Any], Any] | None
    ) -> AuthenticationFailed:
        # Listeners and the audit trail get the key as a live object of the session.
        return AuthenticationFailed(code, message, key if attach is None else attach(key))

    # -- lookups -----------------------------------------------------------------

    def usable_clause(self, now: dt.datetime | None = None) -> sa.ColumnElement[bool]:
        """The one place that says which keys still authenticate."""
        now = now or self.clock()
        APIKey = self.models.APIKey
        return sa.and_(
            sa.or_(APIKey.revoked_at.is_(None), APIKey.revoked_at > now),
            sa.or_(APIKey.expires_at.is_(None), APIKey.expires_at > now),
        )

    def keys_query(
        self,
        *,
        owner: Any = None,
        organization_id: Any = None,
        status: str | None = None,
        search: str | None = None,
    ) -> sa.Select[Any]:
        """A SELECT of keys, newest first, filtered as asked; callers paginate it."""
        APIKey = self.models.APIKey
        now = self.clock()
        stmt = sa.select(APIKey).order_by(APIKey.created_at.desc(), APIKey.id.desc())
        if owner is not None:
            stmt = stmt.where(APIKey.owner_id == self.user_id(owner))
        if organization_id is not None:
            stmt = stmt.where(
                APIKey.organization_id
                == self.models.coerce_organization_id_or_none(organization_id)
            )
        if status == KeyStatus.ACTIVE:
            stmt = stmt.where(self.usable_clause(now))
        elif status == KeyStatus.REVOKED:
            stmt = stmt.where(APIKey.revoked_at.is_not(None), APIKey.revoked_at <= now)
        elif status == KeyStatus.EXPIRED:
            stmt = stmt.where(
                sa.or_(APIKey.revoked_at.is_(None), APIKey.revoked_at > now),
                APIKey.expires_at.is_not(None),
                APIKey.expires_at <= now,
            )
        elif status is not None:
            raise RequestRefused(f"Unknown status {status!r}.", field="status")
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            stmt = stmt.where(
                sa.or_(
                    APIKey.name.ilike(pattern, escape="\\"),
                    APIKey.display_prefix.ilike(pattern, escape="\\"),
                )
            )
        return stmt

    def list_keys(self, **filters: Any) -> list[Any]:
        return list(self.session.execute(self.keys_query(**filters)).scalars())

    def get_key(self, key_id: Any) -> Any:
        try:
            key_id = int(key_id)
        except (TypeError, ValueError):
            return None
        if not -(2**63) <= key_id < 2**63:
            return None
        return self.session.get(self.models.APIKey, key_id)

    def get_owned_key(self, user: Any, key_id: Any) -> Any:
        """*user*'s own key *key_id*, or ``None`` (also for other users' keys)."""
        key = self.get_key(key_id)
        if key is None or key.owner_id != self.user_id(user):
            return None
        return key

    def get_managed_key(self, admin: Any, key_id: Any) -> Any:
        """Key *key_id* if *admin* manages its organization, else ``None``."""
        key = self.get_key(key_id)
        if key is None or not self.can_manage_organization(admin, key.organization_id):
            return None
        return key

    def get_by_display_prefix(self, display_prefix: str) -> Any:
        APIKey = self.models.APIKey
        return self.session.execute(
            sa.select(APIKey).where(APIKey.display_prefix == display_prefix)
        ).scalar_one_or_none()

    def events(self, key: Any, limit: int = 100) -> list[Any]:
        Event = self.models.APIKeyEvent
        stmt = (
            sa.select(Event)
            .where(Event.key_id == key.id)
            .order_by(Event.at.desc(), Event.id.desc())
            .limit(limit)
        )
        return list(self.session.execute(stmt).scalars())

    # -- changes ---------------------------------------------------------------------

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
    ) -> IssuedKey:
        """Create a key for *owner* and return it with its secret (the only copy).

        *actor* is who asked (``None`` for an operator); only the owner may create
        their own keys. Raises :class:`RequestRefused` with a message for the user.
        """
        if actor is not None and self.user_id(actor) != self.user_id(owner):
            raise RequestRefused("You can only create API keys for yourself.")
        name = clean_name(name)
        if not self._is_active(owner):
            raise RequestRefused("This user is not active.")
        organization_id = self._choose_organization(owner, organization_id)
        held = self.permissions_of(owner, organization_id)
        if self.create_permission not in held:
            raise RequestRefused(
                f"You need the '{self.create_permission}' permission to create API keys."
            )
        if self.creation_policy is not None:
            refusal = self.creation_policy(owner, organization_id)
            if refusal:
                raise RequestRefused(str(refusal))
        chosen = self._check_scopes(owner, organization_id, scopes, full_access)
        now = self.clock()
        self._check_expiry(expires_at, now)
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
        )

    def rotate(
        self,
        key: Any,
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
        if not self._is_active(owner):
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
        key: Any,
        *,
        actor: Any = None,
        reason: str | None = None,
        ip: str | None = None,
    ) -> bool:
        """Revoke *key* now. Returns ``False`` if it was already revoked.

        Allowed to its owner, to an admin of its organization, and to operators.
        """
        self._check_may_change(key, actor)
        reason = self._clean_reason(reason)
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

    def usable_keys_of(self, owner: Any, organization_id: Any = None) -> list[Any]:
        """The keys of *owner* (in *organization_id*, when given) that still work."""
        stmt = self.keys_query(owner=owner, organization_id=organization_id)
        return list(self.session.execute(stmt.where(self.usable_clause())).scalars())

    def usable_key_counts(self, organization_id: Any) -> dict[Any, int]:
        """How many working keys each owner has in *organization_id*, in one query."""
        APIKey = self.models.APIKey
        stmt = (
            sa.select(APIKey.owner_id, sa.func.count())
            .where(
                APIKey.organization_id
                == self.models.coerce_organization_id_or_none(organization_id),
                self.usable_clause(),
            )
            .group_by(APIKey.owner_id)
        )
        return {owner_id: int(count) for owner_id, count in self.session.execute(stmt)}

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
        reason = self._clean_reason(reason) or "offboarded"
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

    def rename(self, key: Any, name: str, *, actor: Any = None, ip: str | None = None) -> None:
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
        self, key: Any, event: str, *, actor: Any = None, ip: str | None = None, **details: Any
    ) -> None:
        """Record *event* on *key* (e.g. a use after expiry) and commit."""
        self._audit(key, event, actor, ip, self.clock(), **details)
        self.session.commit()

    def set_rate_limit(
        self, key: Any, rate_limit: str | None, *, actor: Any = None, ip: str | None = None
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
        key: Any,
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

    def daily_usage(self, key: Any, days: int = 30) -> list[tuple[dt.date, int]]:
        """Calls per UTC day for the last *days* days, oldest first, zeros included."""
        Usage = self.models.APIKeyUsageDay
        today = self.clock().date()
        first = today - dt.timedelta(days=days - 1)
        rows = self.session.execute(
            sa.select(Usage.day, Usage.count).where(Usage.key_id == key.id, Usage.day >= first)
        ).all()
        counts = {day: int(count) for day, count in rows}
        return [
            (first + dt.timedelta(days=n), counts.get(first + dt.timedelta(days=n), 0))
            for n in range(days)
        ]

    # -- internals ---------------------------------------------------------------------

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

    def _check_expiry(self, expires_at: dt.datetime | None, now: dt.datetime) -> None:
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

    def _clean_reason(self, reason: str | None) -> str | None:
        if reason is None:
            return None
        reason = " ".join(str(reason).split())
        if len(reason) > REASON_MAX_LENGTH:
            raise RequestRefused(
                f"The reason can be at most {REASON_MAX_LENGTH} characters.", field="reason"
            )
        return reason or None

    def _check_may_change(self, key: Any, actor: Any) -> None:
        if actor is None or self.user_id(actor) == key.owner_id:
            return
        if self.can_manage_organization(actor, key.organization_id):
            return
        raise RequestRefused("You cannot change this key.")

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
        )
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
        key: Any,
        event: str,
        actor: Any,
        ip: str | None,
        now: dt.datetime,
        **details: Any,
    ) -> None:
        self.session.add(
            self.models.APIKeyEvent(
                key_id=key.id,
                event=event,
                actor_id=self.user_id(actor) if actor is not None else None,
                at=now,
                ip=ip,
                details={k: v for k, v in details.items() if v is not None} or None,
            )
        )

    def _emit(self, event: str, key: Any, **data: Any) -> None:
        if self._on_event is not None:
            self._on_event(event, key, **data)

    # -- added for the pages --

    KEY_SORTS = ("created", "usage", "last_used")

    def creation_refusal(self, user: Any, organization_id: Any = None) -> str | None:
        """Why *user* cannot create a key in *organization_id* now, or ``None`` if they can.

        Lets a page say so before the form is filled in; :meth:`issue` checks again.
        """
        if not self._is_active(user):
            return "This user is not active."
        if not self.can_create(user, organization_id):
            return f"You need the '{self.create_permission}' permission to create API keys."
        if self.creation_policy is not None:
            refusal = self.creation_policy(user, organization_id)
            if refusal:
                return str(refusal)
        return None

    def managed_organizations(self, user: Any) -> list[Organization]:
        """The organizations of *user* in which they hold the manage permission."""
        return [o for o in self.organizations_of(user) if self.can_manage_organization(user, o.id)]

    def key_owners(self, organization_id: Any) -> list[Any]:
        """Users owning at least one key in *organization_id*, ordered by id."""
        APIKey, User = self.models.APIKey, self.models.User
        user_pk = getattr(User, self._user_pk)
        owner_ids = sa.select(APIKey.owner_id).where(
            APIKey.organization_id == self.models.coerce_organization_id_or_none(organization_id)
        )
        stmt = sa.select(User).where(user_pk.in_(owner_ids)).order_by(user_pk)
        return list(self.session.execute(stmt).unique().scalars())

    def sorted_keys_query(self, sort: str | None = None, **filters: Any) -> sa.Select[Any]:
        """:meth:`keys_query` ordered by ``created`` (default), ``usage`` or ``last_used``."""
        APIKey = self.models.APIKey
        stmt = self.keys_query(**filters)
        if sort == "usage":
            stmt = stmt.order_by(None).order_by(APIKey.usage_count.desc(), APIKey.id.desc())
        elif sort == "last_used":
            stmt = stmt.order_by(None).order_by(
                APIKey.last_used_at.is_(None), APIKey.last_used_at.desc(), APIKey.id.desc()
            )
        elif sort not in (None, "", "created"):
            raise RequestRefused(f"Unknown sort {sort[:20]!r}.", field="sort")
        return stmt

    def page_of(self, stmt: sa.Select[Any], page: int, per_page: int) -> tuple[list[Any], int]:
        """Page *page* (from 1) of *stmt* and the total number of rows."""
        total = self.session.execute(
            sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
        ).scalar_one()
        page = max(1, page)
        rows = self.session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).scalars()
        return list(rows), int(total)
