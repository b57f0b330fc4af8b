"""My keys, creating a key and the show-once page."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from flask import (
    Response,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from ...db.models import KeyStatus, utcnow
from ...service.context import Organization
from ...service.facade import KeyService
from ...service.lifecycle import IssuedKey
from ...service.validation import RequestRefused, parse_expiry
from ..expiry_schedule import expiring_soon
from ..forms import (
    EXPIRY_CHOICES,
    CreateKeyForm,
    choices,
)
from ..state import app_keys
from .common import (
    absolute_url,
    client_ip,
    csrf_or_400,
    form_error,
    page_service,
    signed_in_user,
    when_long,
)
from .resources import submitted_resources
from .snippets import build_snippets, env_var_name

# -- my keys ----------------------------------------------------------------------------


def index() -> ResponseReturnValue:
    service, user = page_service(), signed_in_user()
    every_key = service.queries.list_keys(owner=user)
    # Revoked keys stay listable but are hidden unless asked for ("Show revoked (3)").
    revoked = {k.id for k in every_key if k.status == KeyStatus.REVOKED}
    show_revoked = request.args.get("revoked") == "1"
    keys = every_key if show_revoked else [k for k in every_key if k.id not in revoked]
    orgs = service.context.organizations_of(user)
    refusals = [service.context.creation_refusal(user, o.id) for o in orgs] or [
        service.context.creation_refusal(user, None)
    ]
    can_create = any(r is None for r in refusals)
    return render_template(
        "apikeys/index.html",
        keys=keys,
        revoked_count=len(revoked),
        show_revoked=show_revoked,
        links=service.listing.rotation_links(keys),
        expiring=expiring_soon(keys),  # {key id: days left}, for the "Expires soon" badge
        org_names={o.id: o.name for o in orgs},
        show_org=len(orgs) > 1,
        can_create=can_create,
        create_refusal=None if can_create else refusals[0],
    )


# -- create -----------------------------------------------------------------------------


def _expiry_choices(service: KeyService, org_id: Any = None) -> list[Any]:
    limit = service.policies.lifetime_limit(org_id)  # the site's and the organization's maximum
    allowed: list[tuple[str, str]] = []
    for value, label, days in EXPIRY_CHOICES:
        if limit is not None and (value == "never" or (days is not None and days > limit.days)):
            continue
        allowed.append((value, label))
    return choices(allowed)


def _scope_grid(
    service: KeyService, user: Any, orgs: list[Organization], org_id: Any
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Permissions grouped by resource, each with whether *user* may grant it."""
    vocabulary = app_keys().permission_vocabulary()
    grantable = service.context.grantable_permissions(user, org_id)
    by_org = {str(o.id): service.context.grantable_permissions(user, o.id) for o in orgs}
    groups: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(vocabulary):
        resource, _, action = name.partition(".")
        groups.setdefault(resource, []).append(
            {
                "name": name,
                "action": action or name,
                "description": vocabulary[name],
                "allowed": name in grantable,
                "orgs": " ".join(o for o, held in by_org.items() if name in held),
                "read": name.endswith(".read"),
            }
        )
    return [(resource.replace("_", " ").capitalize(), items) for resource, items in groups.items()]


_SUBMITTED = "apikeys_submitted_forms"
_SUBMITTED_KEEP = 20


def _already_submitted(token: str | None) -> bool:
    return bool(token) and token in session.get(_SUBMITTED, [])


def _mark_submitted(token: str | None) -> None:
    if token:
        session[_SUBMITTED] = [*session.get(_SUBMITTED, []), token][-_SUBMITTED_KEEP:]


