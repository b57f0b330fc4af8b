"""The key-management pages: a blueprint the host mounts where it likes.

::

    from flask_apikeys.views import create_blueprint

    app.register_blueprint(create_blueprint(), url_prefix="/settings/api-keys")

Layer 5 of the architecture: the views only read forms, call
:class:`~flask_apikeys.service.KeyService` and render templates. Only a signed-in
Flask-Login session reaches them; a request carrying an API key is refused even
when a request loader would accept it. Other people's keys answer 404.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from flask import (
    Blueprint,
    Response,
    abort,
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
from flask_login import current_user

from .auth import is_key_request
from .forms import (
    EXPIRY_CHOICES,
    ConfirmForm,
    CreateKeyForm,
    IPAllowlistForm,
    RateLimitForm,
    RenameForm,
    RevokeForm,
    RotateForm,
    choices,
)
from .lifecycle import IssuedKey
from .models import KeyStatus, utcnow
from .permissions import Organization
from .service import KeyService
from .snippets import build_snippets, env_var_name
from .validation import RequestRefused, parse_duration, parse_expiry

if TYPE_CHECKING:
    from .extension import APIKeys

__all__ = ["blueprint", "create_blueprint"]

STATUS_FILTERS = ("", KeyStatus.ACTIVE, KeyStatus.EXPIRED, KeyStatus.REVOKED)
SORTS = {"created": "Newest", "usage": "Most used", "last_used": "Recently used"}


def create_blueprint(name: str = "apikeys") -> Blueprint:
    """Make the pages' blueprint; register it with ``url_prefix=`` of your choice.

    Templates live under ``apikeys/`` and extend ``APIKEYS_BASE_TEMPLATE``; a
    same-named file in the host's own ``templates/apikeys/`` wins over ours.
    """
    bp = Blueprint(
        name,
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    bp.before_request(_session_only)
    bp.after_request(_private_headers)
    bp.after_request(_security_headers)
    bp.context_processor(_template_helpers)
    bp.add_url_rule("/", "index", index)
    bp.add_url_rule("/new", "new", new, methods=["GET", "POST"])
    bp.add_url_rule("/<int:key_id>", "detail", detail)
    bp.add_url_rule("/<int:key_id>/rename", "rename", rename, methods=["POST"])
    bp.add_url_rule("/<int:key_id>/rotate", "rotate", rotate, methods=["POST"])
    bp.add_url_rule("/<int:key_id>/revoke", "revoke", revoke, methods=["GET", "POST"])
    bp.add_url_rule("/<int:key_id>/ip-allowlist", "ip_allowlist", ip_allowlist, methods=["POST"])
    bp.add_url_rule("/<int:key_id>/rate-limit", "rate_limit", rate_limit, methods=["POST"])
    bp.add_url_rule("/organization", "organization", organization)
    bp.add_url_rule(
        "/organization/<org_id>/users/<user_id>/revoke-all",
        "offboard",
        offboard,
        methods=["GET", "POST"],
    )
    return bp


# -- plumbing ---------------------------------------------------------------------------


def _service() -> KeyService:
    return cast("APIKeys", current_app.extensions["apikeys"]).service


def _user() -> Any:
    return current_user._get_current_object()


def _ip() -> str | None:
    return request.remote_addr


def _session_only() -> ResponseReturnValue | None:
    """Only a Flask-Login session gets in; a request carrying an API key never does."""
    if request.endpoint == f"{request.blueprint}.static":
        return None
    if is_key_request():
        abort(403, "These pages need a signed-in session; API keys cannot open them.")
    if not current_user.is_authenticated:
        return cast(ResponseReturnValue, current_app.login_manager.unauthorized())  # type: ignore[attr-defined]
    return None


def _private_headers(response: Response) -> Response:
    if request.endpoint != f"{request.blueprint}.static":
        response.headers.setdefault("Cache-Control", "private, no-cache")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _security_headers(response: Response) -> Response:
    """No inline script or style, nothing from elsewhere: see APIKEYS_CONTENT_SECURITY_POLICY."""
    policy = current_app.config.get("APIKEYS_CONTENT_SECURITY_POLICY")
    if policy:
        response.headers.setdefault("Content-Security-Policy", policy)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def _form_error(form: Any, exc: RequestRefused) -> None:
    """Show a service refusal on the field it names, or at the top of the form."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*list(field.errors), exc.message]
    else:
        form.form_errors.append(exc.message)


def _csrf_or_400(form: Any) -> None:
    """A POST without a valid CSRF token is refused outright, not re-rendered."""
    if "csrf_token" in form.errors:
        abort(400, "The form has expired or was not sent from this site. Reload and try again.")


def _user_label(user: Any) -> str:
    if user is None:
        return "System"
    name = getattr(user, "name", None)
    email = getattr(user, "email", None)
    if name and email:
        return f"{name} ({email})"
    return str(name or email or getattr(user, "id", "?"))


def _absolute(value: str | None) -> str | None:
    if not value:
        return None
    if value.startswith("/"):
        return request.host_url.rstrip("/") + value
    return value


@dataclass(frozen=True)
class Status:
    code: str
    label: str
    note: str


