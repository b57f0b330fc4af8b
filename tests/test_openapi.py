"""flask_apikeys.contrib.openapi: security schemes, requirements and error responses as dicts."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.views import MethodView

from flask_apikeys import require_key
from flask_apikeys.contrib import openapi
from flask_apikeys.web.config import DEFAULTS


def make_app(**config: Any) -> Flask:
    """A bare app with the extension's defaults and a few guarded routes (no database)."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.update(config)

    @app.get("/v1/reports")
    @require_key(scope="report.read")
    def reports() -> str:
        """List reports.

        More words.
        """
        return ""

    @app.route("/v1/reports/<int:report_id>/shares/<share>", methods=["PUT", "DELETE"])
    @require_key(scope=["report.write", "report.read"])
    def share(report_id: int, share: str) -> str:
        return ""

    @app.get("/v1/me")
    @require_key()
    def me() -> str:
        return ""

    @app.get("/health")
    def health() -> str:
        return "ok"

    class Documents(MethodView):
        @require_key(scope="doc.read")
        def get(self) -> str:
            return ""

        def post(self) -> str:  # not guarded
            return ""

    app.add_url_rule("/v1/docs", view_func=Documents.as_view("documents"))
    return app


def test_both_schemes_by_default() -> None:
    schemes = openapi.security_schemes(make_app(APIKEYS_PREFIX="fsk"))
    assert list(schemes) == ["APIKeyBearer", "APIKeyHeader"]
    assert schemes["APIKeyBearer"]["type"] == "http"
    assert schemes["APIKeyBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyBearer"]["bearerFormat"].startswith("fsk_")
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["APIKeyHeader"]["description"],
    }
    assert "`fsk_` followed by 38 letters and digits" in schemes["APIKeyHeader"]["description"]


def test_custom_header_and_realm_and_vocabulary() -> None:
    app = make_app(
        APIKEYS_HEADER="X-Ledgerly-Key",
        APIKEYS_REALM="ledgerly",
        APIKEYS_PERMISSIONS={"report.read": "See reports"},
    )
    schemes = openapi.security_schemes(app)
    assert schemes["APIKeyHeader"]["name"] == "X-Ledgerly-Key"
    assert "`X-Ledgerly-Key: <key>`" in schemes["APIKeyHeader"]["description"]
    assert "realm `ledgerly`" in schemes["APIKeyBearer"]["description"]
    assert "- `report.read`: See reports" in schemes["APIKeyBearer"]["description"]
    challenge = openapi.error_responses(app)["401"]["headers"]["WWW-Authenticate"]
    assert 'realm="ledgerly"' in challenge["description"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"APIKEYS_HEADER": None}, ["APIKeyBearer"]),
        ({"APIKEYS_HEADER": ""}, ["APIKeyBearer"]),
        ({"APIKEYS_BEARER": False}, ["APIKeyHeader"]),
        ({"APIKEYS_QUERY_PARAM": "api_key"}, ["APIKeyBearer", "APIKeyHeader", "APIKeyQuery"]),
    ],
)
def test_disabled_or_extra_credentials(config: dict[str, Any], expected: list[str]) -> None:
    app = make_app(**config)
    assert list(openapi.security_schemes(app)) == expected
    requirement = openapi.security_requirement(["a"], app)
    assert sorted(name for r in requirement for name in r) == expected


def test_query_scheme_names_its_parameter() -> None:
    scheme = openapi.security_schemes(make_app(APIKEYS_QUERY_PARAM="api_key"))["APIKeyQuery"]
    assert (scheme["in"], scheme["name"]) == ("query", "api_key")


def test_scopes_per_route() -> None:
    app = make_app()
    routes = {(r.path, r.method): r.scopes for r in openapi.guarded_routes(app)}
    assert routes == {
        ("/v1/reports", "get"): ("report.read",),
        ("/v1/reports/{report_id}/shares/{share}", "put"): ("report.write", "report.read"),
        ("/v1/reports/{report_id}/shares/{share}", "delete"): ("report.write", "report.read"),
        ("/v1/me", "get"): (),
        ("/v1/docs", "get"): ("doc.read",),  # a MethodView's method, not its unguarded post
    }


def test_requirement_carries_scopes_in_31_and_extension_in_30() -> None:
    app = make_app()
    assert openapi.security_requirement(["b", "a"], app) == [
        {"APIKeyHeader": ["a", "b"]},
        {"APIKeyBearer": ["a", "b"]},
    ]
    op30 = openapi.operation(["b", "a"], app, openapi_version="3.0.3")
    assert op30["security"] == [{"APIKeyHeader": []}, {"APIKeyBearer": []}]
    assert op30["x-apikeys-scopes"] == ["a", "b"]
    assert "`a`, `b`" in op30["description"]


def test_error_responses_bodies_and_headers() -> None:
    responses = openapi.error_responses(make_app())
    assert set(responses) == {"401", "403", "429"}
    for response in responses.values():
        schema = response["content"]["application/json"]["schema"]
        assert schema["required"] == ["error", "message"]
    forbidden = responses["403"]["content"]["application/json"]["schema"]
    assert forbidden["properties"]["missing_scopes"]["type"] == "array"
    assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
    # Only the key errors carry a challenge on 403; a host's own 403 need not.
    assert responses["403"]["headers"]["WWW-Authenticate"]["required"] is False
    headers = responses["429"]["headers"]
    # A spent quota that never resets (N calls in total) answers 429 without one.
    assert headers["Retry-After"]["required"] is False
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(headers)


def test_merge_keeps_what_the_operation_has() -> None:
    own = {"description": "Mine.", "responses": {"200": {"description": "ok"}, "401": {"x": 1}}}
    openapi.merge_operation(own, openapi.operation(["a"], make_app()))
    assert own["responses"]["401"] == {"x": 1}
    assert set(own["responses"]) == {"200", "401", "403", "429"}
    assert own["description"].startswith("Mine.\n\nNeeds an API key: `a`.")
    assert "RateLimit-Remaining" in own["responses"]["200"]["headers"]


def test_document_of_guarded_routes() -> None:
    doc = openapi.document(make_app(), title="Reports", path_prefix="/v1/reports")
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {"/v1/reports", "/v1/reports/{report_id}/shares/{share}"}
    get = doc["paths"]["/v1/reports"]["get"]
    assert get["summary"] == "List reports."
    assert get["security"] == [{"APIKeyHeader": ["report.read"]}, {"APIKeyBearer": ["report.read"]}]
    assert get["responses"]["401"] == {"$ref": "#/components/responses/APIKeyUnauthorized"}
    put = doc["paths"]["/v1/reports/{report_id}/shares/{share}"]["put"]
    assert put["parameters"] == [
        {"name": "report_id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "share", "in": "path", "required": True, "schema": {"type": "string"}},
    ]
    assert set(doc["components"]) == {"securitySchemes", "schemas", "responses"}
    assert "/health" not in doc["paths"]


def test_document_validates_as_openapi() -> None:
    from openapi_spec_validator import validate

    app = make_app(APIKEYS_QUERY_PARAM="api_key")
    validate(openapi.document(app))
    validate(openapi.document(app, openapi_version="3.0.3"))


def test_openapi_path() -> None:
    assert openapi.openapi_path("/a/<int(min=1):x>/<path:rest>") == "/a/{x}/{rest}"
