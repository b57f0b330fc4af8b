"""flask-apikeys: API keys for Flask apps, shown once, stored hashed, scoped and revocable."""

from __future__ import annotations

from .audit_filters import EVENT_LABELS, AuditEntry, AuditFilter, AuditPage
from .auth import current_key, presented_key, require_key
from .drafts import KeyDraft, Refusal
from .errors import (
    APIKeyError,
    ExpiredAPIKey,
    InactiveUser,
    InsufficientScope,
    InvalidAPIKey,
    IPNotAllowed,
    MissingAPIKey,
    QuotaExceeded,
    RateLimited,
    ResourceNotAllowed,
    RevokedAPIKey,
)
from .extension import APIKeys
from .keyformat import KEY_PATTERN, KeyFormatError, generate_key, key_pattern, parse_key
from .models import KeyStatus
from .quotas import Quota, QuotaUsage, parse_quota
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
    "EVENT_LABELS",
    "KEY_PATTERN",
    "APIKeyError",
    "APIKeys",
    "AuditEntry",
    "AuditFilter",
    "AuditPage",
    "AuthenticationFailed",
    "ExpiredAPIKey",
    "IPNotAllowed",
    "InactiveUser",
    "InsufficientScope",
    "InvalidAPIKey",
    "IssuedKey",
    "KeyDraft",
    "KeyFormatError",
    "KeyService",
    "KeyStatus",
    "MissingAPIKey",
    "Organization",
    "Quota",
    "QuotaExceeded",
    "QuotaUsage",
    "RateLimited",
    "Refusal",
    "RequestRefused",
    "ResourceNotAllowed",
    "RevokedAPIKey",
    "VerifiedKey",
    "current_key",
    "generate_key",
    "key_pattern",
    "parse_duration",
    "parse_expiry",
    "parse_key",
    "parse_quota",
    "presented_key",
    "require_key",
]

__version__ = "0.2.0"
