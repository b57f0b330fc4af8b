"""The example's API description: ``/openapi.json`` and Swagger UI at ``/docs``.

The key's security schemes, scopes and error responses come from
:func:`flask_apikeys.contrib.openapi.document`; this module adds what only the example knows:
its bodies and its own ``400``/``404`` answers. Swagger UI's files come from the
``swagger-ui-py`` package (no CDN); ``/docs`` sends a Content-Security-Policy of its
own that allows nothing but this site.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, send_from_directory
from flask.typing import ResponseReturnValue

from flask_apikeys.contrib import openapi

docs = Blueprint("openapi", __name__)

#: Swagger UI needs inline-free scripts from this site, its stylesheet, data: images
#: (icons in its CSS), and requests to this site's API.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Ledgerly API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="stylesheet" href="/static/docs.css">
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body>
  <header class="docs-bar">
    <a href="/">← Back to Ledgerly</a>
    <a href="/settings/api-keys/">Your API keys</a>
  </header>
  <main id="swagger-ui"></main>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""
_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
});
"""


def _string(**extra: Any) -> dict[str, Any]:
    return {"type": "string", **extra}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


_INTEGER = {"type": "integer"}
_ERROR = {"$ref": "#/components/schemas/APIKeyError"}
_CLIENT = _object({"id": _INTEGER, "name": _string(), "email": _string()})
_INVOICE = _object(
    {
        "id": _INTEGER,
        "number": _string(),
        "client": _object({"id": _INTEGER, "name": _string()}),
        "amount_cents": _INTEGER,
        "currency": _string(pattern="^[A-Z]{3}$"),
        "issued_on": _string(format="date"),
    }
)
_NEW_INVOICE = {
    "type": "object",
    "required": ["client_id", "amount_cents"],
    "properties": {
        "client_id": {
            "type": "integer",
            "description": "A client of the key's organization (GET /v1/clients).",
            "examples": [1],
        },
        "amount_cents": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10**12 - 1,
            "examples": [125000],
        },
        "currency": _string(pattern="^[A-Za-z]{3}$", default="EUR"),
    },
}
_PERMISSIONS = _object(
    {
        "key": _object(
            {
                "name": _string(),
                "display_prefix": _string(),
                "full_access": {"type": "boolean"},
                "expires_at": {"type": ["string", "null"], "format": "date-time"},
            }
        ),
        "owner": _object({"email": _string()}),
        "organization": {"oneOf": [{"type": "null"}, _object({"id": _INTEGER, "name": _string()})]},
        "scopes": {"type": "array", "items": _string()},
        "resources": {
            "description": "The resources the key is limited to, by kind (ids as strings); "
            "null when it reaches every one its owner can.",
            "oneOf": [
                {"type": "null"},
                {"type": "object", "additionalProperties": {"type": "array", "items": _string()}},
            ],
        },
        "quota": {
            "description": "The key's quota and the calls of this period (null: no quota).",
            "oneOf": [
                {"type": "null"},
                _object(
                    {
                        "limit": _INTEGER,
                        "period": {"enum": ["day", "month", "total"]},
                        "refill": {"enum": [None, "day", "month"]},
                        "used": {"type": ["integer", "null"]},
                        "reset_at": {"type": ["string", "null"], "format": "date-time"},
                    }
                ),
            ],
        },
    }
)


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list_of(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return _object({name: {"type": "array", "items": item}})


#: The groups Swagger UI shows the operations in, in this order: (name, description).
TAGS = [
    ("Invoices", "The organization's invoices."),
    ("Clients", "The organization's clients."),
    ("Your key", "What the key in use is and may do."),
]
#: Each path's group.
PATH_TAGS = {"/v1/invoices": "Invoices", "/v1/clients": "Clients", "/v1/me/permissions": "Your key"}

#: What only the example knows about each operation: bodies and its own answers.
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/v1/invoices", "get"): {
        "responses": {"200": _json("The organization's invoices.", _list_of("invoices", _INVOICE))}
    },
    ("/v1/invoices", "post"): {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _NEW_INVOICE}},
        },
        "responses": {
            "201": _json("The new invoice.", _object({"invoice": _INVOICE})),
            "400": _json("The body is not a valid invoice (`invalid_request`).", _ERROR),
            "404": _json("No such client in the key's organization (`not_found`).", _ERROR),
        },
    },
    ("/v1/clients", "get"): {
        "responses": {"200": _json("The organization's clients.", _list_of("clients", _CLIENT))}
    },
    ("/v1/me/permissions", "get"): {
        "responses": {"200": _json("The key, its owner and what it can do now.", _PERMISSIONS)}
    },
}


def api_description() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the example's ``/v1`` API."""
    doc = openapi.document(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        title="Ledgerly API",
        version="1.0.0",
        path_prefix="/v1/",
    )
    doc["info"]["description"] = (
        "The example invoicing API of flask-apikeys. Every route needs an API key "
        "(create one at /settings/api-keys) and sees only its organization's data. "
        "A `403` also answers a key of no organization."
    )
    doc["tags"] = [{"name": name, "description": text} for name, text in TAGS]
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            if isinstance(operation, dict) and path in PATH_TAGS:
                operation["tags"] = [PATH_TAGS[path]]
    for (path, method), extra in OPERATIONS.items():
        operation = doc["paths"][path][method]
        for name, value in extra.items():
            if name == "responses":
                operation["responses"] = {**value, **operation["responses"]}
            else:
                operation[name] = value
    return doc


@docs.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    return jsonify(api_description())


@docs.get("/docs")
def swagger_ui() -> ResponseReturnValue:
    if importlib.util.find_spec("swagger_ui") is None:
        message = "Swagger UI needs swagger-ui-py: pip install 'flask-apikeys[openapi]'\n"
        return Response(message, status=501, mimetype="text/plain")
    return Response(_PAGE, mimetype="text/html")


@docs.get("/docs/init.js")
def swagger_ui_init() -> ResponseReturnValue:
    return Response(_INIT, mimetype="text/javascript")


@docs.get("/docs/assets/<name>")
def swagger_ui_asset(name: str) -> ResponseReturnValue:
    if name not in _ASSETS or importlib.util.find_spec("swagger_ui") is None:
        abort(404)
    folder = importlib.resources.files("swagger_ui").joinpath("static")
    return send_from_directory(str(folder), name, max_age=3600)


@docs.after_request
def content_security_policy(response: Response) -> Response:
    """Swagger UI's own policy (the app's pages have theirs): only this site's files."""
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response
