"""Ready-to-paste snippets for a new key: env var, curl, Python and MCP clients.

Shown on the show-once page (``templates/apikeys/show_once.html``) and documented in
``docs/mcp.md``. Each is a ``{"id", "title", "text"}`` dict; ``tests/mcp/test_snippets.py``
parses every one (JSON, shell words) and runs the shell ones.

The MCP snippets keep the key out of files where the client allows it: Claude Code
reads it from the environment variable when the command runs, Claude Desktop gets it
through ``env`` (not the arguments, which show in process lists), VS Code prompts for it
(``inputs``) and Cursor interpolates ``${env:NAME}``. Only the plain ``mcpServers``
entry, for clients with none of these, carries the key itself.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

__all__ = ["Snippet", "build_snippets", "env_var_name"]

Snippet = dict[str, str]
MASKED = "password"  # VS Code's promptString flag: type the key without showing it


def env_var_name(config: Mapping[str, Any], prefix: str) -> str:
    """``APIKEYS_ENV_VAR``, or ``<PREFIX>_API_KEY`` (``FSK_API_KEY`` for keys ``fsk_...``)."""
    name = config.get("APIKEYS_ENV_VAR")
    return str(name) if name else f"{prefix.upper()}_API_KEY"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2)


def build_snippets(
    secret: str,
    *,
    env_var: str,
    api_url: str,
    mcp_url: str | None = None,
    server_name: str = "api",
    bearer: bool = True,
    header: str | None = "X-API-Key",
) -> list[Snippet]:
    """Every snippet for *secret*; the MCP ones only when *mcp_url* is set.

    *bearer* and *header* follow ``APIKEYS_BEARER`` and ``APIKEYS_HEADER``: the
    snippets send the key in ``Authorization: Bearer`` when the app reads it there, and
    add ``X-API-Key`` variants when the app reads that header too.
    """
    if bearer:
        name, value = "Authorization", "Bearer {}"
    elif header:
        name, value = header, "{}"
    else:
        raise ValueError("the app reads keys from no header: no snippet can send one")
    env_ref = "$" + env_var
    snippets = [
        {"id": "env", "title": "Environment variable", "text": f'export {env_var}="{secret}"'},
        {
            "id": "curl",
            "title": "curl",
            "text": f"curl -H {_dq(name + ': ' + value.format(env_ref))} \\\n  {api_url}",
        },
        {
            "id": "python",
            "title": "Python (requests)",
            "text": (
                "import os\nimport requests\n\n"
                "response = requests.get(\n"
                f"    {json.dumps(api_url)},\n"
                f'    headers={{"{name}": {_py_value(value, env_var)}}},\n'
                "    timeout=10,\n)\nprint(response.json())"
            ),
        },
    ]
    if not mcp_url:
        return snippets
    server = server_name
    input_id = f"{server}-api-key"
    snippets += [
        {
            "id": "mcp-claude-code",
            "title": "Claude Code (run after the export above)",
            "text": (
                f"claude mcp add --transport http {shlex.quote(server)} {shlex.quote(mcp_url)} \\\n"
                f"  --header {_dq(name + ': ' + value.format(env_ref))}"
            ),
        },
        {
            "id": "mcp-claude-desktop",
            "title": "Claude Desktop (claude_desktop_config.json)",
            "text": _json(
                {
                    "mcpServers": {
                        server: {
                            "command": "npx",
                            "args": ["-y", "mcp-remote", mcp_url, "--header", f"{name}:${{AUTH}}"],
                            "env": {"AUTH": value.format(secret)},
                        }
                    }
                }
            ),
        },
        {
            "id": "mcp-vscode",
            "title": "VS Code (.vscode/mcp.json, asks for the key)",
            "text": _json(
                {
                    "inputs": [
                        {
                            "type": "promptString",
                            "id": input_id,
                            "description": f"API key for {server}",
                            MASKED: True,
                        }
                    ],
                    "servers": {
                        server: {
                            "type": "http",
                            "url": mcp_url,
                            "headers": {name: value.format(f"${{input:{input_id}}}")},
                        }
                    },
                }
            ),
        },
        {
            "id": "mcp-cursor",
            "title": f"Cursor (.cursor/mcp.json, reads ${env_var})",
            "text": _json(
                {
                    "mcpServers": {
                        server: {
                            "url": mcp_url,
                            "headers": {name: value.format(f"${{env:{env_var}}}")},
                        }
                    }
                }
            ),
        },
        {
            "id": "mcp",
            "title": "Any MCP client (streamable HTTP)",
            "text": _json(
                {
                    "mcpServers": {
                        server: {
                            "type": "http",
                            "url": mcp_url,
                            "headers": {name: value.format(secret)},
                        }
                    }
                }
            ),
        },
    ]
    if bearer and header:
        snippets.append(
            {
                "id": "mcp-x-api-key",
                "title": f"Any MCP client, with the {header} header",
                "text": _json(
                    {
                        "mcpServers": {
                            server: {"type": "http", "url": mcp_url, "headers": {header: secret}}
                        }
                    }
                ),
            }
        )
    return snippets


def _dq(text: str) -> str:
    """*text* in shell double quotes (``$VAR`` still expands)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
    return f'"{escaped}"'


def _py_value(template: str, env_var: str) -> str:
    if template == "{}":
        return f"os.environ[{env_var!r}]"
    before, after = template.split("{}")
    return f"f{json.dumps(before + '{os.environ[' + repr(env_var) + ']}' + after)}"
