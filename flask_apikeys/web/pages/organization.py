"""The organization admin pages: every key of the organization, offboarding."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from ...service.context import Organization
from ...service.validation import RequestRefused
from ..forms import (
    ConfirmForm,
)
from .common import (
    client_ip,
    csrf_or_400,
    form_error,
    page_service,
    signed_in_user,
    user_label,
)
from .lists import read_key_list


def managed_org_or_404(org_id: Any) -> Organization:
    for org in page_service().context.managed_organizations(signed_in_user()):
        if str(org.id) == str(org_id):
            return org
    abort(404)


#: The organization list sorts by its headers: name, last use, expiry (the status
#: column), and newest first when none is chosen.
ORG_SORTS = ("created", "name", "last_used", "expires", "usage")


def organization() -> ResponseReturnValue:
    """Every key of one organization: a keyset page, active keys by default, filtered
    by owner, status, name or prefix and policy; each key that breaks the policy marked."""
    service, user = page_service(), signed_in_user()
    managed = service.context.managed_organizations(user)
    if not managed:
        abort(403, "You need to manage an organization to see its keys.")
    org = managed_org_or_404(request.args["org"]) if request.args.get("org") else managed[0]
    listed = read_key_list(".organization", sorts=ORG_SORTS)
    owners = service.queries.key_owners(org.id)
    owner_id = request.args.get("owner", "")
    owner = next((u for u in owners if str(service.context.user_id(u)) == owner_id), None)
    listed.extra = {
        "org": org.id if len(managed) > 1 else None,
        "owner": owner_id if owner is not None else None,
    }
    policy = service.policies.policy_of(org.id)
    rules = policy_rules(policy)
    if listed.breaks and not rules:
        listed.breaks = ""
    filters: dict[str, Any] = {
        "organization_id": org.id,
        "owner": owner,
        "search": listed.search or None,
        "breaks": listed.breaks or None,
    }
    listed.counts = service.listing.status_counts(**filters)
    listed.page = page = service.listing.key_page(
        sort=listed.sort,
        direction=listed.direction,
        after=listed.after,
        before=listed.before,
        last=listed.last,
        number=listed.number,
        per_page=listed.per_page(),
        counts=listed.counts,
        status=listed.service_status,
        **filters,
    )
    usable = service.queries.usable_key_counts(org.id)
    members = [
        {
            "user": u,
            "id": service.context.user_id(u),
            "usable": usable.get(service.context.user_id(u), 0),
        }
        for u in owners
    ]
    return render_template(
        "apikeys/organization.html",
        org=org,
        managed=managed,
        owners=owners,
        owner_id=owner_id if owner is not None else "",
        list=listed,
        page=page,
        keys=page.keys,
        counts=listed.counts,
        links=service.listing.rotation_links(page.keys),
        policy=policy,
        rules=rules,
        breaches={key.id: breach_notes(key, service) for key in page.keys},
        has_keys=bool(owners),
        members=members,
        user_id_of=service.context.user_id,
    )


def policy_rules(policy: Any) -> dict[str, str]:
    """The rules of *policy* a list can filter by, with how the filter names them."""
    rules: dict[str, str] = {}
    if policy is not None and policy.max_lifetime_days is not None:
        rules["lifetime"] = f"Outlives the {policy.max_lifetime_days:,}-day lifetime"
    if policy is not None and policy.allowed_permissions is not None:
        rules["permissions"] = "Holds more permissions than allowed"
    if len(rules) > 1:
        rules = {"any": "Breaks the policy", **rules}
    return rules


def breach_notes(key: Any, service: Any) -> list[str]:
    """What of its organization's policy *key* breaks, in words (none: an empty list)."""
    notes = []
    policy = key.organization_policy
    for rule in service.listing.policy_breaches(key):
        if rule == "lifetime":
            notes.append(f"Outlives the {policy.max_lifetime_days:,}-day limit")
        else:
            extra = sorted(set(key.scopes or ()) - set(policy.allowed_permissions or ()))
            notes.append(f"Holds {', '.join(extra)}: not allowed")
    return notes


#: The newest working keys the offboarding page names; the rest are counted and linked.
OFFBOARD_SHOWN = 5


def member_permissions_url(member: Any, org: Organization) -> str | None:
    """Where the host's admin removes *member*'s permissions in *org*:
    ``APIKEYS_MEMBER_PERMISSIONS_URL``, a URL with ``{user_id}`` and
    ``{organization_id}`` in it, or a function ``(user, organization_id) -> URL``."""
    setting = current_app.config.get("APIKEYS_MEMBER_PERMISSIONS_URL")
    if callable(setting):
        url = setting(member, org.id)
        return str(url) if url else None
    if not setting:
        return None
    user_id = page_service().context.user_id(member)
    return (
        str(setting)
        .replace("{user_id}", quote(str(user_id), safe=""))
        .replace("{organization_id}", quote(str(org.id), safe=""))
    )


def offboard(org_id: str, user_id: str) -> ResponseReturnValue:
    service, user = page_service(), signed_in_user()
    org = managed_org_or_404(org_id)
    owner = next(
        (
            u
            for u in service.queries.key_owners(org.id)
            if str(service.context.user_id(u)) == user_id
        ),
        None,
    )
    if owner is None:
        abort(404)
    form = ConfirmForm()
    status = 200
    if form.validate_on_submit():
        try:
            count = service.keys.revoke_user_keys(
                owner, actor=user, organization_id=org.id, reason=form.reason.data, ip=client_ip()
            )
        except RequestRefused as exc:
            form_error(form, exc)
            status = 400
        else:
            noun = "key" if count == 1 else "keys"
            flash(f"Revoked {count} {noun} of {user_label(owner)}.", "success")
            return redirect(url_for(".organization", org=org.id))
    elif form.is_submitted():
        csrf_or_400(form)
        status = 400
    usable = service.queries.usable_key_counts(org.id).get(service.context.user_id(owner), 0)
    newest = service.queries.keys_query(owner=owner, organization_id=org.id, status="active")
    return (
        render_template(
            "apikeys/offboard.html",
            org=org,
            owner=owner,
            owner_id=user_id,
            owner_label=user_label(owner),
            owner_name=getattr(owner, "name", None) or user_label(owner),
            usable=usable,
            counts=service.listing.status_counts(owner=owner, organization_id=org.id),
            keys=list(service.context.session.scalars(newest.limit(OFFBOARD_SHOWN))),
            can_create=service.context.create_permission
            in service.context.permissions_of(owner, org.id),
            member_url=member_permissions_url(owner, org),
            form=form,
        ),
        status,
    )