def new() -> ResponseReturnValue:
    service, user = page_service(), signed_in_user()
    orgs = service.context.organizations_of(user)
    form = CreateKeyForm()
    if not form.is_submitted():
        form.submission.data = secrets.token_urlsafe(16)
    elif _already_submitted(form.submission.data) and form.validate():
        # The browser sent the same form again (e.g. a refresh of the show-once page).
        flash("That key was already created; its secret is shown only once.", "info")
        return redirect(url_for(".index"))
    form.organization.choices = choices([(str(o.id), o.name) for o in orgs])
    creatable = [o for o in orgs if service.context.creation_refusal(user, o.id) is None]
    if not form.is_submitted() and creatable:
        form.organization.data = str(creatable[0].id)
    org_id: Any = None
    if len(orgs) > 1:
        org_id = service.context.models.coerce_organization_id_or_none(form.organization.data)
    elif orgs:
        org_id = orgs[0].id
    form.expires.choices = _expiry_choices(service, org_id)
    form.expires.validate_choice = False  # a forged choice: the service says what is allowed
    values = [choice.value for choice in form.expires.choices]
    if form.expires.default not in values:
        form.expires.default = values[0]
        if not form.is_submitted():
            form.expires.data = form.expires.default
    status = 200
    if form.validate_on_submit():
        try:
            issued = _issue(service, user, form, org_id)
        except RequestRefused as exc:
            form_error(form, exc)
            status = 400
        else:
            _mark_submitted(form.submission.data)
            return show_once(issued)
    elif form.is_submitted():
        csrf_or_400(form)
        status = 400
    max_date, limit = None, service.policies.lifetime_limit(org_id)
    if limit is not None:
        max_date = (utcnow() + limit).date().isoformat()
    return (
        render_template(
            "apikeys/new.html",
            form=form,
            orgs=orgs,
            groups=_scope_grid(service, user, orgs, org_id),
            refusal=service.context.creation_refusal(user, org_id),
            min_date=(utcnow().date() + dt.timedelta(days=1)).isoformat(),
            max_date=max_date,
            max_days=limit.days if limit else None,
            selected_scopes=set(form.scopes.data or []),
            expiry_dates=_expiry_dates(),
            expiry_text=lambda value: _expiry_text(value, form.expires_on.data),
        ),
        status,
    )


def _expiry_dates(now: dt.datetime | None = None) -> dict[str, dt.datetime]:
    """When a key created now would expire, for each fixed choice (30 days, ...)."""
    now = now or utcnow()
    return {value: now + dt.timedelta(days=days) for value, _, days in EXPIRY_CHOICES if days}


def _expiry_text(value: str | None, custom_day: dt.date | None) -> str:
    """The sentence under the expiry choices (apikeys.js keeps it up to date)."""
    if value == "never":
        return "Never expires."
    if value == "custom":
        if custom_day is None:
            return "Pick the last day the key works."
        return f"Expires at the end of {when_long(custom_day)} (UTC)."
    until = _expiry_dates().get(value or "")
    return f"Expires on {when_long(until)}." if until else ""


def _issue(service: KeyService, user: Any, form: CreateKeyForm, org_id: Any) -> IssuedKey:
    if form.expires.data == "custom":
        if form.expires_on.data is None:
            raise RequestRefused("Pick the date the key expires.", field="expires_on")
        expires_at = parse_expiry(form.expires_on.data.isoformat())
    else:
        expires_at = parse_expiry(form.expires.data)
    scopes: list[str] = list(form.scopes.data or [])
    if form.access.data == "read":
        held = service.context.grantable_permissions(user, org_id)
        scopes = sorted(p for p in held if p.endswith(".read"))
        if not scopes:
            raise RequestRefused("You hold no read permission to give a key.", field="access")
    elif form.access.data == "full":
        scopes = []
    return service.keys.issue(
        user,
        form.name.data or "",
        scopes,
        full_access=form.access.data == "full",
        organization_id=org_id,
        expires_at=expires_at,
        actor=user,
        ip=client_ip(),
        resources=submitted_resources(service, org_id),  # _resources_field.html
    )


def _snippets(secret: str, service: KeyService) -> list[dict[str, str]]:
    config = current_app.config
    return build_snippets(
        secret,
        env_var=env_var_name(config, service.context.prefix),
        api_url=absolute_url(config.get("APIKEYS_API_BASE_URL")) or request.host_url,
        mcp_url=absolute_url(config.get("APIKEYS_MCP_URL")),
        server_name=config.get("APIKEYS_MCP_SERVER_NAME") or service.context.prefix,
        bearer=bool(config.get("APIKEYS_BEARER", True)),
        header=config.get("APIKEYS_HEADER"),
    )


def show_once(issued: IssuedKey, rotated: Any = None) -> Response:
    """The only page that ever shows a secret: rendered in the POST's response, not stored."""
    service = page_service()
    response = make_response(
        render_template(
            "apikeys/show_once.html",
            key=issued.key,
            secret=issued.secret,
            rotated=rotated,
            snippets=_snippets(issued.secret, service),
        )
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
