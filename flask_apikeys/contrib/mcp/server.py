"""Per-tool scopes for an MCP server built with the official SDK, and two ways to serve it.

:class:`MCPKeys` wraps an SDK :class:`~mcp.server.mcpserver.MCPServer`:

- ``@keys.tool(scope="invoice.read")`` declares a tool and the scopes it needs, where
  the tool is declared;
- its message middleware, on every message, reads the key the HTTP layer verified for
  *that* HTTP request: ``tools/list`` lists only the tools the key may call, and a
  ``tools/call`` whose key lacks a scope gets a tool error naming the missing scope;
- ``keys.init_app(app)`` mounts the server in the Flask app (same WSGI server: JSON
  answers, no streams), and ``keys.asgi_app(app)`` makes a separate ASGI app (uvicorn)
  on the same database, which holds streams open and may also speak SSE.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from flask import Flask
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.types import (
    METHOD_NOT_FOUND,
    CallToolResult,
    DiscoverResult,
    ListToolsResult,
    TextContent,
)
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
from .mount import STREAMS_KEY, mount

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


#: The 2026-07-28 methods that open (``subscriptions/listen``) or advertise (the change
#: notifications in ``server/discover``) a stream that stays open.
_STREAMING = ("subscriptions/listen", "server/discover")
_NO_STREAMS = (
    "This MCP server answers each request at once and keeps no stream open: "
    "subscriptions/listen is not served here."
)


def _can_stream(scope: Mapping[str, Any] | None) -> bool:
    """Whether the HTTP layer of this request can hold a response stream open
    (not the server mounted in a WSGI app: :data:`~.mount.STREAMS_KEY`)."""
    return scope is None or bool(scope.get(STREAMS_KEY, True))


def _without_change_notifications(result: HandlerResult) -> HandlerResult:
    """A ``server/discover`` result that promises no change notifications: at
    2026-07-28 they come only on a ``subscriptions/listen`` stream."""
    if isinstance(result, DiscoverResult):
        capabilities = result.capabilities
        update: dict[str, Any] = {}
        for name in ("tools", "prompts", "resources"):
            capability = getattr(capabilities, name)
            if capability is not None:
                fields = {"list_changed": False}
                if name == "resources":
                    fields["subscribe"] = False
                update[name] = capability.model_copy(update=fields)
        return result.model_copy(update={"capabilities": capabilities.model_copy(update=update)})
    if isinstance(result, dict) and isinstance(result.get("capabilities"), dict):
        found: dict[str, Any] = dict(result["capabilities"])
        for name in ("tools", "prompts", "resources"):
            if isinstance(found.get(name), dict):
                flags = {**found[name], "listChanged": False}
                if name == "resources":
                    flags["subscribe"] = False
                found[name] = flags
        return {**result, "capabilities": found}
    return result


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
        """The SDK message middleware: filter ``tools/list``, guard ``tools/call``; and
        where the HTTP layer holds no stream (the mounted server), refuse
        ``subscriptions/listen`` and promise no change notifications in
        ``server/discover``."""
        scope = getattr(ctx.request, "scope", None)
        if ctx.method in _STREAMING and not _can_stream(scope):
            if ctx.method == "subscriptions/listen":
                raise MCPError(METHOD_NOT_FOUND, _NO_STREAMS)
            return _without_change_notifications(await call_next(ctx))
        if ctx.method not in ("tools/list", "tools/call"):
            return await call_next(ctx)
        token = token_from_scope(scope)
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
        sse_path: str | None = None,
        message_path: str = "/messages/",
        **options: Any,
    ) -> ASGIApp:
        """A separate ASGI app (run it with uvicorn) guarded by our keys.

        With *app*, keys are checked by the Flask app's own ``authenticate()`` on the
        shared database; with *verifier* (e.g. :class:`IntrospectionTokenVerifier`), by
        that SDK token verifier, reading ``Authorization: Bearer`` or *header*.

        With *sse_path* (e.g. ``"/sse"``), the app also speaks the SSE transport of older
        clients (MCP 2024-11-05, the SDK's ``SseServerTransport``): ``GET sse_path``
        opens a session's stream and the client posts its messages to *message_path*.
        Each request is checked as the streamable HTTP ones are (the stream when it
        opens, then every message), and a session answers only the key that opened it.
        """
        if (app is None) == (verifier is None):
            raise TypeError("pass the Flask app or an SDK token verifier, not both")
        path = options.setdefault("path", "/mcp")
        inner = self.streamable_http_app(**options)
        guarded = [path]
        if sse_path is not None:
            sse = self.server.sse_app(
                sse_path=sse_path,
                message_path=message_path,
                transport_security=options.get("transport_security")
                or TransportSecuritySettings(enable_dns_rebinding_protection=False),
            )
            inner.router.routes.extend(sse.routes)  # one app: the session manager's lifespan
            guarded += [sse_path, message_path]
        if verifier is None:
            self.app = app
            return KeyAuthMiddleware(inner, FlaskKeyVerifier(cast(Flask, app)), path=guarded)
        adapter = TokenVerifierAdapter(verifier, header=header, realm=realm)
        return KeyAuthMiddleware(inner, adapter, path=guarded)

    def init_app(self, app: Flask, *, path: str = "/mcp", **options: Any) -> None:
        """Mount the server at *path* in *app*, answered by the app's own WSGI server."""
        self.app = app
        mount(self, app, path, **options)
