"""The request log: what a key did, buffered like usage and shown on the key's page.
This module covers what is logged (writes always, reads sampled, the status sent;
nothing of refused keys, no query string, paths cleaned), the key's page that shows it
and who may see it, and the docs' example. Buffering, flushing and retention are in
tests/test_request_log_flush.py.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, abort
from flask.testing import FlaskClient

from flask_apikeys import require_key
from flask_apikeys.service.requestlog import RequestLogBuffer, clean_path
from tests.conftest import bearer
from tests.docs_examples import example_app_example
from tests.pages.conftest import Browser
from tests.request_log_helpers import (
    _key_id,
    _rows,
    quiet_app_fixture,  # noqa: F401 (the quiet_app fixture)
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "request-log.md"


def _flush(app: Flask) -> int:
    from example_app import apikeys

    return int(apikeys.flush_request_log(app))


# -- what is logged -----------------------------------------------------------------------


def test_writes_are_always_logged_and_reads_not_at_a_sample_of_0(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    app.config.update(APIKEYS_USAGE_FLUSH_INTERVAL=0, APIKEYS_REQUEST_LOG_READ_SAMPLE=0)
    secret = make_key("alice@acme.test", ["client.read", "invoice.write"])
    for _ in range(5):
        assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    assert client.head("/v1/clients", headers=bearer(secret)).status_code == 200
    created = client.post(
        "/v1/invoices", headers=bearer(secret), json={"client_id": 1, "amount_cents": 100}
    )
    assert created.status_code == 201
    assert _flush(app) == 1
    [row] = _rows(app, secret)
    assert (row.method, row.path, row.status, row.ip) == ("POST", "/v1/invoices", 201, "127.0.0.1")
    assert abs((row.at - dt.datetime.now(dt.UTC)).total_seconds()) < 60


def test_every_read_is_logged_at_a_sample_of_1(
    quiet_app: Flask, client: FlaskClient, make_key: Any
) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    for _ in range(3):
        assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    assert _flush(quiet_app) == 3
    assert [(r.method, r.path, r.status) for r in _rows(quiet_app, secret)] == [
        ("GET", "/v1/clients", 200)
    ] * 3


def test_reads_are_sampled_in_between(app: Flask) -> None:
    from example_app import apikeys

    with app.app_context():
        table = apikeys.models.APIKeyRequest.__table__
    log = RequestLogBuffer(lambda: sa.create_engine("sqlite://"), table, read_sample=0.25)
    try:
        kept = sum(log.record(1, "GET", "/r", 200) for _ in range(4000))
        assert 800 < kept < 1200  # 1000 expected; this fails about once in 10^12 runs
        assert all(log.record(1, method, "/w", 200) for method in ("POST", "DELETE", "PATCH"))
        assert log.pending == kept + 3
    finally:
        log.discard()
        log.close()


def test_the_status_is_the_one_sent(quiet_app: Flask, client: FlaskClient, make_key: Any) -> None:
    quiet_app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: a 500 page

    @quiet_app.get("/boom")
    @require_key()
    def boom() -> Any:
        raise RuntimeError("the view failed")

    @quiet_app.get("/gone")
    @require_key()
    def gone() -> Any:
        abort(410)

    @quiet_app.after_request
    def teapot(response: Any) -> Any:  # a host hook that changes the status afterwards
        if response.status_code == 410:
            response.status_code = 418
        return response

    secret = make_key("bob@acme.test", ["client.read"])
    refused = client.post("/v1/invoices", headers=bearer(secret), json={})
    assert refused.status_code == 403 and refused.json["error"] == "insufficient_scope"
    assert client.get("/boom", headers=bearer(secret)).status_code == 500
    assert client.get("/gone", headers=bearer(secret)).status_code == 418
    _flush(quiet_app)
    assert [(r.method, r.path, r.status) for r in _rows(quiet_app, secret)] == [
        ("POST", "/v1/invoices", 403),
        ("GET", "/boom", 500),
        ("GET", "/gone", 418),
    ]


def test_refusals_of_a_found_key_are_logged_unknown_keys_and_no_key_are_not(
    quiet_app: Flask, client: FlaskClient, make_key: Any
) -> None:
    """A key's owner wants to see the calls it was refused (rate limit, revoked, allowlist);
    a request with no key, or one that names no key, belongs to no one."""
    from example_app import apikeys

    secret = make_key("bob@acme.test", ["client.read"], rate_limit="1/minute")
    revoked = make_key("bob@acme.test", ["client.read"])
    office = make_key("bob@acme.test", ["client.read"], ip_allowlist=["203.0.113.0/24"])
    with quiet_app.app_context():
        apikeys.service.keys.revoke(apikeys.service.verifier.find_by_secret(revoked))
    typo = secret[:-1] + ("x" if secret[-1] != "x" else "y")  # never the key itself
    statuses = [
        client.get("/v1/clients", headers=bearer(secret)).status_code,  # logged
        client.get("/v1/clients", headers=bearer(secret)).status_code,  # rate limited
        client.get("/v1/clients", headers=bearer(revoked)).status_code,
        client.get("/v1/clients", headers=bearer(office)).status_code,
        client.get("/v1/clients", headers=bearer(typo)).status_code,  # no key
        client.get("/v1/clients").status_code,
        client.get("/login").status_code,  # no key at all
    ]
    assert statuses == [200, 429, 401, 403, 401, 401, 200]
    assert _flush(quiet_app) == 4
    assert [(r.key_id, r.status) for r in _rows(quiet_app)] == [
        (_key_id(quiet_app, secret), 200),
        (_key_id(quiet_app, secret), 429),
        (_key_id(quiet_app, revoked), 401),
        (_key_id(quiet_app, office), 403),
    ]


def test_query_strings_are_never_stored_and_paths_are_cleaned(host: Any) -> None:
    host.app.config.update(APIKEYS_USAGE_FLUSH_INTERVAL=0, APIKEYS_REQUEST_LOG_READ_SAMPLE=1)

    @host.app.get("/echo/<path:rest>")
    @require_key()
    def echo(rest: str) -> Any:
        return {"rest": rest}

    secret = host.service.keys.issue(host.ann, "x", ["doc.read"]).secret
    get = host.client.get
    assert (
        get("/read?api_key=" + secret + "&token=s3cr3t", headers=bearer(secret)).status_code == 200
    )
    assert get("/echo/a%00b%1Bc%7Fd%E2%80%8Be", headers=bearer(secret)).status_code == 200
    assert get("/echo/" + "x" * 5000 + "?q=1", headers=bearer(secret)).status_code == 200
    mapped = {"REMOTE_ADDR": "::ffff:203.0.113.9"}
    assert get("/read", headers=bearer(secret), environ_base=mapped).status_code == 200
    forged = {"REMOTE_ADDR": "not an address\x00"}
    assert get("/read", headers=bearer(secret), environ_base=forged).status_code == 200
    assert host.module.apikeys.flush_request_log(host.app) == 5
    rows = host.service.requests.recent_requests(host.service.verifier.find_by_secret(secret))[::-1]
    assert [r.path for r in rows[:2]] == ["/read", "/echo/abcde"]
    assert rows[2].path == ("/echo/" + "x" * 5000)[:254] + "…"
    assert [r.ip for r in rows] == ["127.0.0.1"] * 3 + ["203.0.113.9", None]
    for row in rows:
        stored = f"{row.method} {row.path} {row.ip}"
        assert "?" not in stored and secret not in stored and "s3cr3t" not in stored


def test_clean_path() -> None:
    assert clean_path("/a\x00b\tc\u200bd") == "/abcd"
    assert clean_path("\x00") == "/"
    assert clean_path("/é/日本") == "/é/日本"
    assert len(clean_path("/" + "é" * 1000)) == 255


# -- the key's page ------------------------------------------------------------------------


@pytest.fixture
def signed_in(app: Flask) -> Iterator[Any]:
    def sign_in(email: str) -> Browser:
        browser = Browser(app.test_client())
        browser.login(email)
        return browser

    yield sign_in


def test_the_page_lists_the_keys_requests_and_no_others(
    quiet_app: Flask, client: FlaskClient, make_key: Any, signed_in: Any
) -> None:
    mine = make_key("bob@acme.test", ["client.read"], name="mine")
    other = make_key("bob@acme.test", ["client.read"], name="other")
    assert client.get("/v1/clients?secret=1", headers=bearer(mine)).status_code == 200
    assert client.post("/v1/invoices", headers=bearer(mine), json={}).status_code == 403
    assert client.get("/v1/me/permissions", headers=bearer(other)).status_code == 200
    _flush(quiet_app)
    bob = signed_in("bob@acme.test")
    page = bob.get(f"/{_key_id(quiet_app, mine)}").text
    section = page[page.index('id="ak-requests-title"') :]
    section = section[: section.index("</section>")]
    assert "<code>POST /v1/invoices</code>" in section
    assert "<code>GET /v1/clients</code>" in section and "secret=1" not in page
    assert section.index("POST /v1/invoices") < section.index("GET /v1/clients")  # newest first
    assert "/v1/me/permissions" not in section  # the other key's request
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[^"]+" title="[^"]+ UTC">', section)
    assert ">403<" in section and "127.0.0.1" in section
    assert "Every request made with this key is recorded." in section
    empty = bob.get(f"/{_key_id(quiet_app, make_key('bob@acme.test', ['client.read']))}").text
    assert "No requests recorded yet." in empty


def test_the_empty_state_explains_the_sampling(app: Flask, make_key: Any, signed_in: Any) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    page = signed_in("bob@acme.test").get(f"/{_key_id(app, secret)}").text
    assert "No requests recorded yet." in page
    assert "reads (GET, HEAD, OPTIONS) are sampled, about 10% of them" in page
    assert "Kept for 30 days, at most 1,000 per key." in page


def test_other_users_and_organizations_cannot_see_them(
    quiet_app: Flask, client: FlaskClient, make_key: Any, signed_in: Any
) -> None:
    bobs = make_key("bob@acme.test", ["client.read"])
    alices = make_key("alice@acme.test", ["client.read"])
    for secret in (bobs, alices):
        assert client.post("/v1/invoices", headers=bearer(secret), json={}).status_code in (
            201,
            400,
            403,
        )
    _flush(quiet_app)
    bob_key, alice_key = _key_id(quiet_app, bobs), _key_id(quiet_app, alices)
    carol = signed_in("carol@globex.test")  # an admin of another organization
    assert carol.get(f"/{bob_key}").status_code == 404
    bob = signed_in("bob@acme.test")  # same organization, no api_key.manage
    assert bob.get(f"/{alice_key}").status_code == 404
    alice = signed_in("alice@acme.test")  # Acme's admin sees Bob's key and its log
    page = alice.get(f"/{bob_key}")
    assert page.status_code == 200 and "<code>POST /v1/invoices</code>" in page.text


# -- the documentation ---------------------------------------------------------------------


def test_the_docs_example_runs(database_url: str) -> None:
    with example_app_example("request-log.md", "request-log", database_url):
        pass  # the example asserts what it shows
