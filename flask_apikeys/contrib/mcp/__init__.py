"""MCP servers guarded by flask-apikeys keys (``pip install 'flask-apikeys[mcp]'``).

See ``docs/mcp.md``. Built on the official ``mcp`` SDK, 2.x.
"""

from __future__ import annotations

from .http import KeyAccessToken, KeyAuthMiddleware
from .introspect import IntrospectionTokenVerifier
from .server import MCPKeys, current_access_token, current_mcp_key

__all__ = [
    "IntrospectionTokenVerifier",
    "KeyAccessToken",
    "KeyAuthMiddleware",
    "MCPKeys",
    "current_access_token",
    "current_mcp_key",
]
