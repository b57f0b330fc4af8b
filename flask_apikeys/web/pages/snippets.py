"""Ready-to-paste snippets for a new key: the environment variable, curl, Python,
JavaScript, Go and MCP clients.

Shown on the show-once page (``templates/apikeys/show_once.html``), grouped in tabs
(:func:`snippet_tabs`), and documented in ``docs/pages.md`` and ``docs/mcp.md``. Each
is a ``{"id", "title", "text", "tab"}`` dict. ``tests/mcp/test_snippets.py`` parses every
one (JSON, shell words) and uses it; ``tests/pages/test_snippets_run.py`` runs the
curl, Python, JavaScript and Go ones against the example app.

The secret itself is in none of them: the page shows it once, in its own box. Every
snippet reads the key from the environment variable the ``env`` snippet sets (Claude
Code when the command runs, Cursor through ``${env:NAME}``), asks for it (VS Code's
``inputs``), or, in a config file that can do neither (Claude Desktop, a plain
``mcpServers`` entry), holds a placeholder to replace with the key.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

__all__ = ["TABS", "Snippet", "build_snippets", "env_var_name", "snippet_tabs"]

Snippet = dict[str, str]
MASKED = "password"  # VS Code's promptString flag: type the key without showing it
#: The tabs of the show-once page, in order: (tab, label).
TABS = (
    ("curl", "curl"),
    ("python", "Python"),
    ("javascript", "JavaScript"),
    ("go", "Go"),
    ("mcp", "MCP clients"),
)


def env_var_name(config: Mapping[str, Any], prefix: str) -> str:
    """``APIKEYS_ENV_VAR``, or ``<PREFIX>_API_KEY`` (``FSK_API_KEY`` for keys ``fsk_...``)."""
    name = config.get("APIKEYS_ENV_VAR")
    return str(name) if name else f"{prefix.upper()}_API_KEY"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2)


def build_snippets(
    *,
    env_var: str,
    api_url: str,
    mcp_url: str | None = None,
    server_name: str = "api",
    bearer: bool = True,
    header: str | None = "X-API-Key",
    placeholder: str = "YOUR_API_KEY",
    sse_url: str | None = None,
) -> list[Snippet]:
    """Every snippet; the MCP ones only when *mcp_url* is set, and one for older MCP
    clients (the SSE transport) only when *sse_url* is set too.

    *bearer* and *header* follow ``APIKEYS_BEARER`` and ``APIKEYS_HEADER``: the
    snippets send the key in ``Authorization: Bearer`` when the app reads it there, and
    add an ``X-API-Key`` variant when the app reads that header too. *placeholder*
    stands for the key where a config file cannot read the environment.
    """
    if bearer:
        name, value = "Authorization", "Bearer {}"
    elif header:
        name, value = header, "{}"
    else:
        raise ValueError("the app reads keys from no header: no snippet can send one")
    env_ref = "$" + env_var
    snippets = [
        {
            "id": "env",
            "tab": "setup",
            "title": "Terminal: paste the key, then press Enter",
            # read -s: the key is neither echoed nor kept in the shell's history
            "text": f"read -rs {env_var} && export {env_var}",
        },
        {
            "id": "curl",
            "tab": "curl",
            "title": "curl",
            "text": f"curl -H {_dq(name + ': ' + value.format(env_ref))} \\\n  {api_url}",
        },
        {
            "id": "python",
            "tab": "python",
            "title": "Python (requests)",
            "text": (
                "import os\nimport requests\n\n"
                "response = requests.get(\n"
                f"    {json.dumps(api_url)},\n"
                f'    headers={{"{name}": {_py_value(value, env_var)}}},\n'
                "    timeout=10,\n)\nprint(response.json())"
            ),
        },
        {
            "id": "javascript",
            "tab": "javascript",
            "title": "JavaScript (fetch, Node 18 or later)",
            "text": (
                f"fetch({json.dumps(api_url)}, {{\n"
                f"  headers: {{ {json.dumps(name)}: {_js_value(value, env_var)} }},\n"
                "})\n"
                "  .then((response) => response.json())\n"
                "  .then((data) => console.log(data));"
            ),
        },
        {
            "id": "go",
            "tab": "go",
            "title": "Go (net/http)",
            "text": _go(api_url, name, value, env_var),
        },
    ]
    if not mcp_url:
        return snippets
    server = server_name
    input_id = f"{server}-api-key"
    snippets += [
        {
            "id": "mcp-claude-code",
            "title": "Claude Code (reads $" + env_var + ")",
            "text": (
                f"claude mcp add --transport http {shlex.quote(server)} {shlex.quote(mcp_url)} \\\n"
                f"  --header {_dq(name + ': ' + value.format(env_ref))}"
            ),
        },
        {
            "id": "mcp-claude-desktop",
            "title": f"Claude Desktop (claude_desktop_config.json: replace {placeholder})",
            "text": _json(
                {
                    "mcpServers": {
                        server: {
                            "command": "npx",
                            "args": ["-y", "mcp-remote", mcp_url, "--header", f"{name}:${{AUTH}}"],
                            "env": {"AUTH": value.format(placeholder)},
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
            "title": f"Any MCP client, streamable HTTP (replace {placeholder})",
            "text": _json(
                {
                    "mcpServers": {
                        server: {
                            "type": "http",
                            "url": mcp_url,
                            "headers": {name: value.format(placeholder)},
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
                "title": f"Any MCP client, with the {header} header (replace {placeholder})",
                "text": _json(
                    {
                        "mcpServers": {
                            server: {
                                "type": "http",
                                "url": mcp_url,
                                "headers": {header: placeholder},
                            }
                        }
                    }
                ),
            }
        )
    if sse_url:
        # Older clients speak only the SSE transport (MCP 2024-11-05): offered only where
        # a server holds its streams open (APIKEYS_MCP_SSE_URL, docs/mcp.md), never on the
        # WSGI workers that serve the mounted server.
        snippets.append(
            {
                "id": "mcp-sse",
                "title": f"Older MCP clients, SSE transport (replace {placeholder})",
                "text": _json(
                    {
                        "mcpServers": {
                            server: {
                                "type": "sse",
                                "url": sse_url,
                                "headers": {name: value.format(placeholder)},
                            }
                        }
                    }
                ),
            }
        )
    return snippets


def snippet_tabs(snippets: list[Snippet]) -> list[tuple[str, str, list[Snippet]]]:
    """The snippets of each tab of :data:`TABS` that has any: ``(tab, label, snippets)``.

    A snippet without a ``tab`` goes in the MCP tab when its id starts with ``mcp``,
    else in the tab named like its id; the ``setup`` snippet (``env``) is in none.
    """
    grouped: dict[str, list[Snippet]] = {}
    for snippet in snippets:
        ident = snippet["id"]
        tab = snippet.get("tab") or ("mcp" if ident.startswith("mcp") else ident)
        grouped.setdefault(tab, []).append(snippet)
    return [(tab, label, grouped[tab]) for tab, label in TABS if tab in grouped]


def _dq(text: str) -> str:
    """*text* in shell double quotes (``$VAR`` still expands)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
    return f'"{escaped}"'


