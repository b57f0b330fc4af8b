"""The example's web pages: sign in, sign out and a home page.

The API-key pages themselves come from ``flask_apikeys.web.pages``, mounted in
``create_app`` at ``/settings/api-keys``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from flask_apikeys.web.authenticate import is_key_request
from flask_apikeys.web.forms import BrowserForm, form_body_only

from .models import User, db

web = Blueprint("web", __name__)
# Sign-in and sign-out take an HTML form's fields: any other body (JSON, text) is a 415,
# and the forms never read a JSON body as form data (BrowserForm).
web.before_request(form_body_only)


class LoginForm(BrowserForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class LogoutForm(BrowserForm):
    pass


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect to another host after signing in. Browsers
    read a backslash as a slash (``/\\evil.test``) and drop tabs and newlines."""
    if not target or len(target) > 2000:
        return url_for("web.home")
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return url_for("web.home")
    return target


@web.app_context_processor
def _logout_form() -> dict[str, Any]:
    # Only drawn (its CSRF token), never read from the request: the page it is on may be
    # the error page of a request whose body could not be read.
    return {"logout_form": LogoutForm(formdata=None)}


def demo_accounts() -> list[dict[str, str]]:
    """Every account ``flask --app example_app seed`` makes, as the sign-in page lists
    them: who, in which organization, on which plan, and what to try with them."""
    from .cli import DEMO
    from .plans import PLANS

    accounts = []
    for org, spec in DEMO.items():
        plan = PLANS[spec.get("plan", "business")][0]
        for email, (name, permissions) in spec["users"].items():
            role = "admin" if "api_key.manage" in permissions else "member"
            accounts.append({"email": email, "name": name, "org": org, "plan": plan, "role": role})
    return accounts


@web.get("/")
def home() -> ResponseReturnValue:
    return render_template("home.html", accounts=demo_accounts())


@web.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    """For clients that ask for /favicon.ico; the pages link to the SVG."""
    return redirect(url_for("static", filename="favicon.svg"), 301)


@web.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    error, status = None, 200
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is not None and user.active and user.check_password(form.password.data or ""):
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        error, status = "That email and password do not match an active account.", 401
    elif form.is_submitted():  # no CSRF token (a forged post), or fields out of bounds
        error, status = "Enter your email (at most 254 characters) and password.", 400
        if "csrf_token" in form.errors:
            error = "The form expired. Please sign in again."
    return render_template("login.html", form=form, error=error, accounts=demo_accounts()), status


@web.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    form = LogoutForm()
    if form.validate_on_submit():
        if not is_key_request():  # a key's owner is no session to end
            current_user.end_sessions()  # every cookie issued so far stops working
            db.session.commit()
        logout_user()
        flash("You are signed out.")
    return redirect(url_for("web.login"))
