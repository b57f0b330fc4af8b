"""An organization's key policy: the page its admins set it on."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectMultipleField
from wtforms.validators import NumberRange, Optional

from ...service.policies import MAX_POLICY_DAYS
from ...service.validation import RequestRefused
from ..state import app_keys
from .common import client_ip, csrf_or_400, form_error, page_service, signed_in_user
from .organization import managed_org_or_404

_DAYS = NumberRange(1, MAX_POLICY_DAYS, f"Between 1 and {MAX_POLICY_DAYS} days.")


class PolicyForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped (see forms.py)
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
    current = service.policy_of(org.id)
    form = PolicyForm()
    if not form.is_submitted() and current is not None:
        form.max_lifetime_days.data = current.max_lifetime_days
        form.idle_expiry_days.data = current.idle_expiry_days
        form.limit_permissions.data = current.allowed_permissions is not None
        form.allowed_permissions.data = list(current.allowed_permissions or [])
    status = 200
    if form.validate_on_submit():
        try:
            service.set_policy(
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
            global_max_days=service.max_lifetime.days if service.max_lifetime else None,
            outliving=service.keys_outliving_policy(org.id),
            events=service.policy_events(org.id),
        ),
        status,
    )


def _permission_choices(current: Any) -> list[tuple[str, str]]:
    """``(name, description)`` of every permission a key may hold, and any the policy
    names that the vocabulary no longer does (so saving does not silently drop them)."""
    service = page_service()
    vocabulary = app_keys().permission_vocabulary()
    names = {name: text for name, text in vocabulary.items() if service.may_hold(name)}
    for name in (current.allowed_permissions or []) if current is not None else []:
        names.setdefault(name, "")
    return sorted(names.items())
