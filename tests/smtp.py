"""A real SMTP server for the tests (aiosmtpd), keeping every message it receives."""

from __future__ import annotations

import asyncio
import email
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


class _Inbox:
    def __init__(self, delay: float) -> None:
        self.messages: list[Message] = []
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def smtp_server(delay: float = 0.0) -> Iterator[tuple[str, list[Message]]]:
    """Yield ``("127.0.0.1:<port>", messages)``: give the first to ``MAIL_SERVER``.
    *delay* (seconds) slows the taking of each message, so that senders overlap."""
    inbox = _Inbox(delay)
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield f"127.0.0.1:{controller.port}", inbox.messages
    finally:
        controller.stop()
