"""Ledgerly's MCP server: the JSON API's jobs as MCP tools, guarded by the same keys.

Each tool declares its scope; a key sees (``tools/list``) and calls only the tools its
scopes allow, and works on its own organization's data only (and on the clients the key
is limited to, if it is), like ``/v1``. Two ways to serve it (``pip install -e '.[mcp]'``):

- mounted in the Flask app at ``/mcp`` (``create_app`` does it when the ``mcp`` SDK is
  installed): same server, same workers;
- a separate ASGI process on the same database, which also speaks SSE at ``/sse`` for
  older clients::

      uvicorn --factory example_app.mcp_server:create_asgi_app --port 8001

The tools' parameters are typed and described (pydantic ``Field``): the SDK turns them
into each tool's JSON Schema, which is what a model reads to pick a tool and fill it in.
(No ``from __future__ import annotations`` here: the SDK reads the annotations of tools
defined inside :func:`create_mcp`, whose names it could not resolve from strings.)
"""

import datetime as dt
import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

import sqlalchemy as sa
from flask import Flask

from . import invoicing
from .models import Client, Invoice, db

if TYPE_CHECKING:
    from flask_apikeys.contrib.mcp import MCPKeys

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Ledgerly invoicing, for the organization that owns the API key. Clients: "
    "list_clients. Invoices: search_invoices finds them by client, status, date or text; "
    "get_invoice reads one by id or number; list_invoices lists them all; create_invoice "
    "invoices a client. Amounts are integers in cents (12500 = 125.00), dates are "
    "YYYY-MM-DD."
)
#: The most invoices search_invoices returns at once.
SEARCH_LIMIT = 100


