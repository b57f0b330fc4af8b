"""The example's JSON API, guarded by API keys and scoped to the key's organization."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from flask_apikeys import APIKeyError, current_key, require_key

from .invoicing import InvoiceRefused
from .invoicing import create_invoice as create_invoice_for
from .models import Client, Invoice, db

api = Blueprint("api", __name__, url_prefix="/v1")


@api.errorhandler(HTTPException)
def json_error(error: HTTPException) -> ResponseReturnValue:
    """Plain HTTP errors under /v1 answer JSON too (key errors already do)."""
    if isinstance(error, APIKeyError):
        return error.get_response()
    code = (error.name or "error").lower().replace(" ", "_")
    return jsonify(error=code, message=error.description), error.code or 500


def _organization_id() -> int:
    org_id = current_key.organization_id
    if org_id is None:
        abort(403, "This API key belongs to no organization.")
    return int(org_id)


@api.get("/invoices")
@require_key(scope="invoice.read")
def list_invoices() -> ResponseReturnValue:
    query = sa.select(Invoice).where(Invoice.organization_id == _organization_id())
    # A key limited to some clients (docs/resources.md) sees only their invoices.
    query = current_key.restrict(query, "client", Invoice.client_id)
    invoices = db.session.scalars(query.order_by(Invoice.id))
    return jsonify(invoices=[invoice.to_dict() for invoice in invoices])


def _bad_request(message: str) -> ResponseReturnValue:
    return jsonify(error="invalid_request", message=message), 400


def _integer(value: Any) -> int | None:
    """A JSON integer, as JSON Schema counts them: 12 or 12.0, never true or 12.5."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value if type(value) is int else None


@api.post("/invoices")
@require_key(scope="invoice.write")
def create_invoice() -> ResponseReturnValue:
    org_id = _organization_id()
    body: Any = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad_request("Send a JSON object with client_id and amount_cents.")
    client_id, amount = _integer(body.get("client_id")), _integer(body.get("amount_cents"))
    if client_id is None or amount is None:
        return _bad_request("client_id and amount_cents must be integers.")
    try:
        currency = body.get("currency", "EUR")
        invoice = create_invoice_for(org_id, client_id, amount, currency, key=current_key)
    except InvoiceRefused as refused:
        if refused.missing:
            return jsonify(error="not_found", message=refused.message), 404
        return _bad_request(refused.message)
    return jsonify(invoice=invoice.to_dict()), 201


@api.get("/clients")
@require_key(scope="client.read")
def list_clients() -> ResponseReturnValue:
    query = sa.select(Client).where(Client.organization_id == _organization_id())
    query = current_key.restrict(query, "client", Client.id)  # a key's chosen clients only
    clients = db.session.scalars(query.order_by(Client.id))
    return jsonify(clients=[client.to_dict() for client in clients])


@api.get("/me/permissions")
@require_key()
def my_permissions() -> ResponseReturnValue:
    """Introspection: what the presented key is and what it can do right now."""
    key, owner = current_key.key, current_key.owner
    organization = None
    for membership in owner.memberships:  # loaded with the owner: no extra query
        if membership.organization_id == key.organization_id:
            org = membership.organization  # one query by primary key
            organization = {"id": org.id, "name": org.name}
    return jsonify(
        key={
            "name": key.name,
            "display_prefix": key.display_prefix,
            "full_access": key.full_access,
            "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        },
        owner={"email": owner.email},
        organization=organization,
        scopes=sorted(current_key.scopes),
        resources=current_key.resources,  # None: every client of the organization
        quota=_quota(),
    )


def _quota() -> dict[str, Any] | None:
    """The key's quota and this period's calls (one read, for keys with a quota only)."""
    quota = current_key.quota
    if quota is None:
        return None
    usage = current_app.extensions["apikeys"].service.quotas.quota_usage(current_key.key)
    reset = usage.resets_at if usage is not None else None
    return {
        "limit": quota.limit,
        "period": quota.period,
        "refill": quota.refill,
        "used": usage.used if usage is not None else None,  # None: the counter is down
        "reset_at": f"{reset.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}" if reset else None,
    }
