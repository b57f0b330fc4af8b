"""Leaked keys: GitHub's reports revoke them, and the people concerned hear of it.

:func:`init_app` mounts the leak-report endpoint at ``POST
/security/github-secret-scanning`` (the URL to give GitHub's secret-scanning partner
program; docs/leaks.md) and e-mails the key's owner and the admins of its organization
(``api_key.manage``) whenever a key is revoked because it leaked, by that endpoint or by
``flask apikeys report-leak``. Without ``cryptography`` (``flask-apikeys[leaks]``) the
endpoint is left out; the e-mails still go out for the command line's revocations.
"""

from __future__ import annotations

import logging
import smtplib
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from flask_apikeys.signals import key_leaked

from .mail import send_mail
from .models import Membership, User, db

logger = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Mount the endpoint under ``/security`` and send the e-mails of *app*."""
    try:
        from flask_apikeys.web.leaks import create_leak_blueprint

        blueprint = create_leak_blueprint()
    except ImportError:
        logger.info("leak reports not mounted: install flask-apikeys[leaks]")
    else:
        app.register_blueprint(blueprint, url_prefix="/security")
    key_leaked.connect(tell_owner_and_admins, sender=app)


def people_to_tell(key: Any) -> list[str]:
    """The e-mail addresses of *key*'s owner and of its organization's admins (active)."""
    addresses = [key.owner.email] if key.owner.active else []
    if key.organization_id is not None:
        permission = current_app.config["APIKEYS_MANAGE_PERMISSION"]
        members = db.session.scalars(
            sa.select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.organization_id == key.organization_id, User.active.is_(True))
        ).unique()
        addresses += [
            user.email for user in members if permission in user.permissions_in(key.organization_id)
        ]
    return sorted(set(addresses))


def tell_owner_and_admins(
    sender: Flask, key: Any, url: str | None = None, source: str | None = None, **extra: Any
) -> None:
    """``key_leaked`` receiver: one e-mail to the owner and the admins; the key is never in it."""
    where = f"at {url}" if url else "in a public place"
    if source:
        where += f" ({source})"
    body = "\n".join(
        [
            f"The API key {key.display_prefix} ({key.name!r}) of {key.owner.email} "
            f"was found {where}.",
            "",
            "It has been revoked: requests with it are refused from now on. If a script or a",
            "service still needs access, create a new key under Settings → API keys, and keep",
            "it out of repositories, issues and chats.",
        ]
    )
    subject = f"API key {key.display_prefix} leaked and was revoked"
    try:
        send_mail(people_to_tell(key), subject, body)
    except (smtplib.SMTPException, OSError):
        # The key is revoked whatever the mail server says; the log says who was not told.
        logger.exception("could not e-mail about the leaked key %s", key.display_prefix)
