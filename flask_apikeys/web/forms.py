"""Flask-WTF forms of the key-management pages. Every form carries a CSRF token.

The forms check shape only (required, lengths, known choices); the rules (which
permissions a user may grant, lifetimes, policies) live in the service, whose
:class:`~flask_apikeys.service.RequestRefused` the views turn into form errors.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
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
    "GRACE_CHOICES",
    "ConfirmForm",
    "CreateKeyForm",
    "IPAllowlistForm",
    "RateLimitForm",
    "RenameForm",
    "RevokeForm",
    "RotateForm",
]

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


class CreateKeyForm(FlaskForm):
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


class RenameForm(FlaskForm):
    name = _name_field()


class RotateForm(FlaskForm):
    grace = SelectField("When should the old key stop working?", choices=choices(GRACE_CHOICES))


class RevokeForm(FlaskForm):
    reason = StringField(
        "Reason (optional)",
        filters=[_strip],
        validators=[Optional(), Length(max=REASON_MAX_LENGTH)],
        description="Kept in the audit log.",
    )


class ConfirmForm(RevokeForm):
    """Offboarding: revoke every key of one user, with an optional reason."""


class IPAllowlistForm(FlaskForm):
    ip_allowlist = TextAreaField(
        "Allowed IP addresses",
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[Length(max=5000)],
        description="One address or network per line (e.g. 203.0.113.0/24). "
        "Leave empty to allow any address.",
    )


class RateLimitForm(FlaskForm):
    rate_limit = StringField(
        "Rate limit",
        filters=[_strip],
        validators=[Length(max=64)],
        description="e.g. 100/minute or 5000/day. Leave empty for the default.",
    )
