"""Who may reach what: session only, own keys only, own organization only, CSRF always."""

from __future__ import annotations

import pytest

from tests.conftest import bearer
from tests.pages.conftest import PREFIX


def _pages(key_id: int, org_id: int, user_id: int) -> list[tuple[str, str]]:
    return [
        ("GET", "/"),
        ("GET", "/new"),
        ("POST", "/new"),
        ("GET", f"/{key_id}"),
        ("POST", f"/{key_id}/rename"),
        ("POST", f"/{key_id}/rotate"),
        ("GET", f"/{key_id}/revoke"),
        ("POST", f"/{key_id}/revoke"),
        ("POST", f"/{key_id}/ip-allowlist"),
        ("POST", f"/{key_id}/rate-limit"),
        ("GET", "/organization"),
        ("GET", f"/organization/{org_id}/users/{user_id}/revoke-all"),
        ("POST", f"/organization/{org_id}/users/{user_id}/revoke-all"),
    ]


@pytest.fixture
def alices_key(make_key, db_key):
    secret = make_key("alice@acme.test", ["client.read"], name="alice's")
    return secret, db_key(secret).id


def test_anonymous_requests_are_sent_to_sign_in(client, alices_key, user_id):
    _, key_id = alices_key
    for method, path in _pages(key_id, 1, user_id("bob@acme.test")):
        response = client.open(PREFIX + path, method=method)
        assert response.status_code == 302, (method, path)
        assert response.location.startswith("/login?next="), (method, path)


@pytest.mark.parametrize("header", ["bearer", "x-api-key", "garbage"])
def test_key_authenticated_requests_are_refused_on_every_page(client, alices_key, user_id, header):
    secret, key_id = alices_key
    headers = {
        "bearer": bearer(secret),
        "x-api-key": {"X-API-Key": secret},
        "garbage": bearer("fsk_not-a-key"),
    }[header]
    for method, path in _pages(key_id, 1, user_id("bob@acme.test")):
        response = client.open(PREFIX + path, method=method, headers=headers)
        assert response.status_code == 403, (method, path)
        assert "API keys cannot open them" in response.text


def test_a_key_is_refused_even_alongside_a_signed_in_session(alice, alices_key):
    secret, key_id = alices_key
    assert alice.get(f"/{key_id}").status_code == 200
    assert alice.get(f"/{key_id}", headers=bearer(secret)).status_code == 403
    assert alice.get("/", headers=bearer(secret)).status_code == 403


def test_another_users_key_is_404_for_every_action(app, bob, alices_key, db_key):
    secret, key_id = alices_key
    for path in (f"/{key_id}", f"/{key_id}/revoke"):
        assert bob.get(path).status_code == 404, path
    token_page = bob.get("/new")
    from tests.pages.conftest import csrf_token

    token = csrf_token(token_page.text)
    for action, data in [
        ("rename", {"name": "pwned"}),
        ("rotate", {"grace": "now"}),
        ("revoke", {"reason": "x"}),
        ("ip-allowlist", {"ip_allowlist": "10.0.0.1"}),
        ("rate-limit", {"rate_limit": "1/day"}),
    ]:
        response = bob.client.post(
            f"{PREFIX}/{key_id}/{action}", data={**data, "csrf_token": token}
        )
        assert response.status_code == 404, action
    key = db_key(secret)
    assert key.name == "alice's" and key.revoked_at is None
    assert key.ip_allowlist is None and key.rate_limit is None


def test_unknown_and_absurd_ids_are_404(bob):
    assert bob.get("/999999").status_code == 404
    assert bob.get(f"/{2**70}").status_code == 404
    assert bob.get("/organization/1/users/nobody/revoke-all").status_code in (403, 404)


def test_admin_may_not_rename_or_rotate_someone_elses_key(alice, make_key, db_key):
    secret = make_key("bob@acme.test", ["client.read"], name="bob's")
    key_id = db_key(secret).id
    from tests.pages.conftest import csrf_token

    token = csrf_token(alice.get(f"/{key_id}").text)
    for action, data in [("rename", {"name": "x"}), ("rotate", {"grace": "now"})]:
        response = alice.client.post(
            f"{PREFIX}/{key_id}/{action}", data={**data, "csrf_token": token}
        )
        assert response.status_code == 403, action
    assert db_key(secret).name == "bob's"


def test_every_post_without_a_csrf_token_is_refused_and_changes_nothing(
    app, alice, make_key, db_key, user_id, client
):
    assert app.config["TESTING"] and app.config.get("WTF_CSRF_ENABLED", True)
    bob_secret = make_key("bob@acme.test", ["client.read"], name="bob's")
    own = make_key("alice@acme.test", ["client.read"], name="mine")
    own_id, bob_key_id = db_key(own).id, db_key(bob_secret).id
    bob_id = user_id("bob@acme.test")
    posts = [
        ("/new", {"name": "x", "expires": "90d", "scopes": ["client.read"]}),
        (f"/{own_id}/rename", {"name": "forged"}),
        (f"/{own_id}/rotate", {"grace": "now"}),
        (f"/{own_id}/revoke", {"reason": "forged"}),
        (f"/{own_id}/ip-allowlist", {"ip_allowlist": "10.0.0.1"}),
        (f"/{own_id}/rate-limit", {"rate_limit": "1/day"}),
        (f"/{bob_key_id}/revoke", {}),
        (f"/organization/1/users/{bob_id}/revoke-all", {}),
    ]
    for path, data in posts:
        for token in (None, "forged-token"):
            body = dict(data) if token is None else {**data, "csrf_token": token}
            response = alice.client.post(PREFIX + path, data=body)
            assert response.status_code == 400, (path, token)
    key = db_key(own)
    assert key.name == "mine" and key.revoked_at is None and key.ip_allowlist is None
    assert key.rate_limit is None
    assert db_key(bob_secret).revoked_at is None
    from example_app import apikeys

    with app.app_context():
        assert len(apikeys.service.queries.list_keys()) == 2
    assert client.get("/v1/clients", headers=bearer(own)).status_code == 200


def test_logout_needs_a_post_with_csrf(alice):
    assert alice.client.get("/logout").status_code == 405
    assert alice.client.post("/logout").status_code == 302
    assert alice.get("/").status_code == 200  # the forged logout did nothing


def test_login_refuses_wrong_passwords_and_foreign_redirects(client):
    from tests.pages.conftest import csrf_token

    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": "bob@acme.test", "password": "nope", "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 401
    assert "do not match" in response.text
    response = client.post(
        "/login?next=//evil.test/x",
        data={
            "email": "bob@acme.test",
            "password": "demo-password",
            "csrf_token": csrf_token(page.text),
        },
    )
    assert response.status_code == 302
    assert response.location == "/"


def test_pages_are_not_cached_by_shared_caches_and_not_framed(alice):
    response = alice.get("/")
    assert "private" in response.headers["Cache-Control"]
    assert response.headers["X-Frame-Options"] == "DENY"
