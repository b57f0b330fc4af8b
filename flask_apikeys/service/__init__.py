"""The service: everything done to API keys, over a SQLAlchemy session, without Flask."""

from __future__ import annotations

from .context import Organization
from .facade import KeyService
from .lifecycle import IssuedKey
from .validation import NAME_MAX_LENGTH, RequestRefused, parse_duration, parse_expiry
from .verify import AuthenticationFailed, VerifiedKey

__all__ = [
    "NAME_MAX_LENGTH",
    "AuthenticationFailed",
    "IssuedKey",
    "KeyService",
    "Organization",
    "RequestRefused",
    "VerifiedKey",
    "parse_duration",
    "parse_expiry",
]
