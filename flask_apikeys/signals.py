"""Blinker signals sent by flask-apikeys (defined in :mod:`flask_apikeys.web.signals`)."""

from __future__ import annotations

from .web.signals import (
    authentication_failed,
    key_authenticated,
    key_created,
    key_expiring,
    key_leaked,
    key_renamed,
    key_revoked,
    key_rotated,
)

__all__ = [
    "authentication_failed",
    "key_authenticated",
    "key_created",
    "key_expiring",
    "key_leaked",
    "key_renamed",
    "key_revoked",
    "key_rotated",
]
