"""Choosing the resources a key is limited to: on the create page and on a key's page.

The create page includes ``apikeys/_resources_field.html`` and the key's page
``apikeys/_resources_form.html``; both read what they show from the template helpers
below, so the views that render them pass nothing. For each kind the host registered
(``@apikeys.resource_loader``), the person chooses "All clients" or some of them; the
service checks the choice (only what the loader lists for the key's owner and
organization).

Form fields, per organization (an organization's list differs from another's) and kind:
``resources-<org>-<kind>-mode`` is ``all`` or ``only``, and ``resources-<org>-<kind>``
holds the chosen ids.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf

from ...service.context import Organization
from ...service.facade import KeyService
from ...service.resources import Resource, Selection
from .common import page_service, signed_in_user

__all__ = ["ResourcesForm", "resource_helpers", "submitted_resources"]


class ResourcesForm(FlaskForm):  # type: ignore[misc]
    """The key page's resources form: its fields are drawn by the template; this
    checks the CSRF token."""


@dataclass(frozen=True)
class ResourceGroup:
    """One kind of resource, for one organization, as a form shows it."""

    kind: str
    label: str
    noun: str
    org_key: str
    org_name: str | None
    resources: list[Resource]
    chosen: frozenset[str]
    limited: bool

    @property
    def mode_field(self) -> str:
        return f"{self.ids_field}-mode"

    @property
    def ids_field(self) -> str:
        return f"resources-{self.org_key}-{self.kind}"


def _org_key(organization_id: Any) -> str:
    return "none" if organization_id is None else str(organization_id)


def _groups(
    service: KeyService,
    user: Any,
    orgs: list[Organization | None],
    current: Selection | None,
    *,
    from_form: bool,
) -> list[ResourceGroup]:
    groups = []
    for org in orgs:
        org_id = org.id if org is not None else None
        for kind in service.resources.resource_kinds.values():
            group = ResourceGroup(
                kind=kind.name,
                label=kind.label,
                noun=kind.noun,
                org_key=_org_key(org_id),
                org_name=org.name if org is not None and len(orgs) > 1 else None,
                resources=kind.resources_for(user, org_id),
                chosen=frozenset(),
                limited=False,
            )
            if from_form:
                chosen = frozenset(request.form.getlist(group.ids_field))
                limited = request.form.get(group.mode_field) == "only"
            else:
                chosen = frozenset((current or {}).get(kind.name) or ())
                limited = current is not None and kind.name in current
            groups.append(replace(group, chosen=chosen, limited=limited))
    return groups


def _create_groups(orgs: list[Organization]) -> list[ResourceGroup]:
    """The create page's choices: every kind, in each of the user's organizations."""
    service = page_service()
    if not service.resources.resource_kinds:
        return []
    return _groups(
        service, signed_in_user(), list(orgs) or [None], None, from_form=request.method == "POST"
    )


def _key_groups(key: Any) -> list[ResourceGroup]:
    """The key page's choices: every kind, in the key's organization, for its owner."""
    service = page_service()
    if not service.resources.resource_kinds:
        return []
    org = Organization(key.organization_id, "") if key.organization_id is not None else None
    refused = request.method == "POST" and (request.endpoint or "").endswith(".resources")
    return _groups(service, key.owner, [org], key.resources, from_form=refused)


def _key_summary(key: Any) -> list[tuple[str, list[str] | None]]:
    """``[("Clients", ["Wayne Enterprises", ...])]``; ``None`` for a kind not limited."""
    summary: list[tuple[str, list[str] | None]] = []
    for group in _key_groups(key):
        if not group.limited:
            summary.append((group.label, None))
            continue
        names = {r.id: r.label for r in group.resources}
        ids = (key.resources or {}).get(group.kind) or []
        summary.append((group.label, [names.get(i, f"#{i}") for i in ids]))
    return summary


def resource_helpers() -> dict[str, Any]:
    """What the resources templates call."""
    return {
        "apikeys_resource_groups": _create_groups,
        "apikeys_key_resource_groups": _key_groups,
        "apikeys_key_resources": _key_summary,
        "apikeys_csrf_token": generate_csrf,
    }


def submitted_resources(service: KeyService, organization_id: Any) -> Selection | None:
    """The resources chosen in the submitted form, for *organization_id* (unchecked: the
    service checks them when it creates or changes the key)."""
    selection: Selection = {}
    org_key = _org_key(organization_id)
    for kind in service.resources.resource_kinds:
        field = f"resources-{org_key}-{kind}"
        if request.form.get(f"{field}-mode") == "only":
            selection[kind] = request.form.getlist(field)
    return selection or None
