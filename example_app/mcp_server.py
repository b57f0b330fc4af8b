"""Ledgerly's MCP server: the JSON API's three jobs as MCP tools, guarded by the same keys.

Each tool declares its scope; a key sees (``tools/list``) and calls only the tools its
scopes allow, and works on its own organization's data only, like ``/v1``. Two ways to
serve it (``pip install -e '.[mcp]'``):

- mounted in the Flask app at ``/mcp`` (``create_app`` does it when the ``mcp`` SDK is
  installed): same server, same workers;
- a separate ASGI process on the same database::

      uvicorn --factory example_app.mcp_server:create_asgi_app --port 8001
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask

from . import invoicing
from .models import Client, Invoice, db

if TYPE_CHECKING:
    from flask_apikeys.contrib.mcp import MCPKeys

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Ledgerly invoicing. List the clients and invoices of the organization that owns the "
    "API key, and create invoices. Amounts are integers in cents."
)


def create_mcp() -> MCPKeys:
    """A fresh MCP server with Ledgerly's tools, and the key guard around it."""
    from mcp.server.mcpserver.exceptions import ToolError

    from flask_apikeys.contrib.mcp import MCPKeys, create_server, current_mcp_key

    # create_server: the SDK's MCPServer, which would otherwise set up the root logger
    # (Rich's format for every log line of the app once rich is installed).
    keys = MCPKeys(create_server("ledgerly", instructions=INSTRUCTIONS))

    def organization_id() -> int:
        org_id = current_mcp_key.organization_id
        if org_id is None:
            raise ToolError("This API key belongs to no organization.")
        return int(org_id)

    @keys.tool(scope="invoice.read", description="List the organization's invoices.")
    def list_invoices() -> list[dict[str, Any]]:
        query = sa.select(Invoice).where(Invoice.organization_id == organization_id())
        query = current_mcp_key.restrict(query, "client", Invoice.client_id)  # chosen clients
        invoices = db.session.scalars(query.order_by(Invoice.id))
        return [invoice.to_dict() for invoice in invoices]

    @keys.tool(scope="invoice.write", description="Create an invoice for one of the clients.")
    def create_invoice(client_id: int, amount_cents: int, currency: str = "EUR") -> dict[str, Any]:
        try:
            invoice = invoicing.create_invoice(
                organization_id(), client_id, amount_cents, currency, key=current_mcp_key
            )
        except invoicing.InvoiceRefused as refused:
            raise ToolError(refused.message) from None
        return invoice.to_dict()

    @keys.tool(scope="client.read", description="List the organization's clients.")
    def list_clients() -> list[dict[str, Any]]:
        query = sa.select(Client).where(Client.organization_id == organization_id())
        query = current_mcp_key.restrict(query, "client", Client.id)  # a key's chosen clients
        return [client.to_dict() for client in db.session.scalars(query.order_by(Client.id))]

    return keys


def mount_mcp(app: Flask, path: str = "/mcp") -> None:
    """Serve the MCP server at *path* of *app*, when the ``mcp`` SDK is installed, and
    RFC 7662 introspection at ``/oauth/introspect`` (answered only with
    ``FLASK_APIKEYS_INTROSPECTION=true``), for MCP servers in other processes."""
    from flask_apikeys.web.introspection import create_introspection_blueprint

    app.register_blueprint(create_introspection_blueprint(), url_prefix="/oauth")
    try:
        keys = create_mcp()
    except ImportError:
        logger.info("MCP server not mounted: install flask-apikeys[mcp]")
        return
    keys.init_app(app, path=path)


def create_asgi_app() -> Any:
    """The MCP server as its own ASGI app, on the example's database (uvicorn --factory)."""
    from . import create_app

    app = create_app()
    return create_mcp().asgi_app(app)
