"""The HTTP layer of the MCP adapter: every request to the MCP endpoint needs a key.

:class:`KeyAuthMiddleware` wraps the SDK's streamable-HTTP ASGI app. Each HTTP request
(``initialize``, ``tools/list``, every ``tools/call``: one JSON-RPC message each) is
checked before the SDK sees it, by one of two verifiers:

- :class:`FlaskKeyVerifier`: the Flask app's own :func:`~flask_apikeys.auth.authenticate`
  in a request context made from the request — exactly the checks of ``require_key``
  (checksum, failed-authentication throttle, revocation, expiry, owner active, live
  permissions, IP allowlist, rate limit, usage, signals, audit);
- any SDK :class:`~mcp.server.auth.provider.TokenVerifier`, e.g.
  :class:`~flask_apikeys.mcp.IntrospectionTokenVerifier` for a server that reaches the
  keys through RFC 7662 introspection instead of the database.

A refused request gets the same JSON error and RFC 6750 ``WWW-Authenticate: Bearer``
challenge as ``/v1`` routes, and no ``resource_metadata``: nothing sends a client off
looking for an OAuth authorization server that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio.to_thread
from flask import Flask, request
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier
from pydantic import ConfigDict, Field
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from werkzeug.test import EnvironBuilder

from ...service import VerifiedKey
from ...web.authenticate import RATE_LIMIT_ATTR, authenticate
from ...web.errors import APIKeyError, InvalidAPIKey, MissingAPIKey

__all__ = [
    "ENVIRON_KEY",
    "SCOPE_KEY",
    "FlaskKeyVerifier",
    "KeyAccessToken",
    "KeyAuthMiddleware",
    "TokenVerifierAdapter",
    "access_token_for",
]

#: Where the mounted endpoint leaves the key it verified, in the WSGI environ.
ENVIRON_KEY = "flask_apikeys.mcp.verified_key"
#: Where :class:`KeyAuthMiddleware` leaves the :class:`KeyAccessToken`, in the ASGI scope.
SCOPE_KEY = "flask_apikeys.mcp.access_token"
_MAX_CREDENTIAL_LENGTH = 512


class KeyAccessToken(AccessToken):
    """The SDK's :class:`AccessToken` for one of our keys.

    ``token`` is the key's display prefix, never the secret (a token object can end
    up in a log); ``client_id`` is the display prefix too and ``subject`` the owner's
    id, so the SDK binds a stateful session to the key that opened it. ``verified`` is
    the :class:`~flask_apikeys.VerifiedKey` when the key was checked in this process.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    verified: VerifiedKey | None = Field(default=None, exclude=True, repr=False)
    #: Headers the key check adds to the answer (``RateLimit-*`` of a limited key, as
    #: ``/v1`` routes send them), when the check ran outside a Flask request.
    response_headers: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)


def access_token_for(verified: VerifiedKey, subject: Any = None) -> KeyAccessToken:
    """The :class:`KeyAccessToken` of a key verified in this process."""
    return KeyAccessToken(
        token=verified.display_prefix,
        client_id=verified.display_prefix,
        scopes=sorted(verified.scopes),
        subject=None if subject is None else str(subject),
        verified=verified,
    )


Outcome = AccessToken | APIKeyError


