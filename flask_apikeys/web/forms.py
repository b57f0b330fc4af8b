"""Flask-WTF forms of the key-management pages. Every form carries a CSRF token.

The forms check shape only (required, lengths, known choices); the rules (which
permissions a user may grant, lifetimes, policies) live in the service, whose
:class:`~flask_apikeys.service.RequestRefused` the views turn into form errors.

Every form here is a :class:`BrowserForm`: it reads what an HTML form sends, never a
JSON body; and :func:`form_body_only` answers 415 to a POST of any other body.
"""

from __future__ import annotations

from typing import Any

from flask import abort, has_request_context, request
from flask_wtf import FlaskForm
from werkzeug.datastructures import CombinedMultiDict
from wtforms import (
    DateField,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from ..service.validation import NAME_MAX_LENGTH, REASON_MAX_LENGTH

try:  # WTForms 3.3 deprecates (value, label) tuples in favour of SelectChoice
    from wtforms import SelectChoice as _SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    _SelectChoice = None

__all__ = [
    "EXPIRY_CHOICES",
    "FORM_MIMETYPES",
    "GRACE_CHOICES",
    "BrowserForm",
    "ConfirmForm",
    "CreateKeyForm",
    "IPAllowlistForm",
    "RateLimitForm",
    "RenameForm",
    "RevokeForm",
    "RotateForm",
    "form_body_only",
    "posted_form_data",
]

#: The bodies an HTML form sends; with no body (no Content-Type) a POST is a form too.
FORM_MIMETYPES = frozenset({"", "application/x-www-form-urlencoded", "multipart/form-data"})
_SUBMIT_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: "Read the request", as FlaskForm's own default means.
_FROM_REQUEST: Any = object()


def posted_form_data() -> Any:
    """The fields the request's HTML form sent (its files included), or ``None``.

    Only the form-encoded or multipart body: a JSON body is not form data. (Flask-WTF
    reads ``request.get_json()`` when no form field came, so ``[1]`` or ``"x"`` made
    WTForms raise (a 500) and invalid JSON raised while the form was built, even in the
    template of an error page.)
    """
    if not has_request_context() or request.method not in _SUBMIT_METHODS:
        return None
    if request.files:
        return CombinedMultiDict((request.files, request.form))
    return request.form or None


class BrowserForm(FlaskForm):
    """A :class:`~flask_wtf.FlaskForm` that reads only what an HTML form sends.

    Built without ``formdata``, it takes :func:`posted_form_data` (the form-encoded or
    multipart body), never the JSON body Flask-WTF would read: a JSON, array, string,
    invalid or deeply nested body is a form with no fields, so no CSRF token, and a 400
    like any forged post. Pass ``formdata=`` as with any WTForms form.
    """

    def __init__(self, formdata: Any = _FROM_REQUEST, **kwargs: Any) -> None:
        if formdata is _FROM_REQUEST:
            formdata = posted_form_data()
        super().__init__(formdata=formdata, **kwargs)


def form_body_only() -> None:
    """A ``before_request`` hook: 415 for a POST (PUT, PATCH, DELETE) whose body is not
    what an HTML form sends (JSON, text, XML, ...); a body-less POST passes."""
    if request.method in _SUBMIT_METHODS and request.mimetype not in FORM_MIMETYPES:
        abort(
            415,
            "This page takes the fields of its HTML form "
            "(application/x-www-form-urlencoded or multipart/form-data).",
        )


#: (value for :func:`~flask_apikeys.service.parse_expiry`, label, days or None)
EXPIRY_CHOICES: list[tuple[str, str, int | None]] = [
    ("30d", "30 days", 30),
    ("90d", "90 days", 90),
    ("1y", "1 year", 365),
    ("custom", "Custom date", None),
    ("never", "No expiration", None),
]

#: (value for :func:`~flask_apikeys.service.parse_duration`, label)
GRACE_CHOICES: list[tuple[str, str]] = [
    ("now", "Stop the old key now"),
    ("1h", "Keep the old key working for 1 hour"),
    ("24h", "Keep the old key working for 24 hours"),
    ("7d", "Keep the old key working for 7 days"),
]

ACCESS_CHOICES = [
    ("custom", "Choose permissions"),
    ("read", "Read-only"),
    ("full", "Full access"),
]


def choices(pairs: list[tuple[str, str]]) -> list[Any]:
    """*pairs* as the choices this WTForms version prefers."""
    if _SelectChoice is None:  # pragma: no cover
        return list(pairs)
    return [_SelectChoice(value, label) for value, label in pairs]


def choice(value: str, label: str, *, disabled: bool = False) -> Any:
    """One choice of a select; a disabled one is shown but cannot be picked."""
    render_kw = {"disabled": True} if disabled else {}
    if _SelectChoice is None:  # pragma: no cover
        return (value, label, render_kw)
    return _SelectChoice(value, label, render_kw=render_kw)


def _strip(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) else value


def _name_field(description: str = "") -> Any:
    """A key's name: required, trimmed, bounded (the service checks the rest)."""
    return StringField(
        "Name",
        filters=[_strip],
        validators=[
            DataRequired("Give the key a name."),
            Length(max=NAME_MAX_LENGTH, message=f"At most {NAME_MAX_LENGTH} characters."),
        ],
        description=description,
    )


class CreateKeyForm(BrowserForm):
    name = _name_field(
        description="What the key is for, e.g. “Accounting export” or “Claude Desktop”."
    )
    organization = SelectField("Organization", choices=[], validate_choice=False)
    expires = RadioField(
        "Expiration", choices=choices([(v, label) for v, label, _ in EXPIRY_CHOICES]), default="90d"
    )
    expires_on = DateField("Expiration date", validators=[Optional()])
    access = RadioField("Access", choices=choices(ACCESS_CHOICES), default="custom")
    scopes = SelectMultipleField("Permissions", choices=[], validate_choice=False)
    #: One per rendered form, so a re-sent POST (a refreshed show-once page) is
    #: recognised instead of creating a second key.
    submission = HiddenField(validators=[Length(max=64)])


class RenameForm(BrowserForm):
    name = _name_field()


class RotateForm(BrowserForm):
    grace = SelectField("When should the old key stop working?", choices=choices(GRACE_CHOICES))


class RevokeForm(BrowserForm):
    reason = StringField(
        "Reason (optional)",
        filters=[_strip],
        validators=[Optional(), Length(max=REASON_MAX_LENGTH)],
        description="Kept in the audit log.",
    )


class ConfirmForm(RevokeForm):
    """Offboarding: revoke every key of one user, with an optional reason."""


class IPAllowlistForm(BrowserForm):
    ip_allowlist = TextAreaField(
        "Allowed IP addresses",
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[Length(max=5000)],
        description="One address or network per line (e.g. 203.0.113.0/24). "
        "Leave empty to allow any address.",
    )


class RateLimitForm(BrowserForm):
    rate_limit = StringField(
        "Rate limit",
        filters=[_strip],
        validators=[Length(max=64)],
        description="e.g. 100/minute or 5000/day. Leave empty for the default.",
    )
