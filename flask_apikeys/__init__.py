"""flask-apikeys: API keys for Flask apps, shown once, stored hashed, scoped and revocable.

The names a host app uses, imported on first use: ``import flask_apikeys.keys.format``
(or any module of the lower layers) loads neither Flask nor SQLAlchemy.
"""

from __future__ import annotations

import warnings
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .db.models import KeyStatus
    from .extension import APIKeys
    from .keys.drafts import KeyDraft, Refusal
    from .keys.format import KEY_PATTERN, KeyFormatError, generate_key, key_pattern, parse_key
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
    from .service.flushing import flush_all
    from .service.quota_rules import Quota, QuotaUsage, parse_quota
    from .web.authenticate import current_key, is_key_request, presented_key, require_key
    from .web.errors import (
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

#: Where each public name lives.
_HOMES = {
    "flask_apikeys.db.models": ("KeyStatus",),
    "flask_apikeys.extension": ("APIKeys",),
    "flask_apikeys.keys.drafts": ("KeyDraft", "Refusal"),
    "flask_apikeys.keys.format": (
        "KEY_PATTERN",
        "KeyFormatError",
        "generate_key",
        "key_pattern",
        "parse_key",
    ),
    "flask_apikeys.service": (
        "AuthenticationFailed",
        "IssuedKey",
        "KeyService",
        "Organization",
        "RequestRefused",
        "VerifiedKey",
        "parse_duration",
        "parse_expiry",
    ),
    "flask_apikeys.service.flushing": ("flush_all",),
    "flask_apikeys.service.quota_rules": ("Quota", "QuotaUsage", "parse_quota"),
    "flask_apikeys.web.authenticate": (
        "current_key",
        "is_key_request",
        "presented_key",
        "require_key",
    ),
    "flask_apikeys.web.errors": (
        "APIKeyError",
        "ExpiredAPIKey",
        "IPNotAllowed",
        "InactiveUser",
        "InsufficientScope",
        "InvalidAPIKey",
        "MissingAPIKey",
        "QuotaExceeded",
        "RateLimited",
        "ResourceNotAllowed",
        "RevokedAPIKey",
    ),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}
#: Page-rendering types that were exported here until 0.3; they live with the audit trail.
_MOVED = {
    name: "flask_apikeys.service.audit_filters"
    for name in ("EVENT_LABELS", "AuditEntry", "AuditFilter", "AuditPage")
}

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
    "flush_all",
    "generate_key",
    "is_key_request",
    "key_pattern",
    "parse_duration",
    "parse_expiry",
    "parse_key",
    "parse_quota",
    "presented_key",
    "require_key",
]

__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None and name in _MOVED:
        module = _MOVED[name]
        warnings.warn(
            f"flask_apikeys.{name} is deprecated: import it from {module} (goes in 0.4)",
            DeprecationWarning,
            stacklevel=2,
        )
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    if name in _MODULE_OF:
        globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])
