"""The example's MCP server, mounted and as its own process, driven by the official client."""

from __future__ import annotations

import http.client
import json
from typing import Any

import anyio
import pytest

from tests.mcp.conftest import Keys, Proc, bearer, mcp_session, x_api_key

pytestmark = pytest.mark.servers  # starts real gunicorn and uvicorn servers


def tool_names(url: str, headers: dict[str, str]) -> list[str]:
    async def run() -> list[str]:
        async with mcp_session(url, headers) as session:
            return sorted(tool.name for tool in (await session.list_tools()).tools)

    return anyio.run(run)


def call(
    url: str, headers: dict[str, str], name: str, arguments: dict[str, Any] | None = None
) -> Any:
    async def run() -> Any:
        async with mcp_session(url, headers) as session:
            return await session.call_tool(name, arguments or {})

    return anyio.run(run)


def text(result: Any) -> str:
    return "\n".join(part.text for part in result.content)


def test_initialize_names_the_server(mcp_server: Proc, keys: Keys) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])

    async def run() -> Any:
        async with mcp_session(mcp_server.url, bearer(secret)) as session:
            return session

    session = anyio.run(run)
    assert session is not None


@pytest.mark.parametrize("headers", [bearer, x_api_key], ids=["bearer", "x-api-key"])
def test_tools_list_shows_a_key_only_the_tools_it_may_call(
    mcp_server: Proc, keys: Keys, headers: Any
) -> None:
    reader = keys.issue("bob@acme.test", ["client.read"])
    writer = keys.issue("alice@acme.test", ["invoice.read", "invoice.write"])
    everything = keys.issue("alice@acme.test", [], full_access=True)
    assert tool_names(mcp_server.url, headers(reader)) == ["list_clients"]
    assert tool_names(mcp_server.url, headers(writer)) == [
        "create_invoice",
        "get_invoice",
        "list_invoices",
        "search_invoices",
    ]
    assert tool_names(mcp_server.url, headers(everything)) == [
        "create_invoice",
        "get_invoice",
        "list_clients",
        "list_invoices",
        "search_invoices",
    ]


def test_a_tool_answers_with_the_keys_own_organization_only(mcp_server: Proc, keys: Keys) -> None:
    acme = call(
        mcp_server.url, bearer(keys.issue("bob@acme.test", ["client.read"])), "list_clients"
    )
    globex = call(
        mcp_server.url, x_api_key(keys.issue("carol@globex.test", ["client.read"])), "list_clients"
    )
    assert not acme.is_error and not globex.is_error
    acme_ids = {c["id"] for c in acme.structured_content["result"]}
    globex_ids = {c["id"] for c in globex.structured_content["result"]}
    assert acme_ids and globex_ids and not acme_ids & globex_ids


def test_create_invoice_writes_for_a_key_with_invoice_write(mcp_server: Proc, keys: Keys) -> None:
    secret = keys.issue("alice@acme.test", ["invoice.read", "invoice.write", "client.read"])
    client_id = call(mcp_server.url, bearer(secret), "list_clients").structured_content["result"][
        0
    ]["id"]
    created = call(
        mcp_server.url,
        bearer(secret),
        "create_invoice",
        {"client_id": client_id, "amount_cents": 4200},
    )
    assert not created.is_error, text(created)
    number = created.structured_content["number"]
    listed = call(mcp_server.url, bearer(secret), "list_invoices").structured_content["result"]
    assert number in [invoice["number"] for invoice in listed]


def test_a_key_lacking_the_scope_gets_a_tool_error_naming_it(mcp_server: Proc, keys: Keys) -> None:
    secret = keys.issue("bob@acme.test", ["client.read", "invoice.read"])
    result = call(
        mcp_server.url, bearer(secret), "create_invoice", {"client_id": 1, "amount_cents": 100}
    )
    assert result.is_error
    assert "invoice.write" in text(result)


def test_no_key_is_a_401_with_the_bearer_challenge_and_no_oauth_metadata(mcp_server: Proc) -> None:
    status, headers, body = mcp_server.post()
    assert status == 401
    assert headers["www-authenticate"].startswith('Bearer realm="')
    assert "resource_metadata" not in headers["www-authenticate"]
    assert json.loads(body)["error"] == "missing_api_key"
    for path in (
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
    ):
        assert mcp_server.post(path, method="GET")[0] == 404, path


def test_the_official_client_without_a_key_is_refused(mcp_server: Proc) -> None:
    statuses: list[int] = []

    async def run() -> None:
        async with mcp_session(mcp_server.url, {}, statuses=statuses) as session:
            await session.list_tools()

    with pytest.raises(BaseException) as refused:
        anyio.run(run)
    assert "Server returned an error response" in repr(refused.value)
    assert statuses == [401]  # initialize, refused: nothing else was tried (no OAuth hunt)


def test_a_bad_checksum_is_a_401_without_a_query(mcp_server: Proc, keys: Keys) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])
    typo = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    before = mcp_server.statement_count()
    status, headers, body = mcp_server.post(headers=bearer(typo))
    assert status == 401
    assert json.loads(body)["error"] == "invalid_api_key"
    assert 'error="invalid_token"' in headers["www-authenticate"]
    assert mcp_server.statement_count() == before
    # ... while a real key's request does reach the database (the log works).
    assert mcp_server.post(headers=bearer(secret))[0] != 401
    assert mcp_server.statement_count() > before


