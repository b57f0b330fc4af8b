"""The example's invoice rules, shared by POST /v1/invoices and the MCP tool."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa


def test_one_set_of_rules_for_the_api_and_the_mcp_tool(app: Any) -> None:
    from example_app.invoicing import InvoiceRefused, create_invoice
    from example_app.models import Client, Organization, db

    with app.app_context():
        acme = db.session.scalar(sa.select(Organization).where(Organization.name == "Acme"))
        globex = db.session.scalar(sa.select(Organization).where(Organization.name == "Globex"))
        own = db.session.scalar(sa.select(Client).where(Client.organization_id == acme.id))
        other = db.session.scalar(sa.select(Client).where(Client.organization_id == globex.id))
        for client_id, amount, currency, missing in [
            (own.id, 0, "EUR", False),
            (own.id, 10**12, "EUR", False),
            (own.id, 5, "aßc", False),  # "ß".upper() is "SS": too long for the column
            (own.id, 5, "EU", False),
            (own.id, 5, None, False),
            (other.id, 5, "EUR", True),  # another tenant's client
            (10**12, 5, "EUR", True),  # beyond the id column
            (-1, 5, "EUR", True),
        ]:
            with pytest.raises(InvoiceRefused) as refused:
                create_invoice(acme.id, client_id, amount, currency)
            assert refused.value.missing is missing, (client_id, amount, currency)
        invoice = create_invoice(acme.id, own.id, 1250, "usd")
        assert invoice.currency == "USD" and invoice.number.startswith(f"INV-{acme.id}-")
