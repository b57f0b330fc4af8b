"""Creating an invoice: one set of rules for the JSON API and the MCP tool alike."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .models import Client, Invoice, db


class InvoiceRefused(ValueError):
    """The invoice cannot be made; ``missing`` when the client is not the organization's."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing


def create_invoice(
    org_id: int, client_id: int, amount_cents: int, currency: object, *, key: Any = None
) -> Invoice:
    """Invoice *client_id* of organization *org_id* and commit; raises :class:`InvoiceRefused`.

    *key* (the request's ``current_key``): a key limited to some clients invoices only
    those; any other client looks missing, as another tenant's does.
    """
    if not 0 < amount_cents < 10**12:
        raise InvoiceRefused("amount_cents must be positive and below 10^12.")
    three_letters = isinstance(currency, str) and len(currency) == 3 and currency.isalpha()
    if not three_letters or not currency.isascii():  # "ß".upper() is "SS": only A-Z fit
        raise InvoiceRefused("currency must be a three-letter code.")
    client = None
    if 0 < client_id < 2**31:  # an id beyond the column (PostgreSQL would raise) names none
        client = db.session.scalar(
            sa.select(Client).where(Client.id == client_id, Client.organization_id == org_id)
        )
    limited = key is not None and "client" in (key.resources or {})
    if limited and (client is None or not key.allows("client", client.id)):  # one answer
        raise InvoiceRefused(f"This API key can use no client {client_id}.", missing=True)
    if client is None:  # another tenant's client looks exactly like a missing one
        raise InvoiceRefused(f"There is no client {client_id} in your organization.", missing=True)
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(Invoice).where(Invoice.organization_id == org_id)
    )
    invoice = Invoice(
        organization_id=org_id,
        client=client,
        number=f"INV-{org_id}-{(count or 0) + 1:05d}",
        amount_cents=amount_cents,
        currency=currency.upper(),
    )
    db.session.add(invoice)
    db.session.commit()
    return invoice