def test_a_key_revoked_during_a_session_is_refused_on_its_next_call(
    mcp_server: Proc, keys: Keys
) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])
    outcomes: list[str] = []
    statuses: list[int] = []

    async def run() -> None:
        async with mcp_session(mcp_server.url, bearer(secret), statuses=statuses) as session:
            first = await session.call_tool("list_clients", {})
            outcomes.append("served" if not first.is_error else text(first))
            keys.revoke(secret)
            try:
                again = await session.call_tool("list_clients", {})
            except Exception as exc:  # the HTTP 401 surfaces as the client's error
                outcomes.append(f"refused: {exc!r}")
            else:
                outcomes.append("served again" if not again.is_error else text(again))

    anyio.run(run)
    assert outcomes[0] == "served"
    assert outcomes[1].startswith("refused"), outcomes
    assert statuses[-1] == 401 and 401 not in statuses[:-1], statuses
    status, _, body = mcp_server.post(headers=bearer(secret))
    assert (status, json.loads(body)["error"]) == (401, "revoked_api_key")


def test_every_call_counts_one_use_of_the_key(mcp_server: Proc, keys: Keys) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])
    posts: list[str] = []

    async def run() -> None:
        async with mcp_session(mcp_server.url, x_api_key(secret), posts) as session:
            for _ in range(3):
                await session.call_tool("list_clients", {})

    anyio.run(run)
    assert len(posts) >= 5  # initialize, initialized, three calls
    assert keys.usage_settles_at(secret, len(posts)) == len(posts)
    before = len(posts)
    anyio.run(run)
    assert len(posts) - before >= 5
    assert keys.usage_settles_at(secret, len(posts)) == len(posts)


def test_the_ip_allowlist_sees_the_client_address(mcp_server: Proc, keys: Keys) -> None:
    elsewhere = keys.issue("bob@acme.test", ["client.read"], ip_allowlist=["10.0.0.0/8"])
    here = keys.issue("bob@acme.test", ["client.read"], ip_allowlist=["127.0.0.1/32"])
    status, headers, body = mcp_server.post(headers=bearer(elsewhere))
    assert (status, json.loads(body)["error"]) == (403, "ip_not_allowed")
    assert headers["www-authenticate"].startswith("Bearer")
    assert tool_names(mcp_server.url, bearer(here)) == ["list_clients"]


def test_the_keys_rate_limit_applies(mcp_server: Proc, keys: Keys) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"], rate_limit="1/minute")
    answers = [mcp_server.post(headers=x_api_key(secret)) for _ in range(4)]
    limited = [a for a in answers if a[0] == 429]
    assert limited, [a[0] for a in answers]  # memory:// counts per process: 2 workers
    assert json.loads(limited[0][2])["error"] == "rate_limited"
    assert int(limited[0][1]["retry-after"]) >= 1


MODERN = "2026-07-28"


def modern(method: str, params: dict[str, Any] | None = None) -> tuple[bytes, dict[str, str]]:
    """A 2026-07-28 request (no handshake): its body and headers."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    params = {"_meta": meta, **(params or {})}
    body = {"jsonrpc": "2.0", "id": "1", "method": method, "params": params}
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
    }
    return json.dumps(body).encode(), headers


def test_only_a_server_that_holds_streams_offers_change_notifications(
    mcp_server: Proc, keys: Keys
) -> None:
    """Claude Code opens ``subscriptions/listen`` (a stream that stays open) right after
    ``server/discover`` when the server promises change notifications. A WSGI worker
    cannot tell that the client went away: the mounted server promises none, and refuses
    the stream at once; the separate process serves it."""
    secret = keys.issue("bob@acme.test", ["client.read"])
    body, headers = modern("server/discover")
    status, _, answer = mcp_server.post(body=body, headers={**bearer(secret), **headers})
    assert status == 200
    tools = json.loads(answer)["result"]["capabilities"]["tools"]
    body, headers = modern("subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    if mcp_server.name == "mounted":
        assert tools.get("listChanged") is False
        status, response_headers, answer = mcp_server.post(
            body=body, headers={**bearer(secret), **headers}
        )
        assert status == 404 and response_headers["content-type"] == "application/json"
        assert json.loads(answer)["error"]["code"] == -32601  # Method not found
    else:
        assert tools.get("listChanged") is True
        conn = http.client.HTTPConnection("127.0.0.1", mcp_server.port, timeout=10)
        try:
            conn.request(
                "POST",
                "/mcp",
                body=body,
                headers={**bearer(secret), **headers, "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("content-type", "").startswith("text/event-stream")
            assert b"notifications/subscriptions/acknowledged" in response.fp.readline() + (
                response.fp.readline() + response.fp.readline()
            )
        finally:
            conn.close()


def test_rate_limit_headers_on_successes_as_on_v1(
    mcp_server: Proc, flask_server: Proc, keys: Keys
) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"], rate_limit="100/minute")
    names = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")
    status, v1, _ = flask_server.post("/v1/clients", headers=bearer(secret), method="GET")
    assert status == 200 and all(name in v1 for name in names), v1
    body, headers = modern("tools/list")
    status, answered, _ = mcp_server.post(body=body, headers={**bearer(secret), **headers})
    assert status == 200
    assert {name: answered.get(name) for name in names} == {
        "ratelimit-limit": "100",
        "ratelimit-remaining": answered["ratelimit-remaining"],
        "ratelimit-reset": answered["ratelimit-reset"],
    }
    assert int(answered["ratelimit-remaining"]) < 100
    unlimited = keys.issue("bob@acme.test", ["client.read"])
    _, plain, _ = mcp_server.post(body=body, headers={**bearer(unlimited), **headers})
    assert "ratelimit-limit" not in plain  # only a limited key's answers have them, as on /v1
