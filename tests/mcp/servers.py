"""What the test servers run (``PYTHONPATH`` is the repository), each a factory.

``mounted_app()`` (gunicorn) and ``separate_app()`` (uvicorn ``--factory``) are the
example app and its separate MCP process, with every statement they send to the
database appended to ``$MCP_TEST_STATEMENT_LOG``. ``introspecting_app()`` and
``sdk_introspecting_app()`` know nothing of the database: they check keys through the
example app's RFC 7662 endpoint, through our middleware and through the SDK's own
``AuthSettings``/``token_verifier`` machinery respectively.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa


def _log_statements() -> None:
    path = os.environ.get("MCP_TEST_STATEMENT_LOG")
    if not path:
        return

    @sa.event.listens_for(sa.Engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        with open(path, "a") as log:
            log.write(" ".join(statement.split()) + "\n")


def mounted_app() -> Any:
    _log_statements()
    from example_app import create_app

    return create_app()


def separate_app() -> Any:
    _log_statements()
    from example_app.mcp_server import create_asgi_app

    return create_asgi_app()


def _verifier() -> Any:
    from flask_apikeys.contrib.mcp import IntrospectionTokenVerifier

    return IntrospectionTokenVerifier(
        os.environ["INTROSPECTION_URL"], os.environ["INTROSPECTION_KEY"]
    )


def _tools(server: Any, keys: Any = None) -> Any:
    from flask_apikeys.contrib.mcp import current_access_token

    def whoami() -> dict[str, Any]:
        token = current_access_token()
        if token is None:  # the SDK's own auth path: its context variable
            from mcp.server.auth.middleware.auth_context import get_access_token

            token = get_access_token()
        assert token is not None
        return {"client_id": token.client_id, "scopes": token.scopes, "subject": token.subject}

    def write_something() -> str:
        return "written"

    if keys is None:
        server.add_tool(whoami)
        server.add_tool(write_something)
    else:
        keys.tool(scope="client.read")(whoami)
        keys.tool(scope="invoice.write")(write_something)


def introspecting_app() -> Any:
    from mcp.server.mcpserver import MCPServer

    from flask_apikeys.contrib.mcp import MCPKeys

    keys = MCPKeys(MCPServer("introspecting"))
    _tools(keys.server, keys)
    return keys.asgi_app(verifier=_verifier())


def sdk_introspecting_app() -> Any:
    from mcp.server.auth.settings import AuthSettings
    from mcp.server.mcpserver import MCPServer
    from mcp.server.transport_security import TransportSecuritySettings

    server = MCPServer(
        "sdk-introspecting",
        token_verifier=_verifier(),
        auth=AuthSettings(
            issuer_url=os.environ["INTROSPECTION_URL"].rsplit("/oauth/", 1)[0],
            resource_server_url=None,  # no protected-resource metadata, no OAuth discovery
            required_scopes=["client.read"],
        ),
    )
    _tools(server)
    return server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
