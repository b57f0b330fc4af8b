"""The example app's /openapi.json and /docs: valid OpenAPI 3.1 covering every /v1 route
with its scopes, Swagger UI's files from the package and nothing else."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from flask_apikeys.contrib import openapi
from tests.conftest import bearer


def test_openapi_json_covers_every_v1_route(app: Flask, client: FlaskClient) -> None:
    doc: dict[str, Any] = client.get("/openapi.json").get_json()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    guarded = {
        (route.path, route.method): list(route.scopes)
        for route in openapi.guarded_routes(app)
        if route.path.startswith("/v1/")
    }
    described = {
        (path, method): op["x-apikeys-scopes"]
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }
    assert described == guarded
    assert described[("/v1/invoices", "post")] == ["invoice.write"]
    assert described[("/v1/me/permissions", "get")] == []
    assert list(doc["components"]["securitySchemes"]) == ["APIKeyBearer", "APIKeyHeader"]
    post = doc["paths"]["/v1/invoices"]["post"]
    assert set(post["responses"]) == {"201", "400", "401", "403", "404", "429"}
    assert post["security"][0] == {"APIKeyHeader": ["invoice.write"]}


def test_the_example_answers_what_it_describes(client: FlaskClient, make_key: Any) -> None:
    """The statuses the description adds for POST /v1/invoices are the app's own."""
    secret = make_key("alice@acme.test", ["invoice.write", "client.read"])
    client_id = client.get("/v1/clients", headers=bearer(secret)).get_json()["clients"][0]["id"]
    post = [
        ({"client_id": client_id, "amount_cents": 1250.0}, 201),  # 1250.0 is a JSON integer
        ({"client_id": client_id, "amount_cents": 1250, "currency": "usd"}, 201),
        ({"client_id": client_id, "amount_cents": 5, "currency": "aßc"}, 400),
        ({"client_id": client_id, "amount_cents": 12.5}, 400),
        ({"client_id": 10**30, "amount_cents": 5}, 404),  # beyond the id column: no client
        ({"client_id": -1, "amount_cents": 5}, 404),
    ]
    for body, status in post:
        response = client.post("/v1/invoices", json=body, headers=bearer(secret))
        assert response.status_code == status, (body, response.get_json())
    assert response.get_json()["error"] == "not_found"


def test_docs_serves_swagger_ui_from_the_package(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "<script>" not in page.text  # no inline script: the CSP allows none
    assert "https://" not in page.text  # no CDN
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and b"SwaggerUIBundle" in bundle.data
    bundle.close()
    init = client.get("/docs/init.js")
    assert "/openapi.json" in init.text
    for name in ["index.html", "swagger-editor-bundle.js", "..%2F__init__.py"]:
        assert client.get(f"/docs/assets/{name}").status_code == 404, name
    assert "unsafe" not in page.headers["Content-Security-Policy"]


def test_docs_without_swagger_ui_says_what_to_install(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "swagger_ui" else find_spec(name, *a),
    )
    page = client.get("/docs")
    assert page.status_code == 501
    assert "flask-apikeys[openapi]" in page.text
    assert client.get("/docs/assets/swagger-ui.css").status_code == 404
    assert client.get("/openapi.json").status_code == 200  # the description needs nothing
