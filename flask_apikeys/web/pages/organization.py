"""The organization admin pages: every key of the organization, offboarding."""

from __future__ import annotations

from typing import Any

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
from ...service.listing import SORT_DIRECTIONS
from ...service.validation import RequestRefused
from ..forms import (
    ConfirmForm,
)
from .common import (
    SORTS,
    STATUS_FILTERS,
    client_ip,
    csrf_or_400,
    form_error,
    page_service,
    signed_in_user,
    user_label,
)


def managed_org_or_404(org_id: Any) -> Organization:
    for org in page_service().context.managed_organizations(signed_in_user()):
        if str(org.id) == str(org_id):
            return org
    abort(404)


def organization() -> ResponseReturnValue:
    service, user = page_service(), signed_in_user()
    managed = service.context.managed_organizations(user)
    if not managed:
        abort(403, "You need to manage an organization to see its keys.")
    org = managed_org_or_404(request.args["org"]) if request.args.get("org") else managed[0]
    owners = service.queries.key_owners(org.id)
    owner_id = request.args.get("owner", "")
    owner = next((u for u in owners if str(service.context.user_id(u)) == owner_id), None)
    status = request.args.get("status", "")
    if status not in STATUS_FILTERS:
        status = ""
    search = request.args.get("q", "").strip()[:100]
    # ?sort=usage sorts in the sort's natural direction, ?sort=usage:asc the other way.
    sort, _, direction = request.args.get("sort", "created").partition(":")
    if sort not in SORTS:
        sort = "created"
    if direction not in ("asc", "desc"):
        direction = SORT_DIRECTIONS[sort]
    try:
        page = max(1, min(int(request.args.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    per_page = max(1, int(current_app.config.get("APIKEYS_PAGE_SIZE") or 25))
    stmt = service.listing.ordered_keys_query(
        sort,
        direction,
        organization_id=org.id,
        owner=owner,
        status=status or None,
        search=search or None,
    )
    keys, total = service.queries.page_of(stmt, page, per_page)
    pages = max(1, -(-total // per_page))
    if page > pages:  # past the end (a bookmark, or keys revoked since): the last page
        page = pages
        keys, total = service.queries.page_of(stmt, page, per_page)
    usable = service.queries.usable_key_counts(org.id)
    members = [
        {
            "user": u,
            "id": service.context.user_id(u),
            "usable": usable.get(service.context.user_id(u), 0),
        }
        for u in owners
    ]
    filters = {
        "org": org.id if len(managed) > 1 else None,
        "owner": owner_id if owner is not None else None,
        "status": status or None,
        "q": search or None,
        "sort": _sort_arg(sort, direction) if (sort, direction) != ("created", "desc") else None,
    }
    return render_template(
        "apikeys/organization.html",
        org=org,
        managed=managed,
        owners=owners,
        owner_id=owner_id if owner is not None else "",
        status=status,
        search=search,
        sort=sort,
        sorts=[
            (_sort_arg(name, way), label) for name in SORTS for way, label in SORTS[name].items()
        ],
        sort_arg=_sort_arg,
        sort_value=_sort_arg(sort, direction),
        direction=direction,
        sort_defaults=SORT_DIRECTIONS,
        keys=keys,
        links=service.listing.rotation_links(keys),
        total=total,
        filtered=bool(owner is not None or status or search),
        has_keys=bool(owners),
        page=page,
        pages=pages,
        members=members,
        filters={k: v for k, v in filters.items() if v is not None},
        user_id_of=service.context.user_id,
    )


def _sort_arg(sort: str, direction: str) -> str:
    """The ``sort`` argument of the page's URLs: ``usage``, or ``usage:asc`` when reversed."""
    return sort if direction == SORT_DIRECTIONS[sort] else f"{sort}:{direction}"


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
    return (
        render_template(
            "apikeys/offboard.html",
            org=org,
            owner=owner,
            owner_label=user_label(owner),
            keys=service.queries.usable_keys_of(owner, org.id),
            form=form,
        ),
        status,
    )
