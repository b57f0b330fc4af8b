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
    "APIKEYS_MAX_LIFETIME": None,
    # Audit
    "APIKEYS_AUDIT_EXPIRED_USE": True,
    # CLI
    "APIKEYS_USER_LOOKUP_FIELD": "email",
    # Pages (the blueprint in views.py)
    # Host template the pages extend; it must define the blocks ``title`` and ``content``.
    "APIKEYS_BASE_TEMPLATE": "apikeys/base.html",
    # Streamable-HTTP MCP server URL for the MCP snippet (a path is joined to the host URL).
    "APIKEYS_MCP_URL": None,
    # URL the curl and Python snippets call (a path is joined to the host URL; None = "/").
    "APIKEYS_API_BASE_URL": None,
    # Name of the MCP server in the MCP client snippet (None = the key prefix).
    "APIKEYS_MCP_SERVER_NAME": None,
    # Keys per page on the organization admin page.
    "APIKEYS_PAGE_SIZE": 25,
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
