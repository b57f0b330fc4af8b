"""E-mail a key's owner before the key expires (the ``key_expiring`` signal).

flask-apikeys sends the signal once per key and threshold (7 and 1 days before expiry
by default) from ``flask --app example_app apikeys notify-expiring`` (cron) or, with
``FLASK_APIKEYS_EXPIRY_NOTIFY_INTERVAL`` set, from each worker's timer; this receiver
turns it into a message through :func:`example_app.mail.send_mail`.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from flask import Flask, url_for

from flask_apikeys.signals import key_expiring

from .mail import send_mail


def init_app(app: Flask) -> None:
    key_expiring.connect(email_owner, sender=app)


def email_owner(sender: Flask, key: Any, days: int, expires_at: dt.datetime, **extra: Any) -> None:
    """Tell the owner which key expires when, and how to replace it."""
    left = math.ceil((expires_at - dt.datetime.now(dt.UTC)) / dt.timedelta(days=1))
    when = "within a day" if left <= 1 else f"in {left} days"
    send_mail(
        [key.owner.email],
        f"Your API key “{key.name}” expires {when}",
        f"Hello {key.owner.name},\n\n"
        f"Your API key “{key.name}” ({key.display_prefix}…) expires on "
        f"{expires_at:%Y-%m-%d at %H:%M} UTC. Scripts and integrations using it will then "
        "stop working.\n\n"
        f"To keep them working, rotate the key and paste the new one where the old one is "
        f"used: {_key_page(key)}\n\n"
        "If nothing uses this key any more, let it expire.\n",
    )


def _key_page(key: Any) -> str:
    """The key's page: a full URL when SERVER_NAME is set, else its path."""
    try:
        return url_for("apikeys.detail", key_id=key.id, _external=True)
    except RuntimeError:  # no SERVER_NAME outside a request
        return f"/settings/api-keys/{key.id}"