def create_mcp() -> "MCPKeys":
    """A fresh MCP server with Ledgerly's tools, and the key guard around it."""
    from mcp.server.mcpserver.exceptions import ToolError
    from pydantic import Field

    from flask_apikeys.contrib.mcp import MCPKeys, create_server, current_mcp_key

    # create_server: the SDK's MCPServer, which would otherwise set up the root logger
    # (Rich's format for every log line of the app once rich is installed).
    keys = MCPKeys(create_server("ledgerly", instructions=INSTRUCTIONS))

    def organization_id() -> int:
        org_id = current_mcp_key.organization_id
        if org_id is None:
            raise ToolError("This API key belongs to no organization.")
        return int(org_id)

    def invoices_of_the_key() -> sa.Select[tuple[Invoice]]:
        """The organization's invoices, of the clients the key may use."""
        query = sa.select(Invoice).where(Invoice.organization_id == organization_id())
        return current_mcp_key.restrict(query, "client", Invoice.client_id)

    @keys.tool(
        scope="invoice.read",
        description=(
            "List every invoice of the organization, oldest first: id, number, client, "
            "amount in cents, currency, issue date and status. To find some invoices, "
            "use search_invoices; to read one, get_invoice."
        ),
    )
    def list_invoices() -> list[dict[str, Any]]:
        invoices = db.session.scalars(invoices_of_the_key().order_by(Invoice.id))
        return [invoice.to_dict() for invoice in invoices]

    @keys.tool(
        scope="invoice.read",
        description=(
            "Search the organization's invoices, newest first. Every filter is optional "
            "and they combine (AND): a client (by id, or part of its name or e-mail), a "
            "status (open, paid or void), issue dates from and to (inclusive), and text "
            "found in the invoice number or the client's name or e-mail. Returns the "
            "invoices and whether more matched than were returned."
        ),
    )
    def search_invoices(
        client_id: Annotated[
            int | None, Field(description="Only this client's invoices (see list_clients).")
        ] = None,
        client: Annotated[
            str | None,
            Field(
                description="Only invoices of clients whose name or e-mail contains this "
                "(case-insensitive), e.g. 'wayne'.",
                max_length=100,
            ),
        ] = None,
        status: Annotated[
            Literal["open", "paid", "void"] | None,  # models.INVOICE_STATUSES
            Field(description="open: not paid yet; paid; void: cancelled."),
        ] = None,
        issued_from: Annotated[
            dt.date | None, Field(description="Issued on or after this date (YYYY-MM-DD).")
        ] = None,
        issued_to: Annotated[
            dt.date | None, Field(description="Issued on or before this date (YYYY-MM-DD).")
        ] = None,
        text: Annotated[
            str | None,
            Field(
                description="Text in the invoice number or the client's name or e-mail "
                "(case-insensitive), e.g. 'INV-1-00002' or 'stark'.",
                max_length=100,
            ),
        ] = None,
        limit: Annotated[
            int, Field(description="At most this many invoices.", ge=1, le=SEARCH_LIMIT)
        ] = 20,
    ) -> dict[str, Any]:
        query = invoices_of_the_key().join(Invoice.client)
        if client_id is not None:
            query = query.where(Invoice.client_id == client_id)
        if client:
            query = query.where(
                sa.or_(
                    Client.name.icontains(client, autoescape=True),
                    Client.email.icontains(client, autoescape=True),
                )
            )
        if status is not None:
            query = query.where(Invoice.status == status)
        if issued_from is not None:
            query = query.where(Invoice.issued_on >= issued_from)
        if issued_to is not None:
            query = query.where(Invoice.issued_on <= issued_to)
        if text:
            query = query.where(
                sa.or_(
                    Invoice.number.icontains(text, autoescape=True),
                    Client.name.icontains(text, autoescape=True),
                    Client.email.icontains(text, autoescape=True),
                )
            )
        query = query.order_by(Invoice.issued_on.desc(), Invoice.id.desc()).limit(limit + 1)
        found = list(db.session.scalars(query))
        return {
            "invoices": [invoice.to_dict() for invoice in found[:limit]],
            "more": len(found) > limit,
        }

    @keys.tool(
        scope="invoice.read",
        description=(
            "Read one invoice of the organization, by its id or by its number (e.g. "
            "INV-1-00002): number, client, amount in cents, currency, issue date, status."
        ),
    )
    def get_invoice(
        invoice_id: Annotated[int | None, Field(description="The invoice's id.")] = None,
        number: Annotated[
            str | None,
            Field(description="The invoice's number, e.g. INV-1-00002.", max_length=40),
        ] = None,
    ) -> dict[str, Any]:
        if (invoice_id is None) == (number is None):
            raise ToolError("Give the invoice's id or its number (one of them).")
        query = invoices_of_the_key()
        if invoice_id is not None:
            query = query.where(Invoice.id == invoice_id)
        else:
            query = query.where(Invoice.number == str(number).strip().upper())
        invoice = db.session.scalar(query)
        if invoice is None:  # another tenant's, or a client the key may not use: the same
            which = invoice_id if number is None else number
            raise ToolError(f"There is no invoice {which} this API key can read.")
        return invoice.to_dict()

    @keys.tool(
        scope="invoice.write",
        description=(
            "Create an invoice for one of the organization's clients (client_id from "
            "list_clients), dated today and open. Returns the new invoice."
        ),
    )
    def create_invoice(
        client_id: Annotated[int, Field(description="The client to invoice.")],
        amount_cents: Annotated[
            int, Field(description="The amount in cents: 12500 is 125.00.", ge=1, lt=10**12)
        ],
        currency: Annotated[
            str,
            Field(description="Three-letter currency code.", pattern="^[A-Za-z]{3}$"),
        ] = "EUR",
    ) -> dict[str, Any]:
        try:
            invoice = invoicing.create_invoice(
                organization_id(), client_id, amount_cents, currency, key=current_mcp_key
            )
        except invoicing.InvoiceRefused as refused:
            raise ToolError(refused.message) from None
        return invoice.to_dict()

    @keys.tool(
        scope="client.read",
        description="List the organization's clients: id, name and e-mail.",
    )
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
    # Streamable HTTP at /mcp, and SSE at /sse for older clients (this process holds
    # streams open; the WSGI workers of the mounted server do not).
    return create_mcp().asgi_app(app, sse_path="/sse")
