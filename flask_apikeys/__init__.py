"""flask-apikeys: API keys for Flask apps, shown once, stored hashed, scoped and revocable."""

from __future__ import annotations

from .auth import current_key, presented_key, require_key
from .errors import (
    APIKeyError,
    ExpiredAPIKey,
    InactiveUser,
    InsufficientScope,
    InvalidAPIKey,
    IPNotAllowed,
    MissingAPIKey,
    RateLimited,
    RevokedAPIKey,
)
from .extension import APIKeys
from .keyformat import KEY_PATTERN, KeyFormatError, generate_key, key_pattern, parse_key
from .models import KeyStatus
from .service import (
    AuthenticationFailed,
    IssuedKey,
    KeyService,
    Organization,
    RequestRefused,
    VerifiedKey,
    parse_duration,
    parse_expiry,
)

__all__ = [
    "KEY_PATTERN",
    "APIKeyError",
    "APIKeys",
    "AuthenticationFailed",
    "ExpiredAPIKey",
    "IPNotAllowed",
    "InactiveUser",
    "InsufficientScope",
    "InvalidAPIKey",
    "IssuedKey",
    "KeyFormatError",
    "KeyService",
    "KeyStatus",
    "MissingAPIKey",
    "Organization",
    "RateLimited",
    "RequestRefused",
    "RevokedAPIKey",
    "VerifiedKey",
    "current_key",
    "generate_key",
    "key_pattern",
    "parse_duration",
    "parse_expiry",
    "parse_key",
    "presented_key",
    "require_key",
]

__version__ = "0.1.0"
