"""A key's quota on its page: calls this period against the quota.

The partial ``apikeys/_quota.html`` (included by ``detail.html``) and the lists' quota
cell read what they show through the template helpers below, so the views pass nothing
for them. Only an admin of the key's organization sets a quota, like a rate limit: in the
page's restrictions form (:mod:`.restrictions`), or through the older ``quota`` endpoint
here.
"""

from __future__ import annotations

from typing import Any

from flask import abort, g
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Length

from ...db.models import APIKeyMixin
from ...service.quota_rules import Quota, QuotaUsage
from ..forms import choices
from .common import client_ip, page_service, signed_in_user
from .detail import key_or_404, save_restriction

__all__ = ["QuotaForm", "quota", "quota_helpers"]

REFILL_CHOICES = choices([("", "Never"), ("day", "Every day"), ("month", "Every month")])


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class QuotaForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped (see forms.py)
    quota = StringField(
        "Quota",
        filters=[_strip],
        validators=[Length(max=40)],
        description="Calls per period: 1000/day, 1000/month or 50000/total. "
        "Leave empty for no quota.",
    )
    refill = SelectField("Refill a total", choices=REFILL_CHOICES, default="")


def quota(key_id: int) -> ResponseReturnValue:
    access = key_or_404(key_id)
    if not access.is_admin:
        abort(403)
    form = QuotaForm()
    return save_restriction(
        access,
        form,
        "quota_form",
        "quota",
        lambda: page_service().quotas.set_quota(
            access.key,
            form.quota.data or None,
            refill=form.refill.data or None,
            actor=signed_in_user(),
            ip=client_ip(),
        ),
        "The quota was saved.",
    )


def _usage(key: APIKeyMixin) -> QuotaUsage | None:
    return page_service().quotas.quota_usage(key)


def _usage_in_list(key: APIKeyMixin, keys: list[APIKeyMixin]) -> QuotaUsage | None:
    """*key*'s usage, read for every key of *keys* at its first row (one query for the
    list, none when no listed key has a quota)."""
    cache: dict[int, tuple[list[APIKeyMixin], dict[int, QuotaUsage]]] = g.setdefault(
        "_apikeys_quota_lists", {}
    )
    seen = cache.get(id(keys))
    if seen is None or seen[0] is not keys:
        seen = cache[id(keys)] = (keys, page_service().quotas.quota_usages(keys))
    return seen[1].get(key.id)


def _form(key: APIKeyMixin) -> QuotaForm:
    current = Quota.of(key)
    return QuotaForm(
        formdata=None,
        quota=current.text if current else "",
        refill=(current.refill or "") if current else "",
    )


def quota_helpers() -> dict[str, Any]:
    """Template helpers of ``_quota.html``: a key's quota, its usage, the form."""
    return {
        "apikeys_quota_of": Quota.of,
        "apikeys_quota_usage": _usage,
        "apikeys_quota_in_list": _usage_in_list,
        "apikeys_quota_form": _form,
    }
