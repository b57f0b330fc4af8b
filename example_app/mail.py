"""E-mail to the example's users, through an SMTP server.

``MAIL_SERVER`` (host, or ``host:port``; unset: nothing is sent, and each message is
logged at INFO without its body) and ``MAIL_FROM`` configure it, like every other
setting through ``FLASK_``-prefixed environment variables. Messages go out synchronously:
the events that send them (a key about to expire, a leaked key) are rare.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from email.message import EmailMessage

from flask import current_app

logger = logging.getLogger(__name__)

DEFAULT_SENDER = "Ledgerly <no-reply@ledgerly.example>"


def send_mail(to: Iterable[str], subject: str, body: str) -> bool:
    """Send a plain-text message to every address in *to*; ``False`` if nothing went."""
    recipients = sorted({address for address in to if address})
    if not recipients:
        return False
    server = current_app.config.get("MAIL_SERVER")
    if not server:
        logger.info("mail not configured; not sending %r to %d", subject, len(recipients))
        return False
    host, _, port = str(server).partition(":")
    message = EmailMessage()
    message["From"] = current_app.config.get("MAIL_FROM") or DEFAULT_SENDER
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(host, int(port or 25), timeout=10) as smtp:
        smtp.send_message(message)
    return True
