"""Real MCP clients against the example app under every server model, a few times each.

Claude Code (the page's ``claude mcp add ...`` as pasted, then ``claude mcp list``),
mcp-remote as Claude Desktop runs it (the page's JSON, spoken to over stdio), and the MCP
Inspector's CLI (Bearer and ``X-API-Key``), against ``flask run``, gunicorn's sync,
gthread and gevent workers (the server mounted at ``/mcp``) and the separate uvicorn
process (which also serves SSE). The clients come from npm (``tests/mcp/realclients.py``
installs them into ``.npm-clients/``); without npm or the registry these tests skip,
saying why, and fail under ``CI``. ``scripts/mcp-clients`` runs 20 of each, quiet and
with the cores busy.

Claude Code is only listed here: calling a tool through it needs its non-interactive
mode, which needs a model account. ``claude mcp list`` does connect and fetch the tools
(with a 5-second timeout), which is where it failed.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from flask_apikeys.web.pages.snippets import build_snippets
from tests.conftest import service_unavailable
from tests.mcp import realclients as rc
from tests.mcp.conftest import Keys, server_env

pytestmark = pytest.mark.servers  # starts real servers of every model

ENV = "FSK_API_KEY"
CONNECTIONS = 2  # per client and server model, here; scripts/mcp-clients does 20


@pytest.fixture(scope="module")
def clients() -> Path:
    """The ``node_modules/.bin`` of the pinned npm clients."""
    try:
        return rc.install_clients()
    except rc.Unavailable as exc:
        service_unavailable("the npm MCP clients", str(exc))
        raise


@pytest.fixture(scope="module", params=rc.MODELS)
def server(
    request: pytest.FixtureRequest,
    clients: Path,
    mcp_app: Any,
    mcp_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[rc.Server]:
    """The example app under one server model, on the tests' shared database."""
    if request.param == "gunicorn-gevent":
        pytest.importorskip("gevent", reason="gunicorn's gevent workers need gevent")
    started = rc.start_server(
        request.param, server_env(mcp_database), tmp_path_factory.mktemp(request.param)
    )
    try:
        yield started
    finally:
        started.kill()


def snippets(server: rc.Server) -> dict[str, str]:
    base = f"http://127.0.0.1:{server.port}"
    made = build_snippets(
        env_var=ENV,
        api_url=f"{base}/v1/me/permissions",
        mcp_url=f"{base}/mcp",
        sse_url=f"{base}/sse" if server.model in rc.SSE_MODELS else None,
        server_name="ledgerly",
        placeholder=rc.PLACEHOLDER,
    )
    return {s["id"]: s["text"] for s in made}


def test_claude_code_connects_with_the_pages_command(
    server: rc.Server, clients: Path, keys: Keys, tmp_path: Path
) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])
    command = snippets(server)["mcp-claude-code"]
    for n in range(CONNECTIONS):
        home = tmp_path / f"home{n}"
        outcome = rc.claude_code(clients, home, command, "ledgerly", **{ENV: secret})
        assert outcome.ok, outcome.detail


def test_claude_code_is_refused_once_the_key_is_revoked(
    server: rc.Server, clients: Path, keys: Keys, tmp_path: Path
) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])
    command = snippets(server)["mcp-claude-code"]
    keys.revoke(secret)
    outcome = rc.claude_code(clients, tmp_path / "home", command, "ledgerly", **{ENV: secret})
    assert not outcome.ok
    assert "Connected" not in outcome.detail, outcome.detail


def test_mcp_remote_as_claude_desktop_runs_it(
    server: rc.Server, clients: Path, keys: Keys, tmp_path: Path
) -> None:
    secret = keys.issue("bob@acme.test", ["client.read", "invoice.read"])
    entry = json.loads(snippets(server)["mcp-claude-desktop"])["mcpServers"]["ledgerly"]
    outcome = anyio.run(
        rc.mcp_remote, clients, tmp_path, entry, secret, rc.PLACEHOLDER, ("list_clients", {})
    )
    assert outcome.ok, outcome.detail
    assert outcome.tools == [
        "get_invoice",
        "list_clients",
        "list_invoices",
        "search_invoices",
    ]


def test_the_inspector_with_bearer_and_with_x_api_key(
    server: rc.Server, clients: Path, keys: Keys, tmp_path: Path
) -> None:
    secret = keys.issue("bob@acme.test", ["invoice.read"])
    listed = rc.inspector(
        clients, tmp_path, server.url, {"Authorization": f"Bearer {secret}"}, "tools/list"
    )
    assert listed.ok, listed.detail
    names = sorted(tool["name"] for tool in listed.data["tools"])
    assert names == ["get_invoice", "list_invoices", "search_invoices"]
    called = rc.inspector(
        clients,
        tmp_path,
        server.url,
        {"X-API-Key": secret},
        "tools/call",
        tool="get_invoice",
        arguments={"number": "INV-1-00002"},
    )
    assert called.ok, called.detail
    assert called.data["structuredContent"]["number"] == "INV-1-00002"


