"""Configuration keys and their defaults, all under the ``APIKEYS_`` prefix.

Precedence: a keyword argument to :class:`~flask_apikeys.APIKeys` beats
``app.config``, which beats the defaults below. Each key is documented in
``docs/configuration.md``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

DEFAULTS: dict[str, Any] = {
    # Key format and storage
    "APIKEYS_PREFIX": "ak",
    "APIKEYS_PEPPER": None,
    # Where requests carry keys
    "APIKEYS_BEARER": True,
    "APIKEYS_HEADER": "X-API-Key",
    "APIKEYS_QUERY_PARAM": None,
    "APIKEYS_REALM": "api",
    # Permissions
    "APIKEYS_CREATE_PERMISSION": "api_key.create",
    "APIKEYS_MANAGE_PERMISSION": "api_key.manage",
    "APIKEYS_PERMISSIONS": None,
    # Besides api_key.* and the create/manage permissions: more that keys never hold.
    "APIKEYS_SENSITIVE_PERMISSIONS": (),
    # Sensitive permissions a key may hold when chosen by name (never via full access).
    "APIKEYS_GRANTABLE_SENSITIVE_PERMISSIONS": (),
    "APIKEYS_MAX_LIFETIME": None,
    # Audit
    "APIKEYS_AUDIT_EXPIRED_USE": True,
    # Expiry warnings (docs/expiry-warnings.md): days before expiry that warn, and
    # seconds between in-process runs (0 = none; run `flask apikeys notify-expiring`).
    "APIKEYS_EXPIRY_WARNING_DAYS": (7, 1),
    "APIKEYS_EXPIRY_NOTIFY_INTERVAL": 0,
    # Audit trail (docs/audit.md): days events are kept (None or 0: forever), page size.
    "APIKEYS_AUDIT_RETENTION_DAYS": 365,
    "APIKEYS_AUDIT_PAGE_SIZE": 50,
    # CLI
    "APIKEYS_USER_LOOKUP_FIELD": "email",
    # Usage and rate limits (docs/usage-and-rate-limits.md)
    "APIKEYS_USAGE_TRACKING": True,
    "APIKEYS_USAGE_FLUSH_INTERVAL": 10,  # seconds; 0 = no timer, flush at exit only
    "APIKEYS_USAGE_MAX_BUFFERED": 10_000,  # uses per process that trigger an early flush
    "APIKEYS_LAST_USED_RESOLUTION": 60,  # seconds last_used_at must advance to be written
    # Request log (docs/request-log.md): each key's recent requests, buffered like usage.
    "APIKEYS_REQUEST_LOG": True,
    "APIKEYS_REQUEST_LOG_READ_SAMPLE": 0.1,  # share of GET/HEAD/OPTIONS logged; others: all
    "APIKEYS_REQUEST_LOG_RETENTION_DAYS": 30,  # None = keep rows forever
    "APIKEYS_REQUEST_LOG_MAX_PER_KEY": 1000,  # rows kept per key; None = no cap
    "APIKEYS_DEFAULT_RATE_LIMIT": None,  # e.g. "1000/hour"; None = unlimited
    "APIKEYS_RATELIMIT_STORAGE_URI": "memory://",  # "redis://host:6379/0" to share limits
    "APIKEYS_RATELIMIT_STORAGE_OPTIONS": None,  # dict passed to limits' storage
    "APIKEYS_RATELIMIT_STRATEGY": "moving-window",
    "APIKEYS_RATELIMIT_KEY_PREFIX": "apikeys",
    "APIKEYS_RATELIMIT_FAIL_OPEN": True,  # storage down: serve (True) or refuse (False)
    "APIKEYS_RATELIMIT_HEADERS": True,  # RateLimit-* headers on limited keys' responses
    "APIKEYS_FAILED_AUTH_LIMIT": "30/minute",  # refused keys per client address; None = off
    # Quotas (docs/quotas.md): days and months in this zone; counters in the database
    # (None) or Redis ("redis://host:6379/0", keys under APIKEYS_RATELIMIT_KEY_PREFIX).
    "APIKEYS_QUOTA_TIMEZONE": "UTC",
    "APIKEYS_QUOTA_STORAGE_URI": None,
    "APIKEYS_QUOTA_STORAGE_OPTIONS": None,  # dict passed to redis.Redis.from_url
    "APIKEYS_QUOTA_FAIL_OPEN": True,  # storage down: serve uncounted (True) or refuse
    # Pages (the blueprint in views.py)
    # Host template the pages extend; it must define the blocks ``title`` and ``content``.
    "APIKEYS_BASE_TEMPLATE": "apikeys/base.html",
    # Streamable-HTTP MCP server URL for the MCP snippet (a path is joined to the host URL).
    "APIKEYS_MCP_URL": None,
    # URL the curl and Python snippets call (a path is joined to the host URL; None = "/").
    "APIKEYS_API_BASE_URL": None,
    # Name of the MCP server in the MCP client snippet (None = the key prefix).
    "APIKEYS_MCP_SERVER_NAME": None,
    # The MCP server's SSE endpoint, for older clients (a path is joined to the host URL;
    # None = no SSE snippet). Only a server that holds streams open serves SSE.
    "APIKEYS_MCP_SSE_URL": None,
    # Keys per page of the key lists (yours, the organization's).
    "APIKEYS_PAGE_SIZE": 25,
    # The host's page where an admin removes a member's permissions (offboarding links
    # to it): a URL with {user_id} and {organization_id}, or a function (user, org id).
    "APIKEYS_MEMBER_PERMISSIONS_URL": None,
    # Env var the pasteable snippets read the key from (None = "<PREFIX>_API_KEY").
    "APIKEYS_ENV_VAR": None,
    # RFC 7662 introspection (flask_apikeys.introspection; docs/mcp.md): off by default.
    "APIKEYS_INTROSPECTION": False,
    "APIKEYS_INTROSPECTION_PERMISSION": "api_key.introspect",
    "APIKEYS_INTROSPECTION_RATE_LIMIT": "600/minute",  # per calling key; None = its own only
    # Leak reports (flask_apikeys.views.leaks; docs/leaks.md): GitHub's signing keys.
    "APIKEYS_LEAK_PUBLIC_KEYS_URL": "https://api.github.com/meta/public_keys/secret_scanning",
    # A GitHub token for that fetch (its rate limits); the default is no token at all.
    "APIKEYS_LEAK_PUBLIC_KEYS_BEARER": None,
    "APIKEYS_LEAK_ALLOW_HTTP": False,  # True only for a local key server in tests
    "APIKEYS_LEAK_KEYS_REFRESH_INTERVAL": 60,  # seconds at least between two fetches
    "APIKEYS_LEAK_MAX_REPORT_BYTES": 1_048_576,  # larger report bodies answer 413
    # Content-Security-Policy of every page; widen it if your base template needs more
    # (a CDN, inline scripts), or None to send none from the blueprint.
    "APIKEYS_CONTENT_SECURITY_POLICY": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def as_pepper(value: Any) -> bytes | None:
    if value is None or value == "":
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise RuntimeError("APIKEYS_PEPPER must be a string or bytes")


def as_lifetime(value: Any) -> dt.timedelta | None:
    """``APIKEYS_MAX_LIFETIME``: a timedelta, a number of days, or ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return dt.timedelta(days=value)
    if isinstance(value, str) and value.strip().isdigit():
        return dt.timedelta(days=int(value))
    raise RuntimeError("APIKEYS_MAX_LIFETIME must be a number of days or a timedelta")


def as_seconds(value: Any, name: str) -> float:
    """A non-negative number of seconds (``None`` and ``""`` are 0)."""
    if value is None or value == "":
        return 0.0
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise RuntimeError(f"{name} must be a number of seconds, not {value!r}") from None
    if not seconds >= 0:
        raise RuntimeError(f"{name} must be a non-negative number of seconds")
    return seconds


def as_fraction(value: Any, name: str) -> float:
    """A number from 0 to 1 (a share, e.g. of requests sampled)."""
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        raise RuntimeError(f"{name} must be a number from 0 to 1, not {value!r}") from None
    if not 0.0 <= fraction <= 1.0:
        raise RuntimeError(f"{name} must be a number from 0 to 1, not {value!r}")
    return fraction


def as_count(value: Any, name: str) -> int | None:
    """A whole number, or ``None`` for no limit (``None``, ``""`` and ``0`` are none)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RuntimeError(f"{name} must be a whole number or None, not {value!r}")
    return value or None
