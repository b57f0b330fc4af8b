"""MCP servers guarded by flask-apikeys keys (``pip install 'flask-apikeys[mcp]'``).

See ``docs/mcp.md``. Built on the official ``mcp`` SDK, 2.x. Build the SDK's server with
:func:`create_server` (``MCPServer`` itself configures the root logger: see :mod:`.logs`).
"""

from __future__ import annotations

from .http import KeyAccessToken, KeyAuthMiddleware
from .introspect import IntrospectionTokenVerifier
from .logs import create_server, quiet_sdk_loggers, root_logging_kept
from .server import MCPKeys, current_access_token, current_mcp_key

__all__ = [
    "IntrospectionTokenVerifier",
    "KeyAccessToken",
    "KeyAuthMiddleware",
    "MCPKeys",
    "create_server",
    "current_access_token",
    "current_mcp_key",
    "quiet_sdk_loggers",
    "root_logging_kept",
]
