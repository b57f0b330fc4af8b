"""What the create page offers, and why an option is locked, before anything is sent.

The page asks the same rules the service applies when the form comes back: the
site's and the organization's maximum lifetime, the organization's allowed
permissions, what the user holds, and the host's creation policy, which is shown
sample keys (a Read-only one, a Full-access one, one with permissions chosen one by
one, one limited to some resources) as :class:`~flask_apikeys.KeyDraft`\\ s. An option
one of them refuses is shown locked, with the reason and the rule's link, and is never
the default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from flask import url_for

from ...db.models import utcnow
from ...keys.drafts import KeyDraft
from ...service.context import Organization
from ...service.facade import KeyService
from ..forms import EXPIRY_CHOICES, CreateKeyForm
from ..state import app_keys
from .common import when_long

__all__ = ["CreateOptions", "Lock", "default_expiry_label", "expiry_text"]

NOT_HELD = "You don\u2019t have this permission"


@dataclass(frozen=True)
class Lock:
    """Why an option cannot be chosen: a sentence, and where the rule is explained."""

    reason: str
    link: str | None = None
    link_text: str = ""

    @classmethod
    def of(cls, refusal: str | None) -> Lock | None:
        """The lock of a refusal (a :class:`~flask_apikeys.Refusal` keeps its link)."""
        if not refusal:
            return None
        link = getattr(refusal, "link", None)
        return cls(str(refusal), link, getattr(refusal, "link_text", "") if link else "")


@dataclass
class CreateOptions:
    """The create page's choices for one user in one organization, each locked or not."""

    organization: Organization | None
    #: Why no key can be created here at all (the page is then read-only).
    refusal: Lock | None
    #: Organizations in which the user may not create keys, with why.
    refused_orgs: dict[str, Lock]
    expiry: list[dict[str, Any]]
    expiry_lock: Lock | None
    max_days: int | None
    access: dict[str, Lock | None]
    resources_lock: Lock | None
    groups: list[tuple[str, list[dict[str, Any]]]]
    reads: list[str] = field(default_factory=list)

    @property
    def default_access(self) -> str:
        """The first choice nothing refuses: permissions one by one, else Read-only, ..."""
        for value in ("custom", "read", "full"):
            if self.access.get(value) is None:
                return value
        return "custom"

    @property
    def default_expiry(self) -> str:
        """The form's default (90 days) when it may be chosen, else the longest that may."""
        wanted = CreateKeyForm.expires.kwargs.get("default", "90d")
        usable = [o["value"] for o in self.expiry if not o["locked"]]
        if wanted in usable:
            return str(wanted)
        fixed = [o["value"] for o in self.expiry if not o["locked"] and o["days"]]
        return fixed[-1] if fixed else (usable[0] if usable else str(wanted))

    @classmethod
    def build(
        cls, service: KeyService, user: Any, orgs: list[Organization], wanted: Any
    ) -> CreateOptions:
        """The options in the organization *wanted* (an id as sent), else the first
        one the user may create keys in."""
        ctx = service.context
        refused = {str(o.id): Lock.of(ctx.creation_refusal(user, o.id)) for o in orgs}
        refused_orgs = {k: v for k, v in refused.items() if v is not None}
        org = None
        if orgs:
            wanted_id = ctx.models.coerce_organization_id_or_none(wanted) if wanted else None
            org = next((o for o in orgs if o.id == wanted_id), None)
            org = org or next((o for o in orgs if str(o.id) not in refused_orgs), orgs[0])
        org_id = org.id if org is not None else None
        held = ctx.permissions_of(user, org_id)
        refusal = Lock.of(ctx.creation_refusal(user, org_id, held=held))
        grantable = ctx.grantable_permissions(user, org_id, held=held)
        reads = sorted(p for p in grantable if p.endswith(".read"))
        expiry, expiry_lock, max_days = _expiry(service, user, org)
        access: dict[str, Lock | None] = {}
        resources_lock = None
        if refusal is None:
            drafts = _access_drafts(grantable, reads)
            access = _access_locks(service, user, org_id, held, drafts, bool(reads))
            usable = next((drafts[a] for a in drafts if access[a] is None), drafts["custom"])
            resources_lock = _resources_lock(service, user, org_id, held, usable)
        return cls(
            organization=org,
            refusal=refusal,
            refused_orgs=refused_orgs,
            expiry=expiry,
            expiry_lock=expiry_lock,
            max_days=max_days,
            access=access,
            resources_lock=resources_lock,
            groups=_scope_grid(service, user, orgs, org, grantable, held),
            reads=reads,
        )


def _policy_link(service: KeyService, user: Any, org: Organization | None) -> dict[str, Any]:
    """A link to the organization's key policy, for those who may open it."""
    if org is None or not service.context.can_manage_organization(user, org.id):
        return {}
    return {"link": url_for(".policy", org_id=org.id), "link_text": "See the policy"}