class FlaskKeyVerifier:
    """Check a request's key with the Flask app's :func:`authenticate` (same process)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def environ_for(self, scope: Scope) -> dict[str, Any]:
        """A WSGI environ for *scope*: the real one under the WSGI bridge, else rebuilt."""
        real = scope.get("wsgi_environ")
        if isinstance(real, dict):
            return real
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope.get("headers", ())
            if name not in (b"host", b"content-length", b"content-type")
        ]
        server = scope.get("server") or ("localhost", 80)
        host = dict(scope.get("headers", ())).get(b"host", b"").decode("latin-1")
        client = scope.get("client")
        base = {"REMOTE_ADDR": client[0]} if client else {}
        if client:
            base["REMOTE_PORT"] = str(client[1])
        return EnvironBuilder(
            path=scope.get("path", "/"),
            base_url=f"{scope.get('scheme', 'http')}://{host or f'{server[0]}:{server[1]}'}",
            method=scope.get("method", "GET"),
            headers=headers,
            query_string=scope.get("query_string", b"").decode("latin-1"),
            environ_base=base,
        ).get_environ()

    def check(self, environ: dict[str, Any]) -> Outcome:
        """Authenticate in a request context made from *environ* (blocking: a thread)."""
        with self.app.request_context(environ):
            try:
                verified = authenticate()
            except APIKeyError as error:
                return error
            token = access_token_for(verified, verified.owner_id)
            decision = getattr(request, RATE_LIMIT_ATTR, None)  # what the headers of /v1 show
            if decision is not None:
                token.response_headers = decision.headers()
            return token

    async def __call__(self, scope: Scope) -> Outcome:
        ready = scope.get("wsgi_environ", {}).get(ENVIRON_KEY)
        if isinstance(ready, AccessToken):  # checked by the mounted Flask endpoint
            return ready
        environ = self.environ_for(scope)
        return await anyio.to_thread.run_sync(self.check, environ)


class TokenVerifierAdapter:
    """Check a request's key with an SDK :class:`TokenVerifier` (e.g. introspection).

    The key is read from ``Authorization: Bearer`` or the *header* (``X-API-Key``);
    what the verifier refuses is an ``invalid_api_key``, without saying why.
    """

    def __init__(
        self, verifier: TokenVerifier, *, header: str | None = "X-API-Key", realm: str = "api"
    ) -> None:
        self.verifier = verifier
        self.realm = realm
        self.header = header.lower().encode("latin-1") if header else None

    def credential(self, scope: Scope) -> str | None:
        found: list[str] = []
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").strip().partition(" ")
                if scheme.lower() == "bearer":
                    found.append(token.strip())
            elif self.header is not None and name == self.header:
                found.append(value.decode("latin-1").strip())
        if not found:
            return None
        if len(set(found)) > 1 or any(not v or len(v) > _MAX_CREDENTIAL_LENGTH for v in found):
            raise InvalidAPIKey()
        return found[0]

    async def __call__(self, scope: Scope) -> Outcome:
        try:
            token = self.credential(scope)
        except APIKeyError:
            return InvalidAPIKey(realm=self.realm)
        if token is None:
            return MissingAPIKey(realm=self.realm)
        verified = await self.verifier.verify_token(token)
        if verified is None:
            return InvalidAPIKey(realm=self.realm)
        return verified


Verifier = Callable[[Scope], Any]


class KeyAuthMiddleware:
    """ASGI middleware: refuse any HTTP request without a usable key, else pass it on
    with ``scope["user"]`` (the SDK's :class:`AuthenticatedUser`), ``scope["auth"]`` and
    ``scope[SCOPE_KEY]`` set."""

    def __init__(
        self, app: ASGIApp, verifier: Verifier, *, path: str | Iterable[str] | None = None
    ) -> None:
        self.app = app
        self.verifier = verifier
        #: Only these paths (the MCP endpoint; SSE's stream and message paths) are
        #: guarded, a path ending in ``/`` with everything below it; ``None`` guards every
        #: path. Others (the SDK's custom routes, 404s) pass, so a client probing for
        #: OAuth metadata gets a plain 404.
        self.paths: tuple[str, ...] | None = (
            None if path is None else (path,) if isinstance(path, str) else tuple(path)
        )

    @property
    def path(self) -> str | None:
        """The first guarded path (the MCP endpoint), or ``None`` when all are."""
        return None if self.paths is None else self.paths[0]

    def guards(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            return False
        if self.paths is None:
            return True
        path = _route_path(scope)
        return any(
            path == guarded or (guarded.endswith("/") and path.startswith(guarded[:-1]))
            for guarded in self.paths
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.guards(scope):
            await self.app(scope, receive, send)
            return
        outcome = await self.verifier(scope)
        if isinstance(outcome, APIKeyError):
            await send_error(outcome, send)
            return
        scope = dict(scope)
        scope["user"] = AuthenticatedUser(outcome)
        scope["auth"] = AuthCredentials(outcome.scopes)
        scope[SCOPE_KEY] = outcome
        extra = getattr(outcome, "response_headers", None)
        await self.app(scope, receive, _with_headers(send, extra) if extra else send)


def _with_headers(send: Send, extra: Mapping[str, str]) -> Send:
    """*send* adding *extra* headers to the response, unless the app set them."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            present = {name.lower() for name, _ in headers}
            for name, value in extra.items():
                if name.lower().encode("latin-1") not in present:
                    headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
            message = {**message, "headers": headers}
        await send(message)

    return sending


def _route_path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


async def send_error(error: APIKeyError, send: Send) -> None:
    """Send *error* as our JSON body with its headers (challenge, Retry-After, ...)."""
    body = error.get_body().encode("utf-8")
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.get_headers()]
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "http.response.start", "status": error.code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def token_from_scope(scope: Mapping[str, Any] | None) -> AccessToken | None:
    """The access token :class:`KeyAuthMiddleware` left in an ASGI *scope*."""
    if scope is None:
        return None
    token = scope.get(SCOPE_KEY)
    return token if isinstance(token, AccessToken) else None
