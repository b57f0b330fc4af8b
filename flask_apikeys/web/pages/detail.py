"""One key: its page, rename, rotate, revoke and its restrictions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import (
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from ...service.validation import RequestRefused, parse_duration
from ..forms import IPAllowlistForm, RateLimitForm, RenameForm, RevokeForm, RotateForm
from .common import (
    client_ip,
    csrf_or_400,
    form_error,
    page_service,
    signed_in_user,
    status_of,
    user_label,
)
from .keys import show_once
from .resources import ResourcesForm, submitted_resources


@dataclass
class KeyAccess:
    key: Any
    is_owner: bool
    is_admin: bool


def key_or_404(key_id: int) -> KeyAccess:
    """The user's own key, or a key of an organization they manage; else 404."""
    service, user = page_service(), signed_in_user()
    key = service.queries.get_owned_key(user, key_id)
    is_owner = key is not None
    if key is None:
        key = service.queries.get_managed_key(user, key_id)
    if key is None:
        abort(404)
    return KeyAccess(
        key, is_owner, service.context.can_manage_organization(user, key.organization_id)
    )


#: How many of the newest events and requests the page shows; "See all" shows more.
EVENTS_SHOWN = 5
REQUESTS_SHOWN = 10


def render_detail(access: KeyAccess, status: int = 200, **forms: Any) -> ResponseReturnValue:
    """The key's page, in sections: overview, usage, requests, activity, settings.
    *forms* are forms sent and refused, shown with their errors."""
    service = page_service()
    key = access.key
    forms.setdefault("rename_form", RenameForm(formdata=None, name=key.name))
    forms.setdefault("rotate_form", RotateForm(formdata=None, grace="1h"))
    usage = service.queries.daily_usage(key, 30)
    org_name = None
    if key.organization_id is not None:
        for org in service.context.organizations_of(key.owner):
            if org.id == key.organization_id:
                org_name = org.name
    all_events = request.args.get("activity") == "all"
    events = service.queries.events(key, limit=100 if all_events else EVENTS_SHOWN + 1)
    all_requests = request.args.get("requests") == "all"
    recent = service.requests.recent_requests(key, 50 if all_requests else REQUESTS_SHOWN + 1)
    audit_link = None
    if access.is_admin and key.organization_id is not None:
        audit_link = url_for(".audit", org=key.organization_id, key=key.display_prefix)
    return (
        render_template(
            "apikeys/detail.html",
            key=key,
            access=access,
            owner_label=user_label(key.owner),
            org_name=org_name,
            events=events if all_events else events[:EVENTS_SHOWN],
            more_events=not all_events and len(events) > EVENTS_SHOWN,
            audit_link=audit_link,
            links=service.listing.rotation_links([key]),
            recent_requests=recent if all_requests else recent[:REQUESTS_SHOWN],
            more_requests=not all_requests and len(recent) > REQUESTS_SHOWN,
            usage=usage,
            usage_total=sum(count for _, count in usage),
            chart=_chart(usage),
            status=status_of(key),
            **forms,
        ),
        status,
    )


def _chart(usage: list[tuple[dt.date, int]]) -> dict[str, Any]:
    """Geometry of the daily-calls bar chart, drawn as inline SVG by the template."""
    width, height, gap = 600, 120, 2
    peak = max((count for _, count in usage), default=0)
    bar = (width - gap * (len(usage) - 1)) / max(len(usage), 1)
    bars = []
    for n, (day, count) in enumerate(usage):
        h = 0.0 if peak == 0 else max(2.0, (height - 4) * count / peak) if count else 0.0
        bars.append(
            {
                "x": round(n * (bar + gap), 2),
                "y": round(height - h, 2),
                "w": round(bar, 2),
                "h": round(h, 2),
                "day": day,
                "count": count,
            }
        )
    return {"width": width, "height": height, "bars": bars, "peak": peak}


def detail(key_id: int) -> ResponseReturnValue:
    return render_detail(key_or_404(key_id))


def rename(key_id: int) -> ResponseReturnValue:
    access = key_or_404(key_id)
    if not access.is_owner:
        abort(403)
    form = RenameForm()
    if form.validate_on_submit():
        try:
            page_service().keys.rename(
                access.key, form.name.data or "", actor=signed_in_user(), ip=client_ip()
            )
        except RequestRefused as exc:
            exc.field = exc.field or "name"
            form_error(form, exc)
        else:
            flash("The key was renamed.", "success")
            return redirect(url_for(".detail", key_id=key_id))
    csrf_or_400(form)
    return render_detail(access, 400, rename_form=form)


