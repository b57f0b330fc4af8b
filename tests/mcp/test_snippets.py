"""Every snippet of the show-once page, parsed as its tool parses it, then used.

Shell snippets run in bash (with ``claude`` a stand-in that prints its arguments);
JSON configs are parsed, the client's substitution (``${input:...}``, ``${env:...}``,
mcp-remote's ``${AUTH}``) is applied as that client does, and the resulting URL and
header connect the official MCP client to the real mounted server.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from typing import Any

import anyio
import pytest

from flask_apikeys.web.pages.snippets import build_snippets, env_var_name
from tests.mcp.conftest import Keys, Proc, mcp_session

pytestmark = pytest.mark.servers  # starts real gunicorn and uvicorn servers

ENV = "FSK_API_KEY"


@pytest.fixture(scope="module")
def secret(keys: Keys) -> str:
    return keys.issue("bob@acme.test", ["client.read"])


@pytest.fixture(scope="module")
def snippets(flask_server: Proc, secret: str) -> dict[str, str]:
    base = f"http://127.0.0.1:{flask_server.port}"
    made = build_snippets(
        secret,
        env_var=ENV,
        api_url=f"{base}/v1/me/permissions",
        mcp_url=f"{base}/mcp",
        server_name="ledgerly",
    )
    assert len({s["id"] for s in made}) == len(made)
    return {s["id"]: s["text"] for s in made}


def bash(script: str) -> str:
    done = subprocess.run(
        ["bash", "-c", script],
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


def test_env_curl_and_python_run(snippets: dict[str, str], secret: str) -> None:
    assert shlex.split(snippets["env"]) == ["export", f"{ENV}={secret}"]
    answer = json.loads(bash(snippets["env"] + "\n" + snippets["curl"] + " --silent"))
    assert answer["scopes"] == ["client.read"]
    done = subprocess.run(
        [sys.executable, "-c", snippets["python"]],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, ENV: secret},
    )
    assert done.returncode == 0, done.stderr
    assert "client.read" in done.stdout


def test_claude_code_command(snippets: dict[str, str], secret: str, flask_server: Proc) -> None:
    assert secret not in snippets["mcp-claude-code"]
    stand_in = 'claude() { printf "%s\\0" "$@"; }\n'
    args = bash(stand_in + snippets["env"] + "\n" + snippets["mcp-claude-code"]).split("\0")[:-1]
    assert args[:5] == ["mcp", "add", "--transport", "http", "ledgerly"]
    url, flag, value = args[5:]
    assert flag == "--header" and value == f"Authorization: Bearer {secret}"
    assert tools_with(url, header(value)) == ["list_clients"]


def test_claude_desktop_config(snippets: dict[str, str], secret: str) -> None:
    server = json.loads(snippets["mcp-claude-desktop"])["mcpServers"]["ledgerly"]
    assert server["command"] == "npx"
    assert secret not in json.dumps(server["args"])  # process lists show arguments
    assert server["args"][:2] == ["-y", "mcp-remote"]
    url, flag, value = server["args"][2:]
    assert flag == "--header"
    value = value.replace("${AUTH}", server["env"]["AUTH"])  # as mcp-remote substitutes
    assert tools_with(url, header(value)) == ["list_clients"]


def test_vscode_prompts_for_the_key(snippets: dict[str, str], secret: str) -> None:
    assert secret not in snippets["mcp-vscode"]
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
    assert secret not in snippets["mcp-cursor"]
    server = json.loads(snippets["mcp-cursor"])["mcpServers"]["ledgerly"]
    headers = {k: v.replace(f"${{env:{ENV}}}", secret) for k, v in server["headers"].items()}
    assert tools_with(server["url"], headers) == ["list_clients"]


@pytest.mark.parametrize("snippet", ["mcp", "mcp-x-api-key"])
def test_plain_mcp_server_entries(snippets: dict[str, str], snippet: str) -> None:
    server = json.loads(snippets[snippet])["mcpServers"]["ledgerly"]
    assert server["type"] == "http"
    assert tools_with(server["url"], server["headers"]) == ["list_clients"]


def test_x_api_key_only_app_and_env_var_setting() -> None:
    made = build_snippets(
        "fsk_x",
        env_var="LEDGERLY_KEY",
        api_url="https://h/v1",
        mcp_url="https://h/mcp",
        bearer=False,
        header="X-API-Key",
    )
    texts = {s["id"]: s["text"] for s in made}
    assert "X-API-Key: $LEDGERLY_KEY" in texts["curl"]
    assert json.loads(texts["mcp"])["mcpServers"]["api"]["headers"] == {"X-API-Key": "fsk_x"}
    assert "mcp-x-api-key" not in texts
    assert env_var_name({"APIKEYS_ENV_VAR": "LEDGERLY_KEY"}, "fsk") == "LEDGERLY_KEY"
    assert env_var_name({"APIKEYS_ENV_VAR": None}, "fsk") == "FSK_API_KEY"
    assert [s["id"] for s in build_snippets("k", env_var="E", api_url="u")] == [
        "env",
        "curl",
        "python",
    ]


def test_the_show_once_page_builds_them_from_the_settings(mcp_app: Any) -> None:
    from flask_apikeys.web.pages.keys import _snippets

    with mcp_app.test_request_context("/", base_url="https://ledgerly.example"):
        mcp_app.config["APIKEYS_ENV_VAR"] = "LEDGERLY_API_KEY"
        try:
            made = {
                s["id"]: s["text"]
                for s in _snippets("fsk_abc", mcp_app.extensions["apikeys"].service)
            }
        finally:
            mcp_app.config["APIKEYS_ENV_VAR"] = None
    assert made["env"] == 'export LEDGERLY_API_KEY="fsk_abc"'
    assert "https://ledgerly.example/mcp" in made["mcp-claude-code"]
    assert "${env:LEDGERLY_API_KEY}" in made["mcp-cursor"]


def test_claude_desktop_config_runs_with_mcp_remote(
    snippets: dict[str, str], tmp_path: Any
) -> None:
    """The config as Claude Desktop runs it: npx mcp-remote, a stdio proxy, with the key
    only in its environment; the official client talks stdio to it."""
    import shutil

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    from tests.conftest import service_unavailable

    if shutil.which("npx") is None:
        service_unavailable("npx (Node.js)", "mcp-remote runs with npx")
    server = json.loads(snippets["mcp-claude-desktop"])["mcpServers"]["ledgerly"]
    params = StdioServerParameters(
        command=server["command"],
        args=server["args"],
        env={**server["env"], "PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        cwd=str(tmp_path),
    )

    async def run() -> list[str]:
        with anyio.fail_after(180):  # the first run downloads mcp-remote from npm
            async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                return sorted(t.name for t in (await s.list_tools()).tools)

    assert anyio.run(run) == ["list_clients"]