def _expiry(
    service: KeyService, user: Any, org: Organization | None
) -> tuple[list[dict[str, Any]], Lock | None, int | None]:
    """Each expiry choice (value, label, days, the date it means, locked), the lock of
    those past the maximum lifetime, and that maximum in days."""
    org_id = org.id if org is not None else None
    limit = service.policies.lifetime_limit(org_id)
    lock = None
    if limit is not None:
        policy = service.policies.policy_of(org_id)
        org_days = policy.max_lifetime_days if policy is not None else None
        if org is not None and org_days is not None and org_days <= limit.days:
            lock = Lock(
                f"{org.name}\u2019s key policy: keys expire within {org_days} days.",
                **_policy_link(service, user, org),
            )
        else:
            lock = Lock(f"Keys on this site expire within {limit.days} days.")
    dates = expiry_dates()
    options = []
    for value, label, days in EXPIRY_CHOICES:
        locked = limit is not None and (
            value == "never" or (days is not None and days > limit.days)
        )
        options.append(
            {
                "value": value,
                "label": label,
                "days": days,
                "until": dates.get(value),
                "locked": locked,
            }
        )
    return options, lock, limit.days if limit is not None else None


def _access_drafts(grantable: frozenset[str], reads: list[str]) -> dict[str, KeyDraft]:
    """A sample key of each access choice, as the creation policy would see it."""
    return {
        "custom": KeyDraft(frozenset(sorted(grantable)[:1])),
        "read": KeyDraft(frozenset(reads), read_only=True),
        "full": KeyDraft(frozenset(), full_access=True),
    }


def _access_locks(
    service: KeyService,
    user: Any,
    org_id: Any,
    held: frozenset[str],
    drafts: dict[str, KeyDraft],
    any_read: bool,
) -> dict[str, Lock | None]:
    """Read-only, Full access and "Choose permissions", each as the policy answers a
    sample key of that kind (and Read-only only when the user holds a read permission)."""
    ctx = service.context
    locks = {
        access: Lock.of(ctx.creation_refusal(user, org_id, draft, held=held))
        for access, draft in drafts.items()
    }
    if not any_read and locks["read"] is None:
        locks["read"] = Lock("You hold no read permission to give a key.")
    return locks


def _resources_lock(
    service: KeyService, user: Any, org_id: Any, held: frozenset[str], usable: KeyDraft
) -> Lock | None:
    """Whether the policy lets a key (of an access it allows) be limited to some
    resources: a sample key limited to one."""
    kinds = list(service.resources.resource_kinds)
    if not kinds:
        return None
    draft = dataclasses.replace(usable, resources={kinds[0]: ("1",)})
    return Lock.of(service.context.creation_refusal(user, org_id, draft, held=held))


def _scope_grid(
    service: KeyService,
    user: Any,
    orgs: list[Organization],
    org: Organization | None,
    grantable: frozenset[str],
    held: frozenset[str],
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Permissions grouped by resource, each with whether *user* may grant it and, if
    not, why: they do not hold it, or the organization's policy does not allow it."""
    vocabulary = app_keys().permission_vocabulary()
    ctx = service.context
    by_org = {str(o.id): ctx.grantable_permissions(user, o.id) for o in orgs}
    policy = service.policies.policy_of(org.id) if org is not None else None
    allowed = policy.allowed_permissions if policy is not None else None
    policy_reason = ""
    if org is not None and allowed is not None:
        policy_reason = f"Not allowed by {org.name}\u2019s key policy"
    groups: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(vocabulary):
        resource, _, action = name.partition(".")
        why = ""
        if name not in grantable:
            blocked_by_policy = allowed is not None and name in held and name not in allowed
            why = policy_reason if blocked_by_policy else NOT_HELD
        groups.setdefault(resource, []).append(
            {
                "name": name,
                "action": action or name,
                "description": vocabulary[name],
                "allowed": name in grantable,
                "why": why,
                "orgs": " ".join(o for o, ok in by_org.items() if name in ok),
                "read": name.endswith(".read"),
            }
        )
    return [(resource.replace("_", " ").capitalize(), items) for resource, items in groups.items()]


def expiry_dates(now: dt.datetime | None = None) -> dict[str, dt.datetime]:
    """When a key created now would expire, for each fixed choice (30 days, ...)."""
    now = now or utcnow()
    return {value: now + dt.timedelta(days=days) for value, _, days in EXPIRY_CHOICES if days}


def expiry_text(value: str | None, custom_day: dt.date | None) -> str:
    """The sentence under the expiry choices (apikeys.js keeps it up to date)."""
    if value == "never":
        return "Never expires."
    if value == "custom":
        if custom_day is None:
            return "Pick the last day the key works."
        return f"Expires at the end of {when_long(custom_day)} (UTC)."
    until = expiry_dates().get(value or "")
    return f"Expires on {when_long(until)}." if until else ""


def default_expiry_label(max_days: int | None = None) -> str | None:
    """The create form's default expiry in words (``90 days``); ``None`` when a maximum
    lifetime of *max_days* rules it out (the create page then defaults to another)."""
    default = CreateKeyForm.expires.kwargs.get("default")
    for value, label, days in EXPIRY_CHOICES:
        if value == default:
            return None if max_days is not None and (days or 0) > max_days else label
    return None
