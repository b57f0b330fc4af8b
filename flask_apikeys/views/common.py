"""Plumbing and presentation shared by the pages: the session-only rule, headers,
the service, and how keys, times and people are shown."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from flask import (
    Response,
    abort,
    current_app,
    request,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from ..auth import is_key_request
from ..models import KeyStatus, utcnow
from ..permissions import Organization
from ..service import KeyService
from ..validation import RequestRefused

if TYPE_CHECKING:
    from ..extension import APIKeys


STATUS_FILTERS = ("", KeyStatus.ACTIVE, KeyStatus.EXPIRED, KeyStatus.REVOKED)
SORTS = {"created": "Newest", "usage": "Most used", "last_used": "Recently used"}


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
