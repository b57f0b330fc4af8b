"""Plumbing and presentation shared by the pages: the session-only rule, headers,
the service, and how keys, times and people are shown."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from flask import (
    Response,
    abort,
    current_app,
    request,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.http import HTTP_STATUS_CODES

from ...db.models import KeyStatus, utcnow
from ...service.context import Organization
from ...service.facade import KeyService
from ...service.policies import idle_expiry_passed
from ...service.validation import RequestRefused
from ..authenticate import is_key_request
from ..state import app_keys


def page_service() -> KeyService:
    return app_keys().service


def signed_in_user() -> Any:
    return current_user._get_current_object()


def client_ip() -> str | None:
    return request.remote_addr


def session_only() -> ResponseReturnValue | None:
    """Only a Flask-Login session gets in; a request carrying an API key never does."""
    if request.endpoint == f"{request.blueprint}.static":
        return None
    if is_key_request():
        abort(403, "These pages need a signed-in session; API keys cannot open them.")
    if not current_user.is_authenticated:
        return cast(ResponseReturnValue, current_app.login_manager.unauthorized())  # type: ignore[attr-defined]
    return None


def private_headers(response: Response) -> Response:
    if request.endpoint != f"{request.blueprint}.static":
        response.headers.setdefault("Cache-Control", "private, no-cache")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def security_headers(response: Response) -> Response:
    """No inline script or style, nothing from elsewhere: see APIKEYS_CONTENT_SECURITY_POLICY."""
    policy = current_app.config.get("APIKEYS_CONTENT_SECURITY_POLICY")
    if policy:
        response.headers.setdefault("Content-Security-Policy", policy)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def form_error(form: Any, exc: RequestRefused) -> None:
    """Show a service refusal on the field it names, or at the top of the form."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*list(field.errors), exc.message]
    else:
        form.form_errors.append(exc.message)


def csrf_or_400(form: Any) -> None:
    """A POST without a valid CSRF token is refused outright, not re-rendered."""
    if "csrf_token" in form.errors:
        abort(400, "The form has expired or was not sent from this site. Reload and try again.")


def user_label(user: Any) -> str:
    if user is None:
        return "System"
    name = getattr(user, "name", None)
    email = getattr(user, "email", None)
    if name and email:
        return f"{name} ({email})"
    return str(name or email or getattr(user, "id", "?"))


def absolute_url(value: str | None) -> str | None:
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


def status_of(key: Any) -> Status:
    """How a key's status is shown: the model decides, the page words it."""
    if key.in_grace_period:
        return Status("rotating", "Rotating", f"Works until {_when_time(key.revoked_at)} UTC")
    code = key.status
    if code == KeyStatus.REVOKED:
        return Status(code, "Revoked", f"Revoked {_when(key.revoked_at)}")
    if code == KeyStatus.EXPIRED:
        return Status(code, "Expired", f"Expired {_when(key.expires_at)}")
    idle_days = idle_expiry_passed(key, utcnow())
    if idle_days is not None:  # refused with 401 expired_api_key, so shown as expired
        return Status(KeyStatus.EXPIRED, "Expired", f"Unused for {idle_days} days")
    return Status(code, "Active", "")


