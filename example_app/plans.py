"""Plans: which organizations may create API keys, and which keys.

Told to flask-apikeys through its creation policy (``@apikeys.creation_policy``, see
docs/integrating.md), as Fiskl and CraftDesk do it:

- **Free**: no API keys. The key pages say "API keys are available on paid plans." with
  a link to ``/plans`` (a fixed path of this site: never a URL taken from the request).
- **Team**: keys with Read-only or Full access, reaching every client. Choosing
  permissions one by one, or limiting a key to some clients ("custom scope"), is refused.
- **Business** (the default): everything.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user

from flask_apikeys import KeyDraft, Refusal

from .models import Organization, db

#: Plan → its name and what it offers, as the plans page lists it.
PLANS = {
    "free": ("Free", "Invoices and clients in the web app. No API keys."),
    "team": ("Team", "API keys with Read-only or Full access."),
    "business": (
        "Business",
        "API keys with permissions chosen one by one, limited to chosen clients.",
    ),
}
#: What the plans page compares: (feature, plans that have it).
FEATURES = [
    ("Invoices and clients in the web app", {"free", "team", "business"}),
    ("API keys, for scripts, CI and AI assistants (MCP)", {"team", "business"}),
    ("Read-only and Full-access keys", {"team", "business"}),
    ("Keys with permissions chosen one by one", {"business"}),
    ("Keys limited to chosen clients", {"business"}),
]
#: Where the refusals link to: this site's plans page.
PLANS_PATH = "/plans"

plans = Blueprint("plans", __name__)


def creation_policy(user: Any, organization_id: int | None, key: KeyDraft | None = None) -> Any:
    """flask-apikeys' creation policy: ``None`` allows, a :class:`Refusal` refuses.

    *key* is ``None`` when a page asks whether *user* may create keys at all, and the
    key asked for when one is created (or its clients changed).
    """
    organization = db.session.get(Organization, organization_id) if organization_id else None
    plan = organization.plan if organization is not None else "business"
    if plan == "free":
        return Refusal(
            "API keys are available on paid plans.", link=PLANS_PATH, link_text="Upgrade"
        )
    if plan == "team" and key is not None:
        if key.access == "custom":
            return Refusal(
                "Choosing permissions one by one is available on the Business plan.",
                link=PLANS_PATH,
                link_text="Compare plans",
            )
        if key.resources:
            return Refusal(
                "Limiting a key to some clients is available on the Business plan.",
                link=PLANS_PATH,
                link_text="Compare plans",
            )
    return None


@plans.get(PLANS_PATH)
def plans_page() -> ResponseReturnValue:
    """The plans side by side, marking those of the signed-in user's organizations."""
    yours: dict[str, list[str]] = {}
    if current_user.is_authenticated:
        for membership in current_user.memberships:
            org = membership.organization
            yours.setdefault(org.plan, []).append(org.name)
    return render_template("plans.html", plans=PLANS, features=FEATURES, yours=yours)
