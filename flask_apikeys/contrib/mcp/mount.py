"""The MCP server mounted in the Flask app, under the app's own WSGI server.

A Flask route at the mount path checks the key with :func:`authenticate` in the real
request (the host's ``ProxyFix``, error handlers and ``after_request`` apply, as for any
``require_key`` view), then hands the request to the SDK's ASGI app through a2wsgi.
The ASGI app runs on one event loop per process, in a daemon thread started at the
first MCP request (so a preloading, forking server starts it in each worker), with the
SDK's session manager running on it. Stateless with JSON responses: each POST is
answered at once, so no request holds a worker for an open stream; GET, which would
open one, is refused with 405.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from typing import Any, Protocol, cast

from a2wsgi import ASGIMiddleware
from flask import Flask, current_app, request
from werkzeug.wrappers import Response

from ...web.authenticate import authenticate
from .http import ENVIRON_KEY, FlaskKeyVerifier, KeyAuthMiddleware, access_token_for

__all__ = ["Mountable", "mount"]

_START_TIMEOUT = 30.0


class Mountable(Protocol):
    """What :func:`mount` needs of an MCP server (:class:`~.server.MCPKeys` has it)."""

    @property
    def server(self) -> Any: ...

    def streamable_http_app(self, *, path: str = ..., **options: Any) -> Any: ...


class _Bridge:
    """The SDK's ASGI app as a WSGI app, started once per process."""

    def __init__(self, keys: Mountable, app: Flask, path: str, options: dict[str, Any]) -> None:
        self.keys, self.app, self.path, self.options = keys, app, path, options
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.wsgi: Any = None

    def get(self) -> Any:
        if self.pid != os.getpid():
            with self.lock:
                if self.pid != os.getpid():
                    self.wsgi = self._start()
                    self.pid = os.getpid()
        return self.wsgi

    def _start(self) -> Any:
        inner = self.keys.streamable_http_app(
            path=self.path, stateless=True, json_response=True, **self.options
        )
        manager = self.keys.server.session_manager
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="flask-apikeys-mcp", daemon=True).start()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def run_manager() -> None:
            try:
                async with manager.run():
                    started.set_result(None)
                    await asyncio.Event().wait()  # until the process ends
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                raise

        asyncio.run_coroutine_threadsafe(run_manager(), loop)
        started.result(timeout=_START_TIMEOUT)
        guarded = KeyAuthMiddleware(inner, FlaskKeyVerifier(self.app))
        return ASGIMiddleware(cast(Any, guarded), loop=loop)


def mount(keys: Mountable, app: Flask, path: str, **options: Any) -> None:
    """Answer POST *path* with the MCP server, behind the app's own key check."""
    bridge = _Bridge(keys, app, path, options)

    def mcp_endpoint() -> Response:
        verified = authenticate()  # exactly require_key's checks; errors render as usual
        environ = request.environ
        environ[ENVIRON_KEY] = access_token_for(verified)
        response_class = cast(type[Response], current_app.response_class)
        return response_class.from_app(bridge.get(), environ)

    app.add_url_rule(path, endpoint="apikeys_mcp", view_func=mcp_endpoint, methods=["POST"])
