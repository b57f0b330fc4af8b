"""An organization's key policy: the page its admins set it on."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from wtforms import BooleanField, IntegerField, SelectMultipleField
from wtforms.validators import Optional, ValidationError

from ...service.policies import MAX_POLICY_DAYS
from ...service.validation import RequestRefused
from ..forms import BrowserForm
from ..state import app_keys
from .common import client_ip, csrf_or_400, form_error, page_service, signed_in_user
from .organization import managed_org_or_404


class WholeNumberRange:
    """Like WTForms' ``NumberRange``, for integers of any size: WTForms' own calls
    ``math.isnan(data)``, which raises ``OverflowError`` (a 500) for an integer beyond a
    float's range, such as 309 digits typed into the field. Sets ``min`` and ``max`` on
    the rendered input, as ``NumberRange`` does."""

    def __init__(self, low: int, high: int, message: str) -> None:
        self.min, self.max, self.message = low, high, message
        self.field_flags = {"min": low, "max": high}

    def __call__(self, form: Any, field: Any) -> None:
        data = field.data
        if isinstance(data, int) and not isinstance(data, bool) and self.min <= data <= self.max:
            return
        raise ValidationError(self.message)


_DAYS = WholeNumberRange(1, MAX_POLICY_DAYS, f"Between 1 and {MAX_POLICY_DAYS} days.")


class PolicyForm(BrowserForm):
    max_lifetime_days = IntegerField(
        "Maximum key lifetime (days)",
        validators=[Optional(), _DAYS],
        description="New keys must expire within this many days. Empty: no limit of the "
        "organization.",
    )
    idle_expiry_days = IntegerField(
        "Expire keys unused for (days)",
        validators=[Optional(), _DAYS],
        description="A key not used for this many days stops working. Empty: never.",
    )
    limit_permissions = BooleanField("Keys may hold only the permissions chosen below")
    allowed_permissions = SelectMultipleField(
        "Permissions keys may hold", choices=[], validate_choice=False
    )


def policy(org_id: str) -> ResponseReturnValue:
    service, user = page_service(), signed_in_user()
    org = managed_org_or_404(org_id)
    current = service.policies.policy_of(org.id)
    form = PolicyForm()
    if not form.is_submitted() and current is not None:
        form.max_lifetime_days.data = current.max_lifetime_days
        form.idle_expiry_days.data = current.idle_expiry_days
        form.limit_permissions.data = current.allowed_permissions is not None
        form.allowed_permissions.data = list(current.allowed_permissions or [])
    status = 200
    if form.validate_on_submit():
        try:
            service.policies.set_policy(
                org.id,
                max_lifetime_days=form.max_lifetime_days.data,
                idle_expiry_days=form.idle_expiry_days.data,
                allowed_permissions=(
                    list(form.allowed_permissions.data or [])
                    if form.limit_permissions.data
                    else None
                ),
                actor=user,
                ip=client_ip(),
            )
        except RequestRefused as exc:
            form_error(form, exc)
            status = 400
        else:
            flash(f"Saved the key policy of {org.name}.", "success")
            return redirect(url_for(".policy", org_id=org.id))
    elif form.is_submitted():
        csrf_or_400(form)
        status = 400
    return (
        render_template(
            "apikeys/policy.html",
            org=org,
            form=form,
            policy=current,
            permissions=_permission_choices(current),
            selected=set(form.allowed_permissions.data or []),
            global_max_days=service.context.max_lifetime.days
            if service.context.max_lifetime
            else None,
            breaking=_breaking(service, org.id, current),
            events=service.policies.policy_events(org.id),
        ),
        status,
    )


#: How many of the keys that break a rule the page names; the rest are a link away.
BREAKING_SHOWN = 5


def _breaking(service: Any, org_id: Any, current: Any) -> dict[str, tuple[list[Any], int]]:
    """For each rule the policy has: the newest keys that break it and how many do."""
    rules = []
    if current is not None and current.max_lifetime_days is not None:
        rules.append("lifetime")
    if current is not None and current.allowed_permissions is not None:
        rules.append("permissions")
    return {
        rule: service.listing.keys_breaking_policy(org_id, rule, limit=BREAKING_SHOWN)
        for rule in rules
    }


def _permission_choices(current: Any) -> list[tuple[str, str]]:
    """``(name, description)`` of every permission a key may hold, and any the policy
    names that the vocabulary no longer does (so saving does not silently drop them)."""
    service = page_service()
    vocabulary = app_keys().permission_vocabulary()
    names = {name: text for name, text in vocabulary.items() if service.context.may_hold(name)}
    for name in (current.allowed_permissions or []) if current is not None else []:
        names.setdefault(name, "")
    return sorted(names.items())
