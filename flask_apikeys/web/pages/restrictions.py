"""A key's restrictions in one form on its page: IP allowlist, rate limit and quota.

The owner changes the allowlist (narrowing one an admin set); an admin of the key's
organization changes all three. Everything sent is checked before anything is saved,
so a bad line in the allowlist saves nothing. The single-purpose endpoints
(``ip_allowlist``, ``rate_limit``, ``quota``) still answer, for forms and scripts made
before this one.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, url_for
from flask.typing import ResponseReturnValue
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import Length

from ...db.models import APIKeyMixin
from ...service.quota_rules import Quota, parse_quota
from ...service.validation import RequestRefused, clean_ip_allowlist, clean_rate_limit
from ..forms import BrowserForm, choices
from ..state import app_keys
from .common import client_ip, csrf_or_400, form_error, page_service, signed_in_user
from .detail import key_or_404, render_detail

__all__ = ["RestrictionsForm", "restriction_helpers", "restrictions"]

REFILL_CHOICES = choices([("", "Never"), ("day", "Every day"), ("month", "Every month")])


def _strip(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) else value


class RestrictionsForm(BrowserForm):
    ip_allowlist = TextAreaField(
        "Allowed IP addresses",
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[Length(max=5000)],
        description="One address or network per line, e.g. 203.0.113.0/24. Empty: any address.",
    )
    rate_limit = StringField(
        "Rate limit",
        filters=[_strip],
        validators=[Length(max=64)],
        description="e.g. 100/minute or 5000/day. Empty: the site's default.",
    )
    quota = StringField(
        "Quota",
        filters=[_strip],
        validators=[Length(max=40)],
        description="Calls per period: 1000/day, 1000/month or 50000/total. Empty: none.",
    )
    refill = SelectField("Refill a total", choices=REFILL_CHOICES, default="")


def _default_rate_limit() -> str | None:
    """``APIKEYS_DEFAULT_RATE_LIMIT`` as the app applies it (``None``: no limit)."""
    return app_keys().rate_limits().default_limit


def _form(key: APIKeyMixin, *refused: Any) -> RestrictionsForm:
    """The form with *key*'s restrictions, or with what a refused form sent and why:
    *refused* are the forms ``render_detail`` was given (``restrictions_form``, or one
    of the single-purpose ``ip_form``, ``rate_form``, ``quota_form``), or ``None``."""
    sent = [form for form in refused if form is not None]
    if sent and isinstance(sent[0], RestrictionsForm):
        return sent[0]  # sent and refused: as sent, with why
    current = Quota.of(key)
    form = RestrictionsForm(
        formdata=None,
        ip_allowlist="\n".join(key.ip_allowlist or []),
        rate_limit=key.rate_limit or "",
        quota=current.text if current else "",
        refill=(current.refill or "") if current else "",
    )
    default = _default_rate_limit()
    form.rate_limit.description = (
        f"e.g. 100/minute or 5000/day. Empty: the site's default, {default or 'no limit'}."
    )
    for old in sent:  # a refused single-purpose form: its fields as sent, and why
        for field in old:
            mine = getattr(form, field.name, None)
            if mine is not None and field.name != "csrf_token":
                mine.data, mine.errors = field.data, list(field.errors)
        form.form_errors.extend(old.form_errors)
    return form


def restriction_helpers() -> dict[str, Any]:
    """Template helpers of the key page's restrictions."""
    return {"apikeys_restrictions_form": _form, "apikeys_default_rate_limit": _default_rate_limit}


def restrictions(key_id: int) -> ResponseReturnValue:
    """Save the restrictions form: all of it after every field is checked, or nothing."""
    access = key_or_404(key_id)
    if not (access.is_owner or access.is_admin):
        abort(403)  # pragma: no cover - key_or_404 lets no one else in
    form = RestrictionsForm()
    if not form.validate_on_submit():
        csrf_or_400(form)
        return render_detail(access, 400, restrictions_form=form)
    key, admin = access.key, access.is_admin
    checks: list[tuple[str, Any]] = [
        ("ip_allowlist", lambda: clean_ip_allowlist(form.ip_allowlist.data))
    ]
    if admin:
        checks.append(("rate_limit", lambda: clean_rate_limit(form.rate_limit.data)))
        checks.append(
            (
                "quota",
                lambda: form.quota.data and parse_quota(form.quota.data, form.refill.data or None),
            )
        )
    for field, check in checks:
        try:
            check()
        except RequestRefused as exc:
            exc.field = field
            form_error(form, exc)
    if form.errors:
        return render_detail(access, 400, restrictions_form=form)
    service, actor, ip = page_service(), signed_in_user(), client_ip()
    try:
        service.restrictions.set_ip_allowlist(key, form.ip_allowlist.data or "", actor=actor, ip=ip)
        if admin:
            service.restrictions.set_rate_limit(
                key, form.rate_limit.data or None, actor=actor, ip=ip
            )
            service.quotas.set_quota(
                key, form.quota.data or None, refill=form.refill.data or None, actor=actor, ip=ip
            )
    except RequestRefused as exc:
        service.session.rollback()
        exc.field = exc.field or "ip_allowlist"
        form_error(form, exc)
        return render_detail(access, 400, restrictions_form=form)
    flash("The restrictions were saved.", "success")
    return redirect(url_for(".detail", key_id=key.id) + "#settings")