def rotate(key_id: int) -> ResponseReturnValue:
    access = key_or_404(key_id)
    if not access.is_owner:
        abort(403)
    form = RotateForm()
    if form.validate_on_submit():
        old = access.key
        try:
            grace = parse_duration(form.grace.data)
            issued = page_service().keys.rotate(
                old, actor=signed_in_user(), grace=grace, ip=client_ip()
            )
        except RequestRefused as exc:
            exc.field = exc.field or "grace"
            form_error(form, exc)
        else:
            return show_once(issued, rotated=old)
    csrf_or_400(form)
    return render_detail(access, 400, rotate_form=form)


def _revoke_return(access: KeyAccess) -> tuple[str, str, str | None]:
    """Where the revoke page goes back to, what it calls that place, and the ``back``
    argument that says so: the list it was opened from (``?back=list`` or
    ``?back=org``), else the key itself (its owner) or the organization (an admin)."""
    key, where = access.key, request.args.get("back")
    if where == "list" and access.is_owner:
        return url_for(".index"), "your keys", where
    if where == "org" and access.is_admin:
        return url_for(".organization", org=key.organization_id), "organization keys", where
    if access.is_owner:
        return url_for(".detail", key_id=key.id), f"“{key.name}”", None
    return url_for(".organization", org=key.organization_id), "organization keys", None


def revoke(key_id: int) -> ResponseReturnValue:
    access = key_or_404(key_id)
    key = access.key
    form = RevokeForm()
    status = 200
    back, back_label, back_arg = _revoke_return(access)
    if form.validate_on_submit():
        try:
            done = page_service().keys.revoke(
                key, actor=signed_in_user(), reason=form.reason.data, ip=client_ip()
            )
        except RequestRefused as exc:
            form_error(form, exc)
            status = 400
        else:
            if done:
                flash(f"“{key.name}” ({key.display_prefix}) was revoked.", "success")
            return redirect(back)
    elif form.is_submitted():
        csrf_or_400(form)
        status = 400
    return (
        render_template(
            "apikeys/revoke.html",
            key=key,
            form=form,
            back=back,
            back_label=back_label,
            back_arg=back_arg,
            status=status_of(key),
            owner_label=user_label(key.owner),
            access=access,
        ),
        status,
    )


def save_restriction(
    access: KeyAccess, form: Any, form_name: str, field_name: str, save: Any, saved: str
) -> ResponseReturnValue:
    """The IP-allowlist and rate-limit forms: save, or show the refusal on the field."""
    if form.validate_on_submit():
        try:
            save()
        except RequestRefused as exc:
            exc.field = field_name
            form_error(form, exc)
        else:
            flash(saved, "success")
            return redirect(url_for(".detail", key_id=access.key.id) + "#settings")
    csrf_or_400(form)
    return render_detail(access, 400, **{form_name: form})


def ip_allowlist(key_id: int) -> ResponseReturnValue:
    access = key_or_404(key_id)
    form = IPAllowlistForm()
    return save_restriction(
        access,
        form,
        "ip_form",
        "ip_allowlist",
        lambda: page_service().restrictions.set_ip_allowlist(
            access.key, form.ip_allowlist.data or "", actor=signed_in_user(), ip=client_ip()
        ),
        "The IP allowlist was saved.",
    )


def rate_limit(key_id: int) -> ResponseReturnValue:
    access = key_or_404(key_id)
    if not access.is_admin:
        abort(403)
    form = RateLimitForm()
    return save_restriction(
        access,
        form,
        "rate_form",
        "rate_limit",
        lambda: page_service().restrictions.set_rate_limit(
            access.key, form.rate_limit.data or None, actor=signed_in_user(), ip=client_ip()
        ),
        "The rate limit was saved.",
    )


def resources(key_id: int) -> ResponseReturnValue:
    """The key page's form: change what the key can reach (its owner only)."""
    access = key_or_404(key_id)
    if not access.is_owner:
        abort(403)
    form = ResourcesForm()
    if not form.validate_on_submit():
        csrf_or_400(form)
        abort(400)
    service, key = page_service(), access.key
    try:
        changed = service.resources.set_resources(
            key,
            submitted_resources(service, key.organization_id),
            actor=signed_in_user(),
            ip=client_ip(),
        )
    except RequestRefused as exc:
        service.session.rollback()
        return render_detail(access, 400, resources_error=exc.message)
    if changed:
        flash("The key's resources were saved.", "success")
    return redirect(url_for(".detail", key_id=key_id) + "#resources")
