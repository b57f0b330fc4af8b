"""The MCP server mounted in the Flask app, under the app's own WSGI server.

A Flask route at the mount path checks the key with :func:`authenticate` in the real
request (the host's ``ProxyFix``, error handlers and ``after_request`` apply, as for any
``require_key`` view), reads the request's body, and hands both to the SDK's ASGI app,
which runs on one event loop per process, in a daemon thread started at the first MCP
request (so a preloading, forking server starts it in each worker).

Every answer is one complete JSON response, returned to the WSGI server like any view's:

- the server is stateless with JSON responses, so ``initialize``, ``tools/list`` and
  each ``tools/call`` are answered at once, by any worker;
- nothing holds a worker after its answer: the view returns as soon as the response is
  complete, while the SDK's clean-up for the request (the stateless transport's end, a
  notification's processing) finishes on the event loop;
- nothing holds a worker for a stream: ``GET`` (a server-to-client stream) answers 405,
  and a ``subscriptions/listen`` request (the 2026-07-28 stream of change events, which
  Claude Code opens) is refused with ``Method not found`` while ``server/discover``
  advertises no change notifications (:data:`STREAMS_KEY`, read by
  :class:`~.server.MCPKeys`). A WSGI server cannot tell that a client went away until a
  write fails: an open stream would hold a sync worker (of two, say) for good.

Under gevent workers the event loop's thread is a greenlet like the others (gunicorn's
gevent worker patches ``threading``), and the same code runs cooperatively.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from flask import Flask, current_app, request
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from ...web.authenticate import authenticate
from .http import ENVIRON_KEY, FlaskKeyVerifier, KeyAuthMiddleware, access_token_for

__all__ = ["STREAMS_KEY", "Mountable", "mount"]

logger = logging.getLogger("flask_apikeys.mcp")

_START_TIMEOUT = 30.0
#: In the ASGI scope: ``False`` when the HTTP layer cannot hold a response stream open
#: (the mounted server). :class:`~.server.MCPKeys` then refuses ``subscriptions/listen``
#: and advertises no change notifications.
STREAMS_KEY = "flask_apikeys.mcp.streams"
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding"})

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGI = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


class Mountable(Protocol):
    """What :func:`mount` needs of an MCP server (:class:`~.server.MCPKeys` has it)."""

    @property
    def server(self) -> Any: ...

    def streamable_http_app(self, *, path: str = ..., **options: Any) -> Any: ...


class _Answer:
    """One HTTP exchange with the ASGI app: the request's body in, the response out."""

    def __init__(self, body: bytes) -> None:
        self.body: bytes | None = body
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.complete = asyncio.Event()

    async def receive(self) -> Message:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.complete.wait()  # the app listens for a disconnect: after the answer
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers", ())
                if name.decode("latin-1").lower() not in _HOP_BY_HOP
            ]
        elif message["type"] == "http.response.body":
            self.chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self.complete.set()
            elif self.is_stream():
                # Never reached with the refusals above; if a stream starts anyway, its
                # first event is the whole answer rather than a worker held for good.
                logger.warning("MCP: a response stream was cut short (mounted: JSON only)")
                self.complete.set()

    def is_stream(self) -> bool:
        return any(
            name.lower() == "content-type" and value.startswith("text/event-stream")
            for name, value in self.headers
        )

    async def exchange(self, app: ASGI, scope: dict[str, Any]) -> Response:
        task = asyncio.ensure_future(app(scope, self.receive, self.send))
        task.add_done_callback(_log_failure)
        waiter = asyncio.ensure_future(self.complete.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not self.complete.is_set():  # the app ended without a complete answer
            if task.cancelled() or task.exception() is not None or self.status is None:
                return Response("MCP server error", status=500, mimetype="text/plain")
        elif self.is_stream():
            task.cancel()
        # Complete: the app's own clean-up for this request finishes on the loop.
        return Response(b"".join(self.chunks), status=self.status, headers=self.headers)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("MCP request failed", exc_info=task.exception())


def _scope(environ: dict[str, Any], path: str) -> dict[str, Any]:
    """The ASGI HTTP scope of a WSGI request (its environ rides along, as a2wsgi does)."""
    headers = [
        (key[5:].lower().replace("_", "-").encode("latin-1"), str(value).encode("latin-1"))
        for key, value in environ.items()
        if key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH")
    ]
    for key, name in (("CONTENT_TYPE", b"content-type"), ("CONTENT_LENGTH", b"content-length")):
        if environ.get(key):
            headers.append((name, str(environ[key]).encode("latin-1")))
    client = None
    if environ.get("REMOTE_ADDR"):
        client = (str(environ["REMOTE_ADDR"]), int(environ.get("REMOTE_PORT") or 0))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")).partition("/")[2] or "1.1",
        "method": environ["REQUEST_METHOD"],
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": str(environ.get("QUERY_STRING", "")).encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": client,
        "server": (str(environ.get("SERVER_NAME", "")), int(environ.get("SERVER_PORT") or 0)),
        "extensions": {},
        "wsgi_environ": environ,
        STREAMS_KEY: False,
    }


class _Bridge:
    """The SDK's ASGI app on an event loop of its own, started once per process."""

    def __init__(self, keys: Mountable, app: Flask, path: str, options: dict[str, Any]) -> None:
        self.keys, self.app, self.path, self.options = keys, app, path, options
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.asgi: ASGI | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> tuple[ASGI, asyncio.AbstractEventLoop]:
        if self.pid != os.getpid():
            with self.lock:
                if self.pid != os.getpid():
                    self.asgi, self.loop = self._start()
                    self.pid = os.getpid()
        return cast(ASGI, self.asgi), cast(asyncio.AbstractEventLoop, self.loop)

    def _start(self) -> tuple[ASGI, asyncio.AbstractEventLoop]:
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
        return cast(ASGI, guarded), loop

    def answer(self, environ: dict[str, Any], body: bytes) -> Response:
        """The ASGI app's complete answer to the request (blocks this worker until then)."""
        app, loop = self.get()
        answer = _Answer(body)

        async def exchange() -> Response:
            return await answer.exchange(app, _scope(environ, self.path))

        future = asyncio.run_coroutine_threadsafe(exchange(), loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # the worker is being stopped (a timeout): no task left behind
            raise


def mount(keys: Mountable, app: Flask, path: str, **options: Any) -> None:
    """Answer POST *path* with the MCP server, behind the app's own key check."""
    bridge = _Bridge(keys, app, path, options)
    limit = int(options.get("max_request_body_size", DEFAULT_MAX_REQUEST_BODY_SIZE))

    def mcp_endpoint() -> Response:
        verified = authenticate()  # exactly require_key's checks; errors render as usual
        if request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge()
        body = request.stream.read(limit + 1)
        if len(body) > limit:
            raise RequestEntityTooLarge()
        environ = request.environ
        environ[ENVIRON_KEY] = access_token_for(verified)
        response = bridge.answer(environ, body)
        response_class = cast(type[Response], current_app.response_class)
        return response_class(
            response.get_data(), status=response.status_code, headers=response.headers
        )

    app.add_url_rule(path, endpoint="apikeys_mcp", view_func=mcp_endpoint, methods=["POST"])