def test_every_tool_schema_the_inspector_lists_is_valid_json_schema(
    server: rc.Server, clients: Path, keys: Keys, tmp_path: Path
) -> None:
    """What a model reads to pick a tool and fill it in: a description, and input and
    output schemas that are valid JSON Schema with every parameter described."""
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    secret = keys.issue("alice@acme.test", [], full_access=True)
    listed = rc.inspector(
        clients, tmp_path, server.url, {"Authorization": f"Bearer {secret}"}, "tools/list"
    )
    assert listed.ok, listed.detail
    tools = {tool["name"]: tool for tool in listed.data["tools"]}
    assert sorted(tools) == [
        "create_invoice",
        "get_invoice",
        "list_clients",
        "list_invoices",
        "search_invoices",
    ]
    for name, tool in tools.items():
        assert len(tool.get("description", "")) > 30, name
        for schema in (tool["inputSchema"], tool.get("outputSchema")):
            if schema is not None:
                validator_for(schema, default=Draft202012Validator).check_schema(schema)
        properties = tool["inputSchema"].get("properties", {})
        assert all(p.get("description") for p in properties.values()), name
    search = Draft202012Validator(tools["search_invoices"]["inputSchema"])
    assert search.is_valid({"status": "paid", "issued_from": "2026-01-01", "text": "wayne"})
    assert not search.is_valid({"status": "late"})
    assert not search.is_valid({"limit": 0})
    create = Draft202012Validator(tools["create_invoice"]["inputSchema"])
    assert create.is_valid({"client_id": 1, "amount_cents": 12500})
    assert not create.is_valid({"client_id": 1})


def test_the_inspector_cannot_call_a_tool_the_key_lacks(
    server: rc.Server, clients: Path, keys: Keys, tmp_path: Path
) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])
    called = rc.inspector(
        clients,
        tmp_path,
        server.url,
        {"Authorization": f"Bearer {secret}"},
        "tools/call",
        tool="search_invoices",
    )
    assert not called.ok
    # The Inspector looks the tool up first: the key does not even see it.
    assert called.data["error"]["code"] == "tool_not_found", called.detail


def test_sse_for_older_clients_where_the_server_holds_streams(
    server: rc.Server, clients: Path, keys: Keys, tmp_path: Path
) -> None:
    texts = snippets(server)
    if server.model not in rc.SSE_MODELS:
        assert "mcp-sse" not in texts
        assert server.status("/sse", method="GET") == 404  # WSGI workers hold no streams
        return
    secret = keys.issue("bob@acme.test", ["client.read"])
    entry = json.loads(texts["mcp-sse"])["mcpServers"]["ledgerly"]
    assert entry["type"] == "sse"
    pasted = json.dumps(entry).replace(rc.PLACEHOLDER, secret)
    add = f"claude mcp add-json ledgerly {shlex.quote(pasted)}"  # the JSON, as pasted
    outcome = rc.claude_code(clients, tmp_path / "claude", add, "ledgerly")
    assert outcome.ok, outcome.detail
    called = rc.inspector(
        clients,
        tmp_path / "inspector",
        entry["url"],
        {"X-API-Key": secret},
        "tools/call",
        transport="sse",
        tool="list_clients",
    )
    assert called.ok, called.detail
    assert called.data["isError"] is False


README_PORTS = {"flask-run": "5000", "uvicorn": "8001"}  # the servers the README starts


@pytest.mark.parametrize("server", list(README_PORTS), indirect=True)
def test_the_readmes_own_claude_code_commands(
    server: rc.Server, clients: Path, keys: Keys, tmp_path: Path
) -> None:
    """The README's ``claude mcp add`` line for the server it names, as pasted (its key in
    ``$KEY``, the port that of this test's server)."""
    readme = (rc.ROOT / "README.md").read_text()
    port = README_PORTS[server.model]
    (line,) = [
        line
        for line in readme.splitlines()
        if line.startswith("claude mcp add ") and f"127.0.0.1:{port}/mcp" in line
    ]
    line = line.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{server.port}/")
    name = shlex.split(line)[5]
    secret = keys.issue("bob@acme.test", ["client.read"])
    outcome = rc.claude_code(clients, tmp_path, line, name, KEY=secret)
    assert outcome.ok, outcome.detail
