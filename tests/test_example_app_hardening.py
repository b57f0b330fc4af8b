"""The example app answers bad input with a 4xx, ends sessions for real on sign-out,
answers JSON errors under /v1 and shows its own layout on error pages (issue #10, item 7).

Runs on SQLite, and on PostgreSQL with TEST_DATABASE_URL (where NUL in a string
parameter raises in the driver: the reason the example app refuses it up front).
"""

from __future__ import annotations

import pytest
from flask import Flask

from tests.conftest import bearer
from tests.example_helpers import is_site_page, sign_in
from tests.pages.conftest import csrf_token

HUNDRED_KB = "x" * 100_000
BAD_VALUES = {
    "nul": "bob@acme.test\x00",
    "nul-alone": "\x00",
    "control": "bob\x01@acme.test",
    "del": "bob\x7f@acme.test",
}


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["email", "password"])
@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_control_characters_in_the_login_form_are_a_400(client, field, value):
    page = client.get("/login")
    data = {"email": "bob@acme.test", "password": "demo-password"}
    data[field] = value
    response = client.post("/login", data={**data, "csrf_token": csrf_token(page.text)})
    assert response.status_code == 400
    assert is_site_page(response)
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
    assert sign_in(alice, "alice@acme.test").status_code == 302
    for path in (
        "/settings/api-keys/organization?q=%00",
        "/settings/api-keys/organization?owner=1%00",
        "/settings/api-keys/1%00",
    ):
        response = alice.get(path)
        assert response.status_code in (400, 404), path
        assert is_site_page(response), path
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
    response = sign_in(client, "bob@acme.test", query_string={"next": target})
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        assert response.location == "/"


# -- sign-out ----------------------------------------------------------------------------


def test_a_cookie_captured_before_sign_out_does_not_work_after_it(app: Flask):
    browser = app.test_client()
    assert sign_in(browser, "bob@acme.test").status_code == 302
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
    assert sign_in(again, "bob@acme.test").status_code == 302
    assert again.get("/settings/api-keys/").status_code == 200
    assert thief.get("/settings/api-keys/").status_code == 302


def test_a_forged_sign_out_ends_nothing(app: Flask):
    browser = app.test_client()
    sign_in(browser, "bob@acme.test")
    assert browser.post("/logout").status_code == 302  # no CSRF token
    assert browser.get("/settings/api-keys/").status_code == 200


def test_a_deactivated_user_is_signed_out(app: Flask):
    from example_app import db
    from example_app.models import User

    browser = app.test_client()
    sign_in(browser, "bob@acme.test")
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
        (client.get("/no-such-page"), 404, "Page not found"),
        (client.post("/"), 405, "Method Not Allowed"),
        (client.get("/settings/api-keys/", headers=bearer(key)), 403, "Forbidden"),
        (client.get("/boom"), 500, "Internal Server Error"),
    ]
    for response, status, title in cases:
        assert response.status_code == status
        assert is_site_page(response), response.text[:200]
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
