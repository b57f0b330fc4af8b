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

from ...db.models import utcnow
from ...service.facade import KeyService
from ...service.lifecycle import IssuedKey
from ...service.validation import RequestRefused, parse_expiry
from ..expiry_schedule import expiring_soon
from ..forms import CreateKeyForm, choice, choices
from .common import (
    absolute_url,
    client_ip,
    csrf_or_400,
    form_error,
    page_service,
    signed_in_user,
)
from .create_options import CreateOptions, default_expiry_label, expiry_text
from .lists import read_key_list
from .resources import submitted_resources
from .snippets import build_snippets, env_var_name, snippet_tabs

# -- my keys ----------------------------------------------------------------------------


def index() -> ResponseReturnValue:
    """The signed-in user's keys: a keyset page of one status (active by default),
    searched by name or prefix and sorted by a column; counts by status in one query."""
    service, user = page_service(), signed_in_user()
    listed = read_key_list(".index")
    filters: dict[str, Any] = {"owner": user, "search": listed.search or None}
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
    orgs = service.context.organizations_of(user)
    refusals = [service.context.creation_refusal(user, o.id) for o in orgs] or [
        service.context.creation_refusal(user, None)
    ]
    can_create = any(r is None for r in refusals)
    return render_template(
        "apikeys/index.html",
        list=listed,
        page=page,
        keys=page.keys,
        counts=listed.counts,
        links=service.listing.rotation_links(page.keys),
        expiring=expiring_soon(page.keys),  # {key id: days left}, for the "Expires soon" badge
        org_names={o.id: o.name for o in orgs},
        show_org=len(orgs) > 1,
        can_create=can_create,
        create_refusal=None if can_create else refusals[0],
    )


# -- create -----------------------------------------------------------------------------


_SUBMITTED = "apikeys_submitted_forms"
_SUBMITTED_KEEP = 20


def _already_submitted(token: str | None) -> bool:
    return bool(token) and token in session.get(_SUBMITTED, [])


def _mark_submitted(token: str | None) -> None:
    if token:
        session[_SUBMITTED] = [*session.get(_SUBMITTED, []), token][-_SUBMITTED_KEEP:]


def new() -> ResponseReturnValue:
    """The create form, with every option a rule refuses shown locked, and why; when no
    key may be created at all, the form read-only under one banner."""
    service, user = page_service(), signed_in_user()
    orgs = service.context.organizations_of(user)
    form = CreateKeyForm()
    if not form.is_submitted():
        form.submission.data = secrets.token_urlsafe(16)
    elif _already_submitted(form.submission.data) and form.validate():
        # The browser sent the same form again (e.g. a refresh of the show-once page).
        flash("That key was already created; its secret is shown only once.", "info")
        return redirect(url_for(".index"))
    wanted = form.organization.data if form.is_submitted() else request.args.get("org")
    options = CreateOptions.build(service, user, orgs, wanted)
    org_id = options.organization.id if options.organization is not None else None
    if form.is_submitted() and len(orgs) > 1:  # as sent: the service refuses a stranger's
        org_id = service.context.models.coerce_organization_id_or_none(form.organization.data)
    form.organization.choices = [
        choice(str(o.id), o.name, disabled=str(o.id) in options.refused_orgs) for o in orgs
    ]
    form.expires.choices = choices([(o["value"], o["label"]) for o in options.expiry])
    form.expires.validate_choice = False  # a forged choice: the service says what is allowed
    if not form.is_submitted():
        form.organization.data = str(org_id) if org_id is not None else None
        form.expires.data = options.default_expiry
        form.access.data = options.default_access
    status = 200
    if form.is_submitted() and options.refusal is not None:
        csrf_or_400(form)  # nothing to create here: the page says why, once
        status = 403
    elif form.validate_on_submit():
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
    max_date = None
    if options.max_days is not None:
        max_date = (utcnow() + dt.timedelta(days=options.max_days)).date().isoformat()
    return (
        render_template(
            "apikeys/new.html",
            form=form,
            orgs=orgs,
            options=options,
            groups=options.groups,
            refusal=options.refusal,
            min_date=(utcnow().date() + dt.timedelta(days=1)).isoformat(),
            max_date=max_date,
            max_days=options.max_days,
            selected_scopes=set(form.scopes.data or []),
            default_expiry=default_expiry_label(options.max_days),
            expiry_text=lambda value: expiry_text(value, form.expires_on.data),
        ),
        status,
    )


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


def _snippets(service: KeyService) -> list[dict[str, str]]:
    config = current_app.config
    return build_snippets(
        env_var=env_var_name(config, service.context.prefix),
        api_url=absolute_url(config.get("APIKEYS_API_BASE_URL")) or request.host_url,
        mcp_url=absolute_url(config.get("APIKEYS_MCP_URL")),
        sse_url=absolute_url(config.get("APIKEYS_MCP_SSE_URL")),
        server_name=config.get("APIKEYS_MCP_SERVER_NAME") or service.context.prefix,
        bearer=bool(config.get("APIKEYS_BEARER", True)),
        header=config.get("APIKEYS_HEADER"),
    )


def _max_days(service: KeyService, key: Any) -> int | None:
    limit = service.policies.lifetime_limit(key.organization_id)
    return limit.days if limit is not None else None


def show_once(issued: IssuedKey, rotated: Any = None) -> Response:
    """The only page that ever shows a secret, once: rendered in the POST's response,
    never stored. The snippets read it from an environment variable."""
    service = page_service()
    snippets = _snippets(service)
    response = make_response(
        render_template(
            "apikeys/show_once.html",
            key=issued.key,
            secret=issued.secret,
            rotated=rotated,
            env_var=env_var_name(current_app.config, service.context.prefix),
            setup=[s for s in snippets if s["id"] == "env"],
            tabs=snippet_tabs([s for s in snippets if s["id"] != "env"]),
            default_expiry=default_expiry_label(_max_days(service, issued.key)),
        )
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
