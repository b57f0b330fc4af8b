"""My keys, creating a key and the show-once page."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING, Any, cast

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

from ..forms import (
    EXPIRY_CHOICES,
    CreateKeyForm,
    choices,
)
from ..lifecycle import IssuedKey
from ..models import utcnow
from ..permissions import Organization
from ..service import KeyService
from ..snippets import build_snippets, env_var_name
from ..validation import RequestRefused, parse_expiry
from .common import (
    _absolute,
    _csrf_or_400,
    _form_error,
    _ip,
    _service,
    _user,
)

if TYPE_CHECKING:
    from ..extension import APIKeys

# -- my keys ----------------------------------------------------------------------------


def index() -> ResponseReturnValue:
    service, user = _service(), _user()
    keys = service.list_keys(owner=user)
    orgs = service.organizations_of(user)
    refusals = [service.creation_refusal(user, o.id) for o in orgs] or [
        service.creation_refusal(user, None)
    ]
    can_create = any(r is None for r in refusals)
    return render_template(
        "apikeys/index.html",
        keys=keys,
        org_names={o.id: o.name for o in orgs},
        show_org=len(orgs) > 1,
        can_create=can_create,
        create_refusal=None if can_create else refusals[0],
    )


# -- create -----------------------------------------------------------------------------


def _expiry_choices(service: KeyService) -> list[Any]:
    limit = service.max_lifetime
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
    vocabulary = cast("APIKeys", current_app.extensions["apikeys"]).permission_vocabulary()
    grantable = service.grantable_permissions(user, org_id)
    by_org = {str(o.id): service.grantable_permissions(user, o.id) for o in orgs}
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
    service, user = _service(), _user()
    orgs = service.organizations_of(user)
    form = CreateKeyForm()
    if not form.is_submitted():
        form.submission.data = secrets.token_urlsafe(16)
    elif _already_submitted(form.submission.data) and form.validate():
        # The browser sent the same form again (e.g. a refresh of the show-once page).
        flash("That key was already created; its secret is shown only once.", "info")
        return redirect(url_for(".index"))
    form.expires.choices = _expiry_choices(service)
    values = [choice.value for choice in form.expires.choices]
    if form.expires.default not in values:
        form.expires.default = values[0]
        if not form.is_submitted():
            form.expires.data = form.expires.default
    form.organization.choices = choices([(str(o.id), o.name) for o in orgs])
    creatable = [o for o in orgs if service.creation_refusal(user, o.id) is None]
    if not form.is_submitted() and creatable:
        form.organization.data = str(creatable[0].id)
    org_id: Any = None
    if len(orgs) > 1:
        org_id = service.models.coerce_organization_id_or_none(form.organization.data)
    elif orgs:
        org_id = orgs[0].id
    status = 200
    if form.validate_on_submit():
        try:
            issued = _issue(service, user, form, org_id)
        except RequestRefused as exc:
            _form_error(form, exc)
            status = 400
        else:
            _mark_submitted(form.submission.data)
            return _show_once(issued)
    elif form.is_submitted():
        _csrf_or_400(form)
        status = 400
    max_date = None
    if service.max_lifetime is not None:
        max_date = (utcnow() + service.max_lifetime).date().isoformat()
    return (
        render_template(
            "apikeys/new.html",
            form=form,
            orgs=orgs,
            groups=_scope_grid(service, user, orgs, org_id),
            refusal=service.creation_refusal(user, org_id),
            min_date=(utcnow().date() + dt.timedelta(days=1)).isoformat(),
            max_date=max_date,
            max_days=service.max_lifetime.days if service.max_lifetime else None,
            selected_scopes=set(form.scopes.data or []),
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
        held = service.grantable_permissions(user, org_id)
        scopes = sorted(p for p in held if p.endswith(".read"))
        if not scopes:
            raise RequestRefused("You hold no read permission to give a key.", field="access")
    elif form.access.data == "full":
        scopes = []
    return service.issue(
        user,
        form.name.data or "",
        scopes,
        full_access=form.access.data == "full",
        organization_id=org_id,
        expires_at=expires_at,
        actor=user,
        ip=_ip(),
    )


def _snippets(secret: str, service: KeyService) -> list[dict[str, str]]:
    config = current_app.config
    return build_snippets(
        secret,
        env_var=env_var_name(config, service.prefix),
        api_url=_absolute(config.get("APIKEYS_API_BASE_URL")) or request.host_url,
        mcp_url=_absolute(config.get("APIKEYS_MCP_URL")),
        server_name=config.get("APIKEYS_MCP_SERVER_NAME") or service.prefix,
        bearer=bool(config.get("APIKEYS_BEARER", True)),
        header=config.get("APIKEYS_HEADER"),
    )


def _show_once(issued: IssuedKey, rotated: Any = None) -> Response:
    """The only page that ever shows a secret: rendered in the POST's response, not stored."""
    service = _service()
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