def _py_value(template: str, env_var: str) -> str:
    if template == "{}":
        return f"os.environ[{env_var!r}]"
    before, after = template.split("{}")
    return f"f{json.dumps(before + '{os.environ[' + repr(env_var) + ']}' + after)}"


def _js_value(template: str, env_var: str) -> str:
    """The header's value in JavaScript: a template literal around ``process.env``."""
    ref = f"process.env.{env_var}" if env_var.isidentifier() else f"process.env[{env_var!r}]"
    if template == "{}":
        return ref
    before, after = template.split("{}")
    return "`" + before + "${" + ref + "}" + after + "`"


def _go(api_url: str, name: str, template: str, env_var: str) -> str:
    """A Go program (net/http, the standard library only) that calls *api_url*."""
    getenv = f"os.Getenv({json.dumps(env_var)})"
    before, after = template.split("{}")
    parts = [json.dumps(before)] if before else []
    parts.append(getenv)
    if after:
        parts.append(json.dumps(after))
    return "\n".join(
        [
            "package main",
            "",
            "import (",
            '\t"fmt"',
            '\t"io"',
            '\t"net/http"',
            '\t"os"',
            ")",
            "",
            "func main() {",
            f'\treq, err := http.NewRequest("GET", {json.dumps(api_url)}, nil)',
            "\tif err != nil {",
            "\t\tpanic(err)",
            "\t}",
            f"\treq.Header.Set({json.dumps(name)}, {' + '.join(parts)})",
            "\tresp, err := http.DefaultClient.Do(req)",
            "\tif err != nil {",
            "\t\tpanic(err)",
            "\t}",
            "\tdefer resp.Body.Close()",
            "\tbody, err := io.ReadAll(resp.Body)",
            "\tif err != nil {",
            "\t\tpanic(err)",
            "\t}",
            "\tfmt.Println(resp.Status, string(body))",
            "}",
        ]
    )
