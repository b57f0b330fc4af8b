"""Bodies that are no form — JSON, arrays, strings, invalid, nested too deep — on the
example's sign-in and sign-out and on every POST of the key pages: a 4xx and no traceback;
deep JSON on the API: its usual 400 (issue #21)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import bearer
from tests.example_helpers import is_site_page, sign_in
from tests.pages.conftest import csrf_token

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
    """Errors the requests logged: records of this thread (the usage flusher, a thread of
    the process, may log about an earlier test's app whose database is gone)."""
    here = threading.get_ident()
    return [
        f"{r.name}: {r.getMessage()[:120]}"
        for r in caplog.records
        if (r.exc_info or r.levelno >= logging.ERROR) and r.thread == here
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
    assert sign_in(signed_in, "bob@acme.test").status_code == 302
    for client, path in ((anonymous, "/login"), (anonymous, "/logout"), (signed_in, "/logout")):
        response = client.post(path, data=body, content_type=content_type)
        assert response.status_code == 415, (path, response.status_code)
        assert is_site_page(response), path
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
    assert sign_in(alice, "alice@acme.test").status_code == 302
    token = csrf_token(alice.get("/settings/api-keys/new").text)
    with_token = (
        b'{"csrf_token": "' + token.encode() + b'", "name": "x", "expires": "30d"}',
        "application/json",
    )
    for path in paths:  # the rule url_map knows for each of them takes POST
        for kind, (body, content_type) in [*NOT_FORMS.items(), ("token", with_token)]:
            response = alice.post(path, data=body, content_type=content_type)
            assert response.status_code == 415, (path, kind, response.status_code)
            assert is_site_page(response), (path, kind)
    assert _tracebacks(caplog) == []
    with production_errors.app_context():
        from example_app import apikeys

        assert len(apikeys.service.queries.list_keys(organization_id=1)) == 1  # none created


def test_the_key_pages_still_take_their_forms(app: Flask) -> None:
    """The refusal is of the body's type: a form post, or none at all, still gets in."""
    paths = _blueprint_posts(app)
    alice = app.test_client()
    assert sign_in(alice, "alice@acme.test").status_code == 302
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
