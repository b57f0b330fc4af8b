"""The examples of docs/openapi.md, run as written, and the apispec plugin with
flask-smorest and APIFlask: each served description has the key schemes, each guarded
operation its scopes and its 401/403/429, and the result is valid OpenAPI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.views import MethodView
from openapi_spec_validator import validate

from flask_apikeys import require_key
from flask_apikeys.contrib import openapi
from flask_apikeys.contrib.apispec import APIKeysPlugin

DOC = Path(__file__).resolve().parent.parent / "docs" / "openapi.md"
EXAMPLE = re.compile(r"<!-- example:(\S+) -->\n```python\n(.*?)```", re.S)
KEY_RESPONSES = {
    "401": {"$ref": "#/components/responses/APIKeyUnauthorized"},
    "403": {"$ref": "#/components/responses/APIKeyForbidden"},
    "429": {"$ref": "#/components/responses/APIKeyRateLimited"},
}


def run_example(name: str) -> dict[str, Any]:
    examples = dict(EXAMPLE.findall(DOC.read_text()))
    namespace: dict[str, Any] = {"__name__": f"docs_{name.replace('-', '_')}"}
    exec(compile(examples[name], f"{DOC}:{name}", "exec"), namespace)
    return namespace


def test_every_example_is_tested() -> None:
    tested = {"openapi-dicts", "openapi-smorest", "openapi-apiflask"}
    tested |= {"openapi-flask-openapi3", "openapi-spectree"}
    assert {name for name, _ in EXAMPLE.findall(DOC.read_text())} == tested


def served(app: Flask, url: str) -> dict[str, Any]:
    response = app.test_client().get(url)
    assert response.status_code == 200, response.data
    doc: dict[str, Any] = response.get_json()
    validate(doc)
    assert set(doc["components"]["securitySchemes"]) >= {"APIKeyBearer", "APIKeyHeader"}
    return doc


def assert_guarded(op: dict[str, Any], scopes: list[str], version: str = "3.1") -> None:
    listed = scopes if version == "3.1" else []
    assert op["security"] == [{"APIKeyHeader": listed}, {"APIKeyBearer": listed}]
    assert op["x-apikeys-scopes"] == scopes
    for code, ref in KEY_RESPONSES.items():
        assert op["responses"][code] == ref


def test_dicts_example() -> None:
    ns = run_example("openapi-dicts")
    assert ns["schemes"]["APIKeyHeader"]["name"] == "X-Reports-Key"
    assert set(ns["parts"]) == {"securitySchemes", "schemas", "responses"}
    assert set(ns["needs"]["responses"]) == {"401", "403", "429"}
    assert [(r.path, r.method, r.scopes) for r in ns["routes"]] == [
        ("/v1/reports/{report_id}", "get", ("report.read",))
    ]
    validate(ns["doc"])
    op = ns["doc"]["paths"]["/v1/reports/{report_id}"]["get"]
    assert op["summary"] == "One report."
    assert_guarded(op, ["report.read"])


def test_smorest_example() -> None:
    ns = run_example("openapi-smorest")
    doc = served(ns["app"], "/openapi.json")
    op = doc["paths"]["/v1/reports/"]["get"]
    assert_guarded(op, ["report.read"])
    assert "RateLimit-Remaining" in op["responses"]["200"]["headers"]
    assert "default" in op["responses"]  # flask-smorest's own stays


def test_apiflask_example() -> None:
    ns = run_example("openapi-apiflask")
    doc = served(ns["app"], "/openapi.json")
    assert_guarded(doc["paths"]["/v1/reports"]["get"], ["report.read"])


def test_flask_openapi3_example() -> None:
    ns = run_example("openapi-flask-openapi3")
    doc = served(ns["app"], "/openapi/openapi.json")
    op = doc["paths"]["/v1/reports"]["get"]
    assert_guarded(op, ["report.read"])
    assert "422" in op["responses"]  # flask-openapi3's own stays


def test_spectree_example() -> None:
    ns = run_example("openapi-spectree")
    doc = served(ns["app"], "/apidoc/openapi.json")
    assert_guarded(doc["paths"]["/v1/reports"]["get"], ["report.read"])


def test_smorest_method_view_and_openapi_30() -> None:
    from flask_smorest import Api, Blueprint

    app = Flask(__name__)
    app.config.update(API_TITLE="T", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    app.config.update(OPENAPI_URL_PREFIX="/", APIKEYS_BEARER=False)
    blp = Blueprint("docs", __name__, url_prefix="/v1/docs")

    @blp.route("/<int:doc_id>")
    class Document(MethodView):
        @require_key(scope=["doc.read", "doc.list"])
        @blp.response(200)
        def get(self, doc_id: int) -> dict[str, int]:
            return {"id": doc_id}

        @blp.response(204)
        def delete(self, doc_id: int) -> None:
            return None

    api = Api(app, spec_kwargs={"extra_plugins": [APIKeysPlugin(app)]})
    api.register_blueprint(blp)
    doc = served_30(app)
    assert list(doc["components"]["securitySchemes"]) == ["APIKeyHeader"]
    get = doc["paths"]["/v1/docs/{doc_id}"]["get"]
    assert get["security"] == [{"APIKeyHeader": []}]  # 3.0: scopes only in the extension
    assert get["x-apikeys-scopes"] == ["doc.list", "doc.read"]
    delete = doc["paths"]["/v1/docs/{doc_id}"]["delete"]
    assert "security" not in delete and "401" not in delete["responses"]


def served_30(app: Flask) -> dict[str, Any]:
    doc: dict[str, Any] = app.test_client().get("/openapi.json").get_json()
    validate(doc)
    return doc


def test_apiflask_keeps_its_own_auth_and_responses() -> None:
    from apiflask import APIFlask, HTTPTokenAuth

    app = APIFlask(__name__, spec_plugins=[APIKeysPlugin()])
    token = HTTPTokenAuth()

    @app.get("/v1/admin")
    @app.auth_required(token)
    @require_key(scope="admin")
    def admin() -> dict[str, str]:
        return {}

    @app.get("/v1/open")
    def open_route() -> dict[str, str]:
        return {}

    doc = served_30(app)  # APIFlask's default is OpenAPI 3.0.3
    admin_op = doc["paths"]["/v1/admin"]["get"]
    assert admin_op["security"] == [{"BearerAuth": []}]  # the host's own requirement wins
    assert admin_op["x-apikeys-scopes"] == ["admin"]
    assert "security" not in doc["paths"]["/v1/open"]["get"]


def test_plugin_needs_an_app_outside_a_context() -> None:
    from apispec import APISpec

    with pytest.raises(RuntimeError, match=r"APIKeysPlugin\(app\)"):
        APISpec("T", "1", "3.1.0", plugins=[APIKeysPlugin()])


def test_apply_keeps_a_documents_own_components() -> None:
    app = Flask(__name__)

    @app.get("/v1/x")
    @require_key()
    def x() -> str:
        return ""

    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "T", "version": "1"},
        "paths": {"/v1/x": {"get": {"responses": {"200": {"description": "ok"}}}}},
        "components": {"securitySchemes": {"APIKeyHeader": {"type": "http", "scheme": "x"}}},
    }
    openapi.apply(doc, app)
    validate(doc)
    assert doc["components"]["securitySchemes"]["APIKeyHeader"]["scheme"] == "x"
    assert doc["paths"]["/v1/x"]["get"]["security"] == [
        {"APIKeyHeader": []},
        {"APIKeyBearer": []},
    ]
