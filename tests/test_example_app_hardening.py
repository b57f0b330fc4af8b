"""The example app answers bad input with a 4xx, ends sessions for real on sign-out,
answers JSON errors under /v1 and shows its own layout on error pages (issue #10, item 7).

Runs on SQLite, and on PostgreSQL with TEST_DATABASE_URL (where NUL in a string
parameter raises in the driver: the reason the example app refuses it up front).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import bearer
from tests.pages.conftest import csrf_token

HUNDRED_KB = "x" * 100_000
BAD_VALUES = {
    "nul": "bob@acme.test\x00",
    "nul-alone": "\x00",
    "control": "bob\x01@acme.test",
    "del": "bob\x7f@acme.test",
}


def _login(client: FlaskClient, email: str, password: str = "demo-password", **kw: Any) -> Any:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
        **kw,
    )


def _is_site_page(response: Any) -> bool:
    return response.mimetype == "text/html" and 'class="site-header"' in response.text


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["email", "password"])
@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_control_characters_in_the_login_form_are_a_400(client, field, value):
    page = client.get("/login")
    data = {"email": "bob@acme.test", "password": "demo-password"}
    data[field] = value
    response = client.post("/login", data={**data, "csrf_token": csrf_token(page.text)})
    assert response.status_code == 400
    assert _is_site_page(response)
    assert "control character" in response.text


def test_long_crlf_and_invalid_utf8_login_input_is_a_4xx(client):
    page = client.get("/login")
    token = csrf_token(page.text)
    for email, password in [
        (HUNDRED_KB, "demo-password"),
        ("bob@acme.test", HUNDRED_KB),
        ("bob@acme.test\r\nBcc: x@evil.test", "demo-password"),
    ]:
        response = client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )
        assert 400 <= response.status_code < 500, (email[:40], response.status_code)
    body = b"email=%FF%FEbob%C0%80&password=%ED%A0%80&csrf_token=" + token.encode()
    response = client.post("/login", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 401  # undecodable bytes became U+FFFD: no such user


def test_a_forged_login_without_csrf_token_is_a_400(client):
    response = client.post("/login", data={"email": "bob@acme.test", "password": "demo-password"})
    assert response.status_code == 400
    assert "expired" in response.text
    assert client.get("/settings/api-keys/").status_code == 302  # not signed in


def test_nul_anywhere_else_is_a_400(app, client, make_key):
    key = make_key("bob@acme.test", ["client.read"])
    assert client.get("/v1/clients?q=a%00b", headers=bearer(key)).status_code == 400
    assert client.get("/v1/clients?q%00=1", headers=bearer(key)).status_code == 400
    response = client.get("/v1/%00", headers=bearer(key))
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"
    assert client.get("/login?next=/%00").status_code == 400
    alice = app.test_client()
    assert _login(alice, "alice@acme.test").status_code == 302
    for path in (
        "/settings/api-keys/organization?q=%00",
        "/settings/api-keys/organization?owner=1%00",
        "/settings/api-keys/1%00",
    ):
        response = alice.get(path)
        assert response.status_code in (400, 404), path
        assert _is_site_page(response), path
    new = alice.get("/settings/api-keys/new")
    response = alice.post(
        "/settings/api-keys/new",
        data={"name": "a\x00b", "expires": "30d", "csrf_token": csrf_token(new.text)},
    )
    assert response.status_code == 400


def test_an_api_id_beyond_the_column_range_is_a_404_like_any_missing_client(client, make_key):
    key = make_key("alice@acme.test", ["invoice.write"])
    for client_id in (10**12, 2**31, -(2**63), 0):
        response = client.post(
            "/v1/invoices", json={"client_id": client_id, "amount_cents": 1}, headers=bearer(key)
        )
        assert response.status_code == 404, client_id
        assert response.get_json()["error"] == "not_found"


@pytest.mark.parametrize(
    "target",
    ["/\\evil.test", "/\r\nSet-Cookie: x=1", "/\tevil", "//evil.test", "https://evil.test/"],
)
def test_sign_in_never_redirects_off_site_nor_breaks_on_odd_next(client, target):
    response = _login(client, "bob@acme.test", query_string={"next": target})
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        assert response.location == "/"


# -- sign-out ----------------------------------------------------------------------------


def test_a_cookie_captured_before_sign_out_does_not_work_after_it(app: Flask):
    browser = app.test_client()
    assert _login(browser, "bob@acme.test").status_code == 302
    captured = browser.get_cookie("session")
    assert captured is not None
    thief = app.test_client()
    thief.set_cookie("session", captured.value)
    assert thief.get("/settings/api-keys/").status_code == 200  # the stolen cookie works...

    page = browser.get("/settings/api-keys/")
    response = browser.post("/logout", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    replay = thief.get("/settings/api-keys/")
    assert replay.status_code == 302  # ...until bob signs out
    assert "/login" in replay.location

    again = app.test_client()  # and bob can sign in again
    assert _login(again, "bob@acme.test").status_code == 302
    assert again.get("/settings/api-keys/").status_code == 200
    assert thief.get("/settings/api-keys/").status_code == 302


def test_a_forged_sign_out_ends_nothing(app: Flask):
    browser = app.test_client()
    _login(browser, "bob@acme.test")
    assert browser.post("/logout").status_code == 302  # no CSRF token
    assert browser.get("/settings/api-keys/").status_code == 200


def test_a_deactivated_user_is_signed_out(app: Flask):
    from example_app import db
    from example_app.models import User

    browser = app.test_client()
    _login(browser, "bob@acme.test")
    with app.app_context():
        user = db.session.query(User).filter_by(email="bob@acme.test").one()
        user.active = False
        db.session.commit()
    assert browser.get("/settings/api-keys/").status_code == 302


def test_session_ids_of_another_shape_name_nobody(app: Flask):
    from example_app import load_user

    with app.test_request_context():
        for user_id in ("1", "1:", "²:x", "1" * 40 + ":x", ":x", "1:wrong-token"):
            assert load_user(user_id) is None, user_id


# -- errors ------------------------------------------------------------------------------


def test_unknown_api_routes_and_methods_answer_json(client, make_key):
    key = make_key("bob@acme.test", ["client.read"])
    for path in ("/v1/nope", "/v1", "/v1/clients/1/x", "/v1/"):
        response = client.get(path, headers=bearer(key))
        assert response.status_code == 404, path
        body = response.get_json()
        assert body["error"] == "not_found" and body["message"], path
    response = client.delete("/v1/clients", headers=bearer(key))
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]
    assert client.post("/v1/me/permissions").get_json()["error"] == "method_not_allowed"


def test_error_pages_for_people_use_the_site_layout(app: Flask, make_key):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    @app.get("/v1/boom")
    def api_boom() -> str:
        raise RuntimeError("boom")

    client = app.test_client()
    key = make_key("bob@acme.test", ["client.read"])
    cases = [
        (client.get("/no-such-page"), 404, "Not Found"),
        (client.post("/"), 405, "Method Not Allowed"),
        (client.get("/settings/api-keys/", headers=bearer(key)), 403, "Forbidden"),
        (client.get("/boom"), 500, "Internal Server Error"),
    ]
    for response, status, title in cases:
        assert response.status_code == status
        assert _is_site_page(response), response.text[:200]
        assert f"<h1>{title}</h1>" in response.text
        assert "<title>" + title in response.text
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "GET" in cases[1][0].headers["Allow"]
    response = client.get("/v1/boom")
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_server_error"


def test_every_page_sends_the_security_headers(client):
    for path in ("/", "/login", "/settings/api-keys/", "/no-such-page", "/v1/nope"):
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["Referrer-Policy"] == "same-origin", path


# -- bodies that are no form: JSON, arrays, strings, invalid, nested too deep -----------
# (issue #21) Flask-WTF reads a JSON body as form data: ``[1]`` made WTForms raise (a 500,
# logged three times with the error page's own failure), invalid JSON logged tracebacks.

NOT_FORMS = {
    "array": (b"[1]", "application/json"),
    "string": (b'"x"', "application/json"),
    "null": (b"null", "application/json"),
    "object": (b'{"email": "bob@acme.test", "password": "demo-password"}', "application/json"),
    "invalid": (b"{", "application/json"),
    "charset": (b"[1]", "application/json; charset=latin-1"),
    "deep": (b"[" * 1100 + b"]" * 1100, "application/json"),
    "unclosed": (b"[" * 100_000, "application/json"),
    "text": (b"email=bob@acme.test", "text/plain"),
    "xml": (b"<a/>", "application/xml"),
}


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()[:120]}"
        for r in caplog.records
        if r.exc_info or r.levelno >= logging.ERROR
    ]


@pytest.fixture
def production_errors(app: Flask, caplog: pytest.LogCaptureFixture) -> Flask:
    """An exception in a view is a logged 500 (as in production), not raised in the test."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    caplog.set_level(logging.INFO)
    return app