def _status(key: Any) -> Status:
    """How a key's status is shown: the model decides, the page words it."""
    if key.in_grace_period:
        return Status("rotating", "Rotating", f"Works until {_when(key.revoked_at)}")
    code = key.status
    if code == KeyStatus.REVOKED:
        return Status(code, "Revoked", f"Revoked {_when(key.revoked_at)}")
    if code == KeyStatus.EXPIRED:
        return Status(code, "Expired", f"Expired {_when(key.expires_at)}")
    return Status(code, "Active", "")


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "—"
    return f"{moment:%b} {moment.day}, {moment:%Y}"


def _when_exact(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _ago(moment: dt.datetime | None) -> str:
    if moment is None:
        return "Never"
    seconds = (utcnow() - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            amount = int(seconds // size)
            if unit == "day" and amount > 60:
                return _when(moment)
            text = f"{amount} {unit}{'s' if amount != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "in a moment" if future else "just now"


def _scope_labels(key: Any) -> list[str]:
    if key.full_access:
        return ["Full access"]
    return list(key.scopes or [])


def _template_helpers() -> dict[str, Any]:
    managed: list[Organization] = []
    if current_user and current_user.is_authenticated and not is_key_request():
        managed = _service().managed_organizations(_user())
    return {
        "apikeys_status": _status,
        "apikeys_when": _when,
        "apikeys_when_exact": _when_exact,
        "apikeys_ago": _ago,
        "apikeys_user_label": _user_label,
        "apikeys_scope_labels": _scope_labels,
        "apikeys_managed_orgs": managed,
    }


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


# -- one key ----------------------------------------------------------------------------


@dataclass
class KeyAccess:
    key: Any
    is_owner: bool
    is_admin: bool


def _key_or_404(key_id: int) -> KeyAccess:
    """The user's own key, or a key of an organization they manage; else 404."""
    service, user = _service(), _user()
    key = service.get_owned_key(user, key_id)
    is_owner = key is not None
    if key is None:
        key = service.get_managed_key(user, key_id)
    if key is None:
        abort(404)
    return KeyAccess(key, is_owner, service.can_manage_organization(user, key.organization_id))


def _render_detail(access: KeyAccess, status: int = 200, **forms: Any) -> ResponseReturnValue:
    service = _service()
    key = access.key
    forms.setdefault("rename_form", RenameForm(formdata=None, name=key.name))
    forms.setdefault("rotate_form", RotateForm(formdata=None, grace="1h"))
    forms.setdefault(
        "ip_form",
        IPAllowlistForm(formdata=None, ip_allowlist="\n".join(key.ip_allowlist or [])),
    )
    forms.setdefault("rate_form", RateLimitForm(formdata=None, rate_limit=key.rate_limit or ""))
    usage = service.daily_usage(key, 30)
    org_name = None
    if key.organization_id is not None:
        for org in service.organizations_of(key.owner):
            if org.id == key.organization_id:
                org_name = org.name
    return (
        render_template(
            "apikeys/detail.html",
            key=key,
            access=access,
            owner_label=_user_label(key.owner),
            org_name=org_name,
            events=service.events(key),
            usage=usage,
            usage_total=sum(count for _, count in usage),
            chart=_chart(usage),
            status=_status(key),
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
    return _render_detail(_key_or_404(key_id))


def rename(key_id: int) -> ResponseReturnValue:
    access = _key_or_404(key_id)
    if not access.is_owner:
        abort(403)
    form = RenameForm()
    if form.validate_on_submit():
        try:
            _service().rename(access.key, form.name.data or "", actor=_user(), ip=_ip())
        except RequestRefused as exc:
            exc.field = exc.field or "name"
            _form_error(form, exc)
        else:
            flash("The key was renamed.", "success")
            return redirect(url_for(".detail", key_id=key_id))
    _csrf_or_400(form)
    return _render_detail(access, 400, rename_form=form)


def rotate(key_id: int) -> ResponseReturnValue:
    access = _key_or_404(key_id)
    if not access.is_owner:
        abort(403)
    form = RotateForm()
    if form.validate_on_submit():
        old = access.key
        try:
            grace = parse_duration(form.grace.data)
            issued = _service().rotate(old, actor=_user(), grace=grace, ip=_ip())
        except RequestRefused as exc:
            exc.field = exc.field or "grace"
            _form_error(form, exc)
        else:
            return _show_once(issued, rotated=old)
    _csrf_or_400(form)
    return _render_detail(access, 400, rotate_form=form)


def revoke(key_id: int) -> ResponseReturnValue:
    access = _key_or_404(key_id)
    key = access.key
    form = RevokeForm()
    status = 200
    if form.validate_on_submit():
        try:
            done = _service().revoke(key, actor=_user(), reason=form.reason.data, ip=_ip())
        except RequestRefused as exc:
            _form_error(form, exc)
            status = 400
        else:
            if done:
                flash(f"“{key.name}” ({key.display_prefix}) was revoked.", "success")
            if access.is_owner:
                return redirect(url_for(".detail", key_id=key_id))
            return redirect(url_for(".organization", org=key.organization_id))
    elif form.is_submitted():
        _csrf_or_400(form)
        status = 400
    back = (
        url_for(".detail", key_id=key_id)
        if access.is_owner
        else url_for(".organization", org=key.organization_id)
    )
    return (
        render_template(
            "apikeys/revoke.html",
            key=key,
            form=form,
            back=back,
            status=_status(key),
            owner_label=_user_label(key.owner),
            access=access,
        ),
        status,
    )


def _save_restriction(
    access: KeyAccess, form: Any, form_name: str, field_name: str, save: Any, saved: str
) -> ResponseReturnValue:
    """The IP-allowlist and rate-limit forms: save, or show the refusal on the field."""
    if form.validate_on_submit():
        try:
            save()
        except RequestRefused as exc:
            exc.field = field_name
            _form_error(form, exc)
        else:
            flash(saved, "success")
            return redirect(url_for(".detail", key_id=access.key.id) + "#restrictions")
    _csrf_or_400(form)
    return _render_detail(access, 400, **{form_name: form})


def ip_allowlist(key_id: int) -> ResponseReturnValue:
    access = _key_or_404(key_id)
    form = IPAllowlistForm()
    return _save_restriction(
        access,
        form,
        "ip_form",
        "ip_allowlist",
        lambda: _service().set_ip_allowlist(
            access.key, form.ip_allowlist.data or "", actor=_user(), ip=_ip()
        ),
        "The IP allowlist was saved.",
    )


def rate_limit(key_id: int) -> ResponseReturnValue:
    access = _key_or_404(key_id)
    if not access.is_admin:
        abort(403)
    form = RateLimitForm()
    return _save_restriction(
        access,
        form,
        "rate_form",
        "rate_limit",
        lambda: _service().set_rate_limit(
            access.key, form.rate_limit.data or None, actor=_user(), ip=_ip()
        ),
        "The rate limit was saved.",
    )


# -- organization admin -----------------------------------------------------------------


def _managed_org_or_404(org_id: Any) -> Organization:
    for org in _service().managed_organizations(_user()):
        if str(org.id) == str(org_id):
            return org
    abort(404)


def organization() -> ResponseReturnValue:
    service, user = _service(), _user()
    managed = service.managed_organizations(user)
    if not managed:
        abort(403, "You need to manage an organization to see its keys.")
    org = _managed_org_or_404(request.args["org"]) if request.args.get("org") else managed[0]
    owners = service.key_owners(org.id)
    owner_id = request.args.get("owner", "")
    owner = next((u for u in owners if str(service.user_id(u)) == owner_id), None)
    status = request.args.get("status", "")
    if status not in STATUS_FILTERS:
        status = ""
    search = request.args.get("q", "").strip()[:100]
    sort = request.args.get("sort", "created")
    if sort not in SORTS:
        sort = "created"
    try:
        page = max(1, min(int(request.args.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    per_page = max(1, int(current_app.config.get("APIKEYS_PAGE_SIZE") or 25))
    stmt = service.keys_query(
        sort=sort,
        organization_id=org.id,
        owner=owner,
        status=status or None,
        search=search or None,
    )
    keys, total = service.page_of(stmt, page, per_page)
    pages = max(1, -(-total // per_page))
    usable = service.usable_key_counts(org.id)
    members = [
        {"user": u, "id": service.user_id(u), "usable": usable.get(service.user_id(u), 0)}
        for u in owners
    ]
    filters = {
        "org": org.id if len(managed) > 1 else None,
        "owner": owner_id if owner is not None else None,
        "status": status or None,
        "q": search or None,
        "sort": sort if sort != "created" else None,
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
        sorts=SORTS,
        keys=keys,
        total=total,
        page=min(page, pages),
        pages=pages,
        members=members,
        filters={k: v for k, v in filters.items() if v is not None},
        user_id_of=service.user_id,
    )


def offboard(org_id: str, user_id: str) -> ResponseReturnValue:
    service, user = _service(), _user()
    org = _managed_org_or_404(org_id)
    owner = next(
        (u for u in service.key_owners(org.id) if str(service.user_id(u)) == user_id), None
    )
    if owner is None:
        abort(404)
    form = ConfirmForm()
    status = 200
    if form.validate_on_submit():
        try:
            count = service.revoke_user_keys(
                owner, actor=user, organization_id=org.id, reason=form.reason.data, ip=_ip()
            )
        except RequestRefused as exc:
            _form_error(form, exc)
            status = 400
        else:
            noun = "key" if count == 1 else "keys"
            flash(f"Revoked {count} {noun} of {_user_label(owner)}.", "success")
            return redirect(url_for(".organization", org=org.id))
    elif form.is_submitted():
        _csrf_or_400(form)
        status = 400
    return (
        render_template(
            "apikeys/offboard.html",
            org=org,
            owner=owner,
            owner_label=_user_label(owner),
            keys=service.usable_keys_of(owner, org.id),
            form=form,
        ),
        status,
    )


#: The pages' blueprint, named ``apikeys``; use :func:`create_blueprint` for another name.
blueprint = create_blueprint()
