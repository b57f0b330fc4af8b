"""The show-once page's MCP snippets, parsed as their tools parse them, then used.

Shell snippets run in bash (with ``claude`` a stand-in that prints its arguments);
JSON configs are parsed, the client's substitution (``${input:...}``, ``${env:...}``,
mcp-remote's ``${AUTH}``, the key pasted over the placeholder) is applied as that client
or its user does, and the resulting URL and header connect the official MCP client to a
real server. ``tests/mcp/test_real_clients.py`` runs them with the real clients;
``tests/pages/test_snippets_run.py`` runs the curl, Python, JavaScript and Go ones.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import anyio
import pytest

from flask_apikeys.web.pages.snippets import build_snippets, env_var_name
from tests.mcp.conftest import Keys, Proc, mcp_session

pytestmark = pytest.mark.servers  # starts real gunicorn and uvicorn servers

ENV = "FSK_API_KEY"
PLACEHOLDER = "YOUR_API_KEY"


@pytest.fixture(scope="module")
def secret(keys: Keys) -> str:
    return keys.issue("bob@acme.test", ["client.read"])


def made(base: str, sse: bool = False) -> dict[str, str]:
    snippets = build_snippets(
        env_var=ENV,
        api_url=f"{base}/v1/me/permissions",
        mcp_url=f"{base}/mcp",
        sse_url=f"{base}/sse" if sse else None,
        server_name="ledgerly",
        placeholder=PLACEHOLDER,
    )
    assert len({s["id"] for s in snippets}) == len(snippets)
    return {s["id"]: s["text"] for s in snippets}


@pytest.fixture(scope="module")
def snippets(flask_server: Proc) -> dict[str, str]:
    return made(f"http://127.0.0.1:{flask_server.port}")


def bash(script: str, typed: str = "") -> str:
    done = subprocess.run(
        ["bash", "-c", script],
        input=typed,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ["PATH"]},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def tools_with(url: str, headers: dict[str, str]) -> list[str]:
    async def run() -> list[str]:
        async with mcp_session(url, headers) as session:
            return sorted(t.name for t in (await session.list_tools()).tools)

    return anyio.run(run)


def header(line: str) -> dict[str, str]:
    name, _, value = line.partition(":")
    return {name.strip(): value.strip()}


def pasted(value: Any, secret: str) -> Any:
    """*value* (a config's JSON) with the user's key pasted over the placeholder."""
    return json.loads(json.dumps(value).replace(PLACEHOLDER, secret))


def test_no_snippet_holds_a_secret_and_the_configs_hold_the_placeholder(
    snippets: dict[str, str], secret: str
) -> None:
    assert not [name for name, text in snippets.items() if secret in text]
    for name in ("mcp-claude-desktop", "mcp", "mcp-x-api-key"):
        assert PLACEHOLDER in snippets[name], name


def test_claude_code_command(snippets: dict[str, str], secret: str) -> None:
    stand_in = 'claude() { printf "%s\\0" "$@"; }\n'
    script = stand_in + snippets["env"] + "\n" + snippets["mcp-claude-code"]
    args = bash(script, typed=secret + "\n").split("\0")[:-1]
    assert args[:5] == ["mcp", "add", "--transport", "http", "ledgerly"]
    url, flag, value = args[5:]
    assert flag == "--header" and value == f"Authorization: Bearer {secret}"
    assert tools_with(url, header(value)) == ["list_clients"]


def test_claude_desktop_config(snippets: dict[str, str], secret: str) -> None:
    server = json.loads(snippets["mcp-claude-desktop"])["mcpServers"]["ledgerly"]
    assert server["command"] == "npx"
    assert PLACEHOLDER not in json.dumps(server["args"])  # process lists show arguments
    assert server["args"][:2] == ["-y", "mcp-remote"]
    url, flag, value = server["args"][2:]
    assert flag == "--header"
    env = pasted(server["env"], secret)
    value = value.replace("${AUTH}", env["AUTH"])  # as mcp-remote substitutes
    assert tools_with(url, header(value)) == ["list_clients"]


def test_vscode_prompts_for_the_key(snippets: dict[str, str], secret: str) -> None:
    config = json.loads(snippets["mcp-vscode"])
    (prompt,) = config["inputs"]
    assert prompt["type"] == "promptString" and prompt["password"] is True
    server = config["servers"]["ledgerly"]
    assert server["type"] == "http"
    headers = {
        k: v.replace(f"${{input:{prompt['id']}}}", secret) for k, v in server["headers"].items()
    }
    assert tools_with(server["url"], headers) == ["list_clients"]


def test_cursor_reads_the_environment(snippets: dict[str, str], secret: str) -> None:
    server = json.loads(snippets["mcp-cursor"])["mcpServers"]["ledgerly"]
    headers = {k: v.replace(f"${{env:{ENV}}}", secret) for k, v in server["headers"].items()}
    assert tools_with(server["url"], headers) == ["list_clients"]


@pytest.mark.parametrize("snippet", ["mcp", "mcp-x-api-key"])
def test_plain_mcp_server_entries(snippets: dict[str, str], snippet: str, secret: str) -> None:
    server = pasted(json.loads(snippets[snippet])["mcpServers"]["ledgerly"], secret)
    assert server["type"] == "http"
    assert tools_with(server["url"], server["headers"]) == ["list_clients"]


def test_the_sse_entry_only_with_an_sse_url() -> None:
    assert "mcp-sse" not in made("https://h")
    server = json.loads(made("https://h", sse=True)["mcp-sse"])["mcpServers"]["ledgerly"]
    assert server == {
        "type": "sse",
        "url": "https://h/sse",
        "headers": {"Authorization": f"Bearer {PLACEHOLDER}"},
    }


def test_x_api_key_only_app_and_env_var_setting() -> None:
    texts = {
        s["id"]: s["text"]
        for s in build_snippets(
            env_var="LEDGERLY_KEY",
            api_url="https://h/v1",
            mcp_url="https://h/mcp",
            sse_url="https://h/sse",
            bearer=False,
            header="X-API-Key",
            placeholder=PLACEHOLDER,
        )
    }
    assert "X-API-Key: $LEDGERLY_KEY" in texts["curl"]
    assert json.loads(texts["mcp"])["mcpServers"]["api"]["headers"] == {"X-API-Key": PLACEHOLDER}
    assert json.loads(texts["mcp-sse"])["mcpServers"]["api"]["headers"] == {
        "X-API-Key": PLACEHOLDER
    }
    assert "mcp-x-api-key" not in texts
    assert env_var_name({"APIKEYS_ENV_VAR": "LEDGERLY_KEY"}, "fsk") == "LEDGERLY_KEY"
    assert env_var_name({"APIKEYS_ENV_VAR": None}, "fsk") == "FSK_API_KEY"
    no_mcp = [s["id"] for s in build_snippets(env_var="E", api_url="u", sse_url="https://h/sse")]
    assert not [name for name in no_mcp if name.startswith("mcp")]


def test_the_show_once_page_builds_them_from_the_settings(mcp_app: Any) -> None:
    from flask_apikeys.web.pages.keys import _snippets

    settings = {"APIKEYS_ENV_VAR": "LEDGERLY_API_KEY", "APIKEYS_MCP_SSE_URL": None}
    with mcp_app.test_request_context("/", base_url="https://ledgerly.example"):
        saved = {name: mcp_app.config.get(name) for name in settings}
        mcp_app.config.update(settings)
        try:
            service = mcp_app.extensions["apikeys"].service
            without_sse = {s["id"]: s["text"] for s in _snippets(service)}
            mcp_app.config["APIKEYS_MCP_SSE_URL"] = "https://mcp.ledgerly.example/sse"
            with_sse = {s["id"]: s["text"] for s in _snippets(service)}
        finally:
            mcp_app.config.update(saved)
    assert "LEDGERLY_API_KEY" in without_sse["env"]
    assert "https://ledgerly.example/mcp" in without_sse["mcp-claude-code"]
    assert "${env:LEDGERLY_API_KEY}" in without_sse["mcp-cursor"]
    assert "mcp-sse" not in without_sse
    assert "https://mcp.ledgerly.example/sse" in with_sse["mcp-sse"]