@pytest.mark.parametrize("kind", NOT_FORMS, ids=NOT_FORMS.keys())
def test_a_body_that_is_no_form_on_sign_in_and_sign_out_is_a_415_and_no_traceback(
    production_errors: Flask, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    body, content_type = NOT_FORMS[kind]
    anonymous, signed_in = production_errors.test_client(), production_errors.test_client()
    assert _login(signed_in, "bob@acme.test").status_code == 302
    for client, path in ((anonymous, "/login"), (anonymous, "/logout"), (signed_in, "/logout")):
        response = client.post(path, data=body, content_type=content_type)
        assert response.status_code == 415, (path, response.status_code)
        assert _is_site_page(response), path
        assert "HTML form" in response.text
    assert signed_in.get("/settings/api-keys/").status_code == 200  # still signed in
    assert _tracebacks(caplog) == []


def _blueprint_posts(app: Flask) -> list[str]:
    from example_app import apikeys, db
    from example_app.models import User

    with app.app_context():
        alice = db.session.scalar(sa.select(User).where(User.email == "alice@acme.test"))
        key_id = apikeys.service.keys.issue(alice, scopes=["invoice.read"], name="k").key.id
        alice_id = alice.id
    prefix = "/settings/api-keys"
    return [
        f"{prefix}/new",
        *(
            f"{prefix}/{key_id}/{action}"
            for action in (
                "rename",
                "rotate",
                "revoke",
                "ip-allowlist",
                "rate-limit",
                "quota",
                "resources",
            )
        ),
        f"{prefix}/organization/1/policy",
        f"{prefix}/organization/1/users/{alice_id}/revoke-all",
    ]


def test_every_post_of_the_key_pages_refuses_a_body_that_is_no_form(
    production_errors: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    paths = _blueprint_posts(production_errors)
    alice = production_errors.test_client()
    assert _login(alice, "alice@acme.test").status_code == 302
    token = csrf_token(alice.get("/settings/api-keys/new").text)
    with_token = (
        b'{"csrf_token": "' + token.encode() + b'", "name": "x", "expires": "30d"}',
        "application/json",
    )
    for path in paths:  # the rule url_map knows for each of them takes POST
        for kind, (body, content_type) in [*NOT_FORMS.items(), ("token", with_token)]:
            response = alice.post(path, data=body, content_type=content_type)
            assert response.status_code == 415, (path, kind, response.status_code)
            assert _is_site_page(response), (path, kind)
    assert _tracebacks(caplog) == []
    with production_errors.app_context():
        from example_app import apikeys

        assert len(apikeys.service.queries.list_keys(organization_id=1)) == 1  # none created


def test_the_key_pages_still_take_their_forms(app: Flask) -> None:
    """The refusal is of the body's type: a form post, or none at all, still gets in."""
    paths = _blueprint_posts(app)
    alice = app.test_client()
    assert _login(alice, "alice@acme.test").status_code == 302
    for path in paths:
        assert alice.post(path).status_code == 400, path  # no CSRF token
        response = alice.post(path, data={"csrf_token": "forged"})
        assert response.status_code == 400, path


def test_json_nested_too_deep_for_the_api_is_its_usual_400(
    production_errors: Flask, caplog: pytest.LogCaptureFixture, make_key: Any
) -> None:
    key = make_key("alice@acme.test", ["invoice.write"])
    client = production_errors.test_client()
    for body in (
        b"[" * 1100 + b"]" * 1100,
        b'{"a": ' * 5000 + b"1" + b"}" * 5000,
        b"[" * 100_000,
    ):
        response = client.post(
            "/v1/invoices", data=body, content_type="application/json", headers=bearer(key)
        )
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_request"  # as for any bad JSON
    assert _tracebacks(caplog) == []


def test_json_nested_too_deep_is_a_value_error_of_the_app_json() -> None:
    from example_app.hardening import JSONProvider

    provider = JSONProvider(Flask(__name__))
    with pytest.raises(ValueError, match="nested too deeply"):
        provider.loads("[" * 100_000)
    assert provider.loads('{"a": [1, 2]}') == {"a": [1, 2]}


def test_an_error_page_that_cannot_be_drawn_is_a_line_of_text(
    production_errors: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from example_app import hardening

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("the database is down")

    monkeypatch.setattr(hardening, "render_template", broken)
    response = production_errors.test_client().get("/no-such-page?q=<script>")
    assert response.status_code == 404
    assert response.mimetype == "text/plain"
    assert response.text.startswith("404 Not Found: ")


# -- the database engine -----------------------------------------------------------------


def test_a_database_server_gets_pre_ping_and_recycle(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite has no connections to lose; a server's are tested before use and replaced
    before an idle timeout drops them. The host's own options win."""
    from example_app import PRODUCTION_ENGINE_OPTIONS, create_app, db

    assert PRODUCTION_ENGINE_OPTIONS == {"pool_pre_ping": True, "pool_recycle": 1800}
    server = "postgresql+psycopg://nobody@127.0.0.1:9/none"  # never connected to
    config = {"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": server}
    app = create_app(config)
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == PRODUCTION_ENGINE_OPTIONS
    with app.app_context():
        assert db.engine.pool._pre_ping is True  # what SQLAlchemy made of it
        assert db.engine.pool._recycle == 1800
        db.engine.dispose()
    mine = {"pool_recycle": 300, "pool_size": 3}
    app = create_app({**config, "SQLALCHEMY_ENGINE_OPTIONS": mine})
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == {
        "pool_pre_ping": True,
        "pool_recycle": 300,
        "pool_size": 3,
    }
    with app.app_context():
        db.engine.dispose()
    sqlite = create_app({**config, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert "pool_pre_ping" not in sqlite.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})


def test_the_deployment_docs_show_the_example_engine_options() -> None:
    from types import SimpleNamespace

    from example_app import PRODUCTION_ENGINE_OPTIONS
    from tests.docs_examples import run_example

    app = SimpleNamespace(config={})
    run_example("scaling.md", "engine-options", {"app": app})
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == PRODUCTION_ENGINE_OPTIONS
