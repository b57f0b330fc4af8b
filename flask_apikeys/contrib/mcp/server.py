"""Per-tool scopes for an MCP server built with the official SDK, and two ways to serve it.

:class:`MCPKeys` wraps an SDK :class:`~mcp.server.mcpserver.MCPServer`:

- ``@keys.tool(scope="invoice.read")`` declares a tool and the scopes it needs, where
  the tool is declared;
- its message middleware, on every message, reads the key the HTTP layer verified for
  *that* HTTP request: ``tools/list`` lists only the tools the key may call, and a
  ``tools/call`` whose key lacks a scope gets a tool error naming the missing scope;
- ``keys.init_app(app)`` mounts the server in the Flask app (same WSGI server), and
  ``keys.asgi_app(app)`` makes a separate ASGI app (uvicorn) on the same database.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from flask import Flask
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, ListToolsResult, TextContent
from starlette.applications import Starlette
from starlette.types import ASGIApp
from werkzeug.local import LocalProxy

from ...service import VerifiedKey
from .http import (
    FlaskKeyVerifier,
    KeyAccessToken,
    KeyAuthMiddleware,
    TokenVerifierAdapter,
    token_from_scope,
)
from .logs import quiet_sdk_loggers
from .mount import mount

__all__ = ["MCPKeys", "current_access_token", "current_mcp_key"]

F = TypeVar("F", bound=Callable[..., Any])

_token: ContextVar[AccessToken | None] = ContextVar("flask_apikeys_mcp_token", default=None)


def current_access_token() -> AccessToken | None:
    """The access token of the MCP message being handled (inside a tool), or ``None``."""
    return _token.get()


def _current_key() -> VerifiedKey | None:
    token = _token.get()
    return token.verified if isinstance(token, KeyAccessToken) else None


#: Inside a tool of a server checking keys in this process: the
#: :class:`~flask_apikeys.VerifiedKey` of this call (``.scopes``, ``.organization_id``,
#: ``.owner``, ...), verified for the HTTP request that carried it. ``None`` elsewhere.
current_mcp_key: VerifiedKey = cast(VerifiedKey, LocalProxy(_current_key))


def _scopes(scope: str | Iterable[str] | None) -> tuple[str, ...]:
    if scope is None:
        return ()
    if isinstance(scope, str):
        return (scope,)
    return tuple(scope)


def _tool_error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


class MCPKeys:
    """API keys and per-tool scopes for an SDK ``MCPServer``.

    ::

        server = create_server("ledgerly")      # MCPServer, without touching the logging
        keys = MCPKeys(server)

        @keys.tool(scope="invoice.read")
        def list_invoices() -> list[dict]:
            org_id = current_mcp_key.organization_id
            ...

        keys.init_app(app)                      # mounted at /mcp in the Flask app, or
        asgi = keys.asgi_app(app)               # a separate ASGI app for uvicorn
    """

    def __init__(self, server: MCPServer[Any], app: Flask | None = None, **mount: Any) -> None:
        self.server = server
        self.app: Flask | None = None
        #: Tool name -> the scopes a key needs to see and call it.
        self.tool_scopes: dict[str, tuple[str, ...]] = {}
        server.middleware.append(self.middleware)
        if app is not None:
            self.init_app(app, **mount)

    # -- declaring tools -------------------------------------------------------------

    def tool(self, scope: str | Iterable[str] | None = None, **options: Any) -> Callable[[F], F]:
        """``@keys.tool(scope=...)``: ``server.tool(**options)`` plus the scopes it needs.

        One scope, several (all needed) or none (any valid key). The tool runs inside a
        Flask app context of the app given to ``init_app``/``asgi_app``, with
        :data:`current_mcp_key` set.
        """
        if callable(scope):
            raise TypeError("use @keys.tool() or @keys.tool(scope=...), with parentheses")

        def decorator(fn: F) -> F:
            name = options.get("name") or fn.__name__
            self.require(name, scope)
            self.server.add_tool(self._in_app_context(fn), **options)
            return fn

        return decorator

    def require(self, tool_name: str, scope: str | Iterable[str] | None) -> None:
        """Declare the scopes of a tool registered some other way (``server.add_tool``)."""
        self.tool_scopes[tool_name] = _scopes(scope)

    def _in_app_context(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                if self.app is None:
                    return await fn(*args, **kwargs)
                with self.app.app_context():
                    return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:  # the SDK runs it in a worker thread
            if self.app is None:
                return fn(*args, **kwargs)
            with self.app.app_context():
                return fn(*args, **kwargs)

        return cast(F, run)

    # -- every message ---------------------------------------------------------------

    def missing_scopes(self, token: AccessToken, tool_name: str) -> list[str]:
        return sorted(set(self.tool_scopes.get(tool_name, ())) - set(token.scopes))

    async def middleware(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """The SDK message middleware: filter ``tools/list``, guard ``tools/call``."""
        if ctx.method not in ("tools/list", "tools/call"):
            return await call_next(ctx)
        http_request = ctx.request
        token = token_from_scope(getattr(http_request, "scope", None))
        if ctx.method == "tools/list":
            result = await call_next(ctx)
            return self._visible(result, token)
        name = str((ctx.params or {}).get("name", ""))
        if token is None:
            return _tool_error("This MCP server needs an API key.")
        missing = self.missing_scopes(token, name)
        if missing:
            return _tool_error(
                f"The API key lacks the permission the tool {name!r} needs: {', '.join(missing)}."
            )
        reset = _token.set(token)
        try:
            return await call_next(ctx)
        finally:
            _token.reset(reset)

    def _visible(self, result: HandlerResult, token: AccessToken | None) -> HandlerResult:
        def allowed(name: str) -> bool:
            return token is not None and not self.missing_scopes(token, name)

        if isinstance(result, ListToolsResult):
            return result.model_copy(update={"tools": [t for t in result.tools if allowed(t.name)]})
        if isinstance(result, dict) and isinstance(result.get("tools"), list):
            tools = [t for t in result["tools"] if allowed(str(t.get("name", "")))]
            return {**result, "tools": tools}
        return result

    # -- serving ---------------------------------------------------------------------

    def streamable_http_app(
        self,
        *,
        path: str = "/mcp",
        stateless: bool = True,
        json_response: bool = True,
        transport_security: TransportSecuritySettings | None = None,
        **options: Any,
    ) -> Starlette:
        """The SDK's streamable-HTTP app, without its own auth (ours wraps it).

        Stateless with JSON responses by default: any worker of any process can answer
        any request. DNS-rebinding protection is off unless *transport_security* says
        otherwise: every request carries a key, which a rebound browser page lacks.
        The SDK's line per request at INFO is left out (:func:`~.logs.quiet_sdk_loggers`)
        unless the host set a level on its ``mcp`` loggers.
        """
        quiet_sdk_loggers()
        return self.server.streamable_http_app(
            streamable_http_path=path,
            stateless_http=stateless,
            json_response=json_response,
            transport_security=transport_security
            or TransportSecuritySettings(enable_dns_rebinding_protection=False),
            **options,
        )

    def asgi_app(
        self,
        app: Flask | None = None,
        *,
        verifier: TokenVerifier | None = None,
        header: str | None = "X-API-Key",
        realm: str = "api",
        **options: Any,
    ) -> ASGIApp:
        """A separate ASGI app (run it with uvicorn) guarded by our keys.

        With *app*, keys are checked by the Flask app's own ``authenticate()`` on the
        shared database; with *verifier* (e.g. :class:`IntrospectionTokenVerifier`), by
        that SDK token verifier, reading ``Authorization: Bearer`` or *header*.
        """
        if (app is None) == (verifier is None):
            raise TypeError("pass the Flask app or an SDK token verifier, not both")
        path = options.setdefault("path", "/mcp")
        inner = self.streamable_http_app(**options)
        if verifier is None:
            self.app = app
            return KeyAuthMiddleware(inner, FlaskKeyVerifier(cast(Flask, app)), path=path)
        adapter = TokenVerifierAdapter(verifier, header=header, realm=realm)
        return KeyAuthMiddleware(inner, adapter, path=path)

    def init_app(self, app: Flask, *, path: str = "/mcp", **options: Any) -> None:
        """Mount the server at *path* in *app*, answered by the app's own WSGI server."""
        self.app = app
        mount(self, app, path, **options)
