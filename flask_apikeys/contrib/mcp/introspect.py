"""An SDK token verifier that checks keys through RFC 7662 introspection.

For an MCP server in another process (or on another host) that does not share the
database: it asks the Flask app's introspection endpoint (``flask_apikeys.introspection``)
about each presented key, authenticating with a key of its own that holds the
introspection permission. It implements the SDK's :class:`TokenVerifier` protocol, so it
plugs into :meth:`MCPKeys.asgi_app` (Bearer and ``X-API-Key``) or into the SDK's own
``MCPServer(token_verifier=..., auth=AuthSettings(...))``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx2
from mcp.server.auth.provider import AccessToken

__all__ = ["IntrospectionTokenVerifier"]

logger = logging.getLogger("flask_apikeys")
_HINT = "access_token"  # RFC 7662's hint for the kind of token asked about


class IntrospectionTokenVerifier:
    """``verify_token(key)`` -> an :class:`AccessToken` while the key is active, else ``None``.

    Nothing is cached: a revoked key is refused on its next request. Any failure to get
    an answer (timeout, refused caller key, not JSON) refuses the key too.
    """

    def __init__(
        self,
        introspection_url: str,
        caller_key: str,
        *,
        timeout: float = 5.0,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.introspection_url = introspection_url
        self._caller_key = caller_key
        self.timeout = timeout
        self.http_client = http_client

    async def introspect(self, token: str) -> dict[str, Any] | None:
        """The endpoint's JSON answer for *token*, or ``None`` when there is none."""
        headers = {"Authorization": f"Bearer {self._caller_key}", "Accept": "application/json"}
        data = {"token": token, "token_type_hint": _HINT}
        try:
            if self.http_client is not None:
                response = await self.http_client.post(
                    self.introspection_url, data=data, headers=headers, timeout=self.timeout
                )
            else:
                async with httpx2.AsyncClient(timeout=self.timeout) as client:
                    response = await client.post(self.introspection_url, data=data, headers=headers)
        except httpx2.HTTPError as exc:
            logger.warning("Token introspection failed: %s", type(exc).__name__)
            return None
        if response.status_code != 200:
            logger.warning("Token introspection answered HTTP %s", response.status_code)
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def verify_token(self, token: str) -> AccessToken | None:
        body = await self.introspect(token)
        if body is None or body.get("active") is not True:
            return None
        exp = body.get("exp")
        if isinstance(exp, int) and exp <= time.time():
            return None
        client_id = str(body.get("client_id") or "")
        scope = body.get("scope")
        return AccessToken(
            token=client_id,  # never the secret: token objects can end up in logs
            client_id=client_id,
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=exp if isinstance(exp, int) else None,
            subject=str(body["sub"]) if body.get("sub") is not None else None,
            claims={k: body[k] for k in ("username", "iat") if k in body},
        )