def _utc(moment: dt.datetime) -> dt.datetime:
    """Stored times are UTC; a naive one (some drivers) is read as UTC too."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _when(moment: dt.date | None) -> str:
    """A day, short: ``3 Dec 2026``."""
    if moment is None:
        return "—"
    if isinstance(moment, dt.datetime):
        moment = _utc(moment)
    return f"{moment.day} {moment:%b %Y}"


def when_long(moment: dt.date | None) -> str:
    """A day in a sentence: ``3 December 2026``."""
    if moment is None:
        return "—"
    if isinstance(moment, dt.datetime):
        moment = _utc(moment)
    return f"{moment.day} {moment:%B %Y}"


def _when_time(moment: dt.datetime | None) -> str:
    """A day and a time, readable: ``3 Dec 2026, 14:05`` (UTC)."""
    if moment is None:
        return "—"
    moment = _utc(moment)
    return f"{moment.day} {moment:%b %Y, %H:%M}"


def when_exact(moment: dt.date | None) -> str:
    """To the second, for a tooltip: ``2026-12-03 14:05:09 UTC``."""
    if moment is None:
        return ""
    if not isinstance(moment, dt.datetime):
        return moment.isoformat()
    return f"{_utc(moment):%Y-%m-%d %H:%M:%S} UTC"


def _iso(moment: dt.date | None) -> str:
    """The machine-readable value of a ``<time datetime>``."""
    if moment is None:
        return ""
    if not isinstance(moment, dt.datetime):
        return moment.isoformat()
    return _utc(moment).isoformat(timespec="seconds")


def _as_time(value: Any) -> dt.datetime | None:
    """*value* if it is an ISO 8601 date and time (as audit details store them), parsed."""
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or len(value) < 16 or value[10:11] != "T":
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def _every(seconds: float) -> str:
    """The end of "every …" or "once per …": ``10 seconds``, ``minute``, ``5 minutes``."""
    for unit, size in (("hour", 3600.0), ("minute", 60.0), ("second", 1.0)):
        if unit == "second" or (seconds >= size and seconds % size == 0):
            amount = seconds / size
            return unit if amount == 1 else f"{amount:g} {unit}s"
    raise AssertionError("unreachable")  # pragma: no cover


def _usage_note() -> str | None:
    """How fresh calls and last-used times are: each process buffers them in memory and
    writes them every ``APIKEYS_USAGE_FLUSH_INTERVAL`` seconds. ``None`` when usage is
    not tracked."""
    usage = app_keys().usage_buffer()
    if usage is None:
        return None
    interval = float(usage.interval or 0)
    if interval > 0:
        note = f"Calls and last use are saved every {_every(interval)}"
    else:
        note = "Calls and last use are saved in batches"
    note += ", so the newest calls can take that long to show."
    resolution = usage.last_used_resolution.total_seconds()
    if resolution >= 1:
        note += f" Last use is updated at most once per {_every(resolution)}."
    return note


def _ago(moment: dt.datetime | None) -> str:
    if moment is None:
        return "Never"
    seconds = (utcnow() - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            # Whole days to the nearest: a 30-day key just made expires "in 30 days".
            amount = round(seconds / size) if unit == "day" else int(seconds // size)
            if unit == "day" and amount > 60:
                return _when(moment)
            text = f"{amount} {unit}{'s' if amount != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "in a moment" if future else "just now"


def _http_status(code: int) -> tuple[str, str]:
    """How a logged response's status reads: its kind (``ok``, ``refused``: 401, 403
    and 429, ``error``) and its phrase (``Too Many Requests``)."""
    kind = "ok" if code < 400 else "refused" if code in (401, 403, 429) else "error"
    return kind, HTTP_STATUS_CODES.get(code, "")


def _scope_labels(key: Any) -> list[str]:
    if key.full_access:
        return ["Full access"]
    return list(key.scopes or [])


def template_helpers() -> dict[str, Any]:
    managed: list[Organization] = []
    if current_user and current_user.is_authenticated and not is_key_request():
        managed = page_service().context.managed_organizations(signed_in_user())
    return {
        "apikeys_status": status_of,
        "apikeys_when": _when,
        "apikeys_when_exact": when_exact,
        "apikeys_when_long": when_long,
        "apikeys_when_time": _when_time,
        "apikeys_iso": _iso,
        "apikeys_as_time": _as_time,
        "apikeys_usage_note": _usage_note,
        "apikeys_ago": _ago,
        "apikeys_user_label": user_label,
        "apikeys_scope_labels": _scope_labels,
        "apikeys_http_status": _http_status,
        "apikeys_managed_orgs": managed,
    }
