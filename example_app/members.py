"""A member's permissions in one organization: the page the key pages' offboarding links
to (``APIKEYS_MEMBER_PERMISSIONS_URL``), where an admin takes away what a person who
leaves may still do, such as creating API keys.

Only admins of the organization (``api_key.manage`` there) open it; anyone else, or a
member of another organization, gets 404.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from flask_apikeys.web.forms import BrowserForm, form_body_only

from .models import ALL_PERMISSIONS, KEY_PERMISSIONS, Membership, db

members = Blueprint("members", __name__)
members.before_request(form_body_only)

#: What each permission lets a member do, as the page says it.
LABELS = {
    **KEY_PERMISSIONS,
    "api_key.create": "Create API keys",
    "api_key.manage": "See and revoke every API key of the organization",
}


class PermissionsForm(BrowserForm):
    """Its CSRF token; the ticked ``permissions`` boxes are read as a list."""


def _membership(user_id: int, organization_id: int | None) -> Membership:
    if organization_id is None:
        abort(404)
    if "api_key.manage" not in current_user.permissions_in(organization_id):
        abort(404)
    membership = db.session.scalar(
        sa.select(Membership).where(
            Membership.user_id == user_id, Membership.organization_id == organization_id
        )
    )
    if membership is None:
        abort(404)
    return membership


@members.route("/settings/members/<int:user_id>", methods=["GET", "POST"])
@login_required
def member(user_id: int) -> ResponseReturnValue:
    membership = _membership(user_id, request.args.get("org", type=int))
    form = PermissionsForm()
    held = membership.permissions.split()
    if form.validate_on_submit():
        ticked = set(request.form.getlist("permissions"))
        chosen = [p for p in ALL_PERMISSIONS if p in ticked]
        if membership.user_id == current_user.id and "api_key.manage" not in chosen:
            flash("You cannot take away your own right to manage the organization.", "error")
        else:
            membership.permissions = " ".join(chosen)
            db.session.commit()
            flash(f"Saved the permissions of {membership.user.name}.", "notice")
        return redirect(url_for("members.member", user_id=user_id, org=membership.organization_id))
    if form.is_submitted():  # without a valid CSRF token
        abort(400, "The form has expired or was not sent from this site. Reload and try again.")
    return render_template(
        "member.html",
        membership=membership,
        form=form,
        permissions=ALL_PERMISSIONS,
        held=set(held),
        labels=LABELS,
    )
