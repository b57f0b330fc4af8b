"""SSE for older clients (the MCP 2024-11-05 transport), on the separate ASGI process.

``GET /sse`` opens a session's stream, the client posts its messages to ``/messages/``;
each HTTP request is checked like the streamable ones (the stream when it opens, then
every message), ``tools/list`` shows a key only its tools, a session answers only the key
that opened it, and a revoked key's next message is refused. Driven by the official
client's ``sse_client``. The mounted server (WSGI workers) serves no SSE.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from tests.mcp.conftest import Keys, Proc, _uvicorn, bearer, server_env, x_api_key

pytestmark = pytest.mark.servers  # starts real uvicorn and gunicorn servers


@pytest.fixture(scope="module")
def separate(mcp_app: Any, mcp_database: str, tmp_path_factory: Any) -> Iterator[Proc]:
    proc = _uvicorn(
        "separate",
        "tests.mcp.servers:separate_app",
        server_env(mcp_database),
        tmp_path_factory.mktemp("sse"),
    )
    try:
        yield proc
    finally:
        proc.kill()


def sse_url(proc: Proc) -> str:
    return f"http://127.0.0.1:{proc.port}/sse"


@contextlib.asynccontextmanager
async def sse_session(
    url: str, headers: dict[str, str], statuses: list[tuple[str, int]] | None = None
) -> AsyncIterator[Any]:
    """An initialized ``ClientSession`` over the SDK's SSE client; *statuses* collects
    ``(method, status)`` of each HTTP response."""
    import httpx2
    from mcp import ClientSession
    from mcp.client.sse import sse_client

    async def record(response: Any) -> None:
        if statuses is not None:
            statuses.append((response.request.method, response.status_code))

    def factory(
        headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None
    ) -> Any:
        return httpx2.AsyncClient(
            headers=headers, timeout=timeout, auth=auth, event_hooks={"response": [record]}
        )

    async with (
        sse_client(url, headers=headers, httpx_client_factory=factory) as (read, write),
        ClientSession(read, write) as session,
    ):
        with anyio.fail_after(20):
            await session.initialize()
        yield session


def tool_names(url: str, headers: dict[str, str]) -> list[str]:
    async def run() -> list[str]:
        async with sse_session(url, headers) as session:
            return sorted(tool.name for tool in (await session.list_tools()).tools)

    return anyio.run(run)


@pytest.mark.parametrize("headers", [bearer, x_api_key], ids=["bearer", "x-api-key"])
def test_tools_list_over_sse_shows_a_key_only_its_tools(
    separate: Proc, keys: Keys, headers: Any
) -> None:
    reader = keys.issue("bob@acme.test", ["client.read"])
    invoices = keys.issue("bob@acme.test", ["invoice.read"])
    assert tool_names(sse_url(separate), headers(reader)) == ["list_clients"]
    assert tool_names(sse_url(separate), headers(invoices)) == [
        "get_invoice",
        "list_invoices",
        "search_invoices",
    ]


def test_a_tool_call_over_sse_sees_the_keys_organization_only(separate: Proc, keys: Keys) -> None:
    async def clients(secret: str) -> set[int]:
        async with sse_session(sse_url(separate), bearer(secret)) as session:
            result = await session.call_tool("list_clients", {})
            assert not result.is_error
            return {c["id"] for c in result.structured_content["result"]}

    acme = anyio.run(clients, keys.issue("bob@acme.test", ["client.read"]))
    globex = anyio.run(clients, keys.issue("carol@globex.test", ["client.read"]))
    assert acme and globex and not acme & globex


def test_without_a_key_the_stream_is_a_401_with_no_oauth_metadata(separate: Proc) -> None:
    status, headers, body = separate.post("/sse", method="GET")
    assert status == 401
    assert headers["www-authenticate"].startswith('Bearer realm="')
    assert "resource_metadata" not in headers["www-authenticate"]
    assert json.loads(body)["error"] == "missing_api_key"
    status, _, _ = separate.post("/messages/?session_id=" + "0" * 32)
    assert status == 401


def test_a_revoked_key_is_refused_on_its_next_message(separate: Proc, keys: Keys) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])
    statuses: list[tuple[str, int]] = []
    outcomes: list[str] = []

    async def run() -> None:
        async with sse_session(sse_url(separate), bearer(secret), statuses) as session:
            first = await session.call_tool("list_clients", {})
            outcomes.append("served" if not first.is_error else "error")
            keys.revoke(secret)
            try:
                with anyio.fail_after(3):  # the refused POST never gets an answer
                    await session.call_tool("list_clients", {})
            except TimeoutError:
                outcomes.append("no answer")
            else:
                outcomes.append("served again")

    anyio.run(run)
    assert outcomes == ["served", "no answer"]
    assert statuses[0] == ("GET", 200)
    assert statuses[-1] == ("POST", 401), statuses
    assert ("POST", 401) not in statuses[:-1]


def test_a_session_answers_only_the_key_that_opened_it(separate: Proc, keys: Keys) -> None:
    owner = keys.issue("bob@acme.test", ["client.read"])
    other = keys.issue("alice@acme.test", ["client.read"])
    found: list[str] = []

    async def run() -> None:
        import httpx2

        url = sse_url(separate)
        endpoint = anyio.Event()
        async with (
            httpx2.AsyncClient(timeout=10) as http,
            http.stream("GET", url, headers=bearer(owner)) as stream,
            anyio.create_task_group() as tasks,
        ):

            async def read() -> None:  # the whole stream: leaving it would end the session
                async for line in stream.aiter_lines():
                    if line.startswith("data: /messages/"):
                        found.append(line.removeprefix("data: "))
                        endpoint.set()

            tasks.start_soon(read)
            await endpoint.wait()
            message = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            target = f"http://127.0.0.1:{separate.port}{found[0]}"
            mine = await http.post(target, json=message, headers=bearer(owner))
            theirs = await http.post(target, json=message, headers=bearer(other))
            found.extend([str(mine.status_code), str(theirs.status_code)])
            tasks.cancel_scope.cancel()

    anyio.run(run)
    assert found[1:] == ["202", "404"]  # as if there were no such session


def test_the_mounted_server_serves_no_sse(flask_server: Proc, keys: Keys) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])
    assert flask_server.post("/sse", method="GET", headers=bearer(secret))[0] == 404
    assert flask_server.post("/messages/", headers=bearer(secret))[0] == 404
