"""Organization admin: every key of the organization, filters, revoke, offboarding."""

from __future__ import annotations

import html
import re

from tests.conftest import bearer

DASH = "\N{EN DASH}"


def test_admin_sees_every_key_of_the_organization_with_owner(alice, make_key):
    make_key("bob@acme.test", ["client.read"], name="bob's script")
    make_key("alice@acme.test", ["invoice.read"], name="alice's export")
    make_key("carol@globex.test", ["client.read"], name="globex secret thing")
    page = alice.get("/organization")
    assert page.status_code == 200
    assert "bob&#39;s script" in page.text and "alice&#39;s export" in page.text
    assert (
        '<span class="ak-owner">Bob Keller<span class="ak-note">bob@acme.test</span>' in page.text
    )
    assert "globex secret thing" not in page.text


def test_filters_by_owner_status_and_name(app, alice, make_key, user_id):
    make_key("bob@acme.test", ["client.read"], name="bob one")
    secret = make_key("bob@acme.test", ["client.read"], name="bob two")
    make_key("alice@acme.test", ["invoice.read"], name="alice one")
    from example_app import apikeys

    with app.app_context():
        apikeys.service.keys.revoke(apikeys.service.verifier.find_by_secret(secret))
    bob_id = user_id("bob@acme.test")
    text = alice.get(f"/organization?owner={bob_id}").text  # active keys, by default
    assert "bob one" in text and "bob two" not in text and "alice one" not in text
    text = alice.get(f"/organization?owner={bob_id}&status=all").text
    assert "bob one" in text and "bob two" in text and "alice one" not in text
    text = alice.get("/organization?status=revoked").text
    assert "bob two" in text and "bob one" not in text
    text = alice.get("/organization?q=ALICE").text
    assert "alice one" in text and "bob one" not in text


def test_sort_by_usage_and_last_use(app, alice, make_key):
    import datetime as dt

    from example_app import apikeys, db

    quiet = make_key("bob@acme.test", ["client.read"], name="quiet")
    busy = make_key("bob@acme.test", ["client.read"], name="busy")
    recent = make_key("bob@acme.test", ["client.read"], name="recent")
    with app.app_context():
        s = apikeys.service
        s.verifier.find_by_secret(busy).usage_count = 500
        s.verifier.find_by_secret(quiet).usage_count = 3
        s.verifier.find_by_secret(recent).usage_count = 10
        s.verifier.find_by_secret(recent).last_used_at = dt.datetime.now(dt.UTC)
        s.verifier.find_by_secret(quiet).last_used_at = dt.datetime.now(dt.UTC) - dt.timedelta(
            days=2
        )
        db.session.commit()

    def order(query):
        text = alice.get(f"/organization?{query}").text
        return [n for n in re.findall(r'<th scope="row" data-label="Name"><a [^>]*>([^<]+)<', text)]

    assert order("sort=usage") == ["busy", "recent", "quiet"]
    assert order("sort=last_used") == ["recent", "quiet", "busy"]
    assert 'aria-sort="descending"' in alice.get("/organization?sort=last_used").text


def test_pagination(app, alice, make_key):
    app.config["APIKEYS_PAGE_SIZE"] = 2
    for n in range(5):
        make_key("bob@acme.test", ["client.read"], name=f"key {n}")
    first = alice.get("/organization").text
    assert f"Showing 1{DASH}2 of 5 active keys" in first
    assert first.count('data-label="Name"') == 2
    assert 'aria-current="page" aria-label="Page 1">1<' in first
    assert 'rel="prev"' not in first
    # Page 2 is the page after the cursor of page 1's last row; its link says its number.
    second_link = re.search(r'<a href="([^"]+)" aria-label="Page 2">2</a>', first)
    assert second_link, first
    second = alice.client.get(html.unescape(second_link.group(1))).text
    assert f"Showing 3{DASH}4 of 5 active keys" in second
    assert _names(second) == ["key 2", "key 1"]
    last = alice.get("/organization?page=last").text
    assert _names(last) == ["key 0"]
    assert f"Showing 5{DASH}5 of 5 active keys" in last
    assert 'rel="prev"' in last and 'rel="next"' not in last


def _names(page: str) -> list[str]:
    return re.findall(r'<th scope="row" data-label="Name"><a [^>]*>([^<]+)<', page)


def test_admin_revokes_one_key_of_another_user(app, alice, make_key, db_key, client):
    secret = make_key("bob@acme.test", ["client.read"], name="bob's script")
    key_id = db_key(secret).id
    confirm = alice.get(f"/{key_id}/revoke")
    assert "owned by Bob Keller" in confirm.text
    response = alice.submit(f"/{key_id}/revoke", f"/{key_id}/revoke", {"reason": "audit"})
    assert response.status_code == 302
    assert "/settings/api-keys/organization" in response.location
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 401
    from example_app import apikeys

    with app.app_context():
        event = apikeys.service.queries.events(apikeys.service.queries.get_key(key_id))[0]
        assert event.event == "revoked"
        assert event.actor.email == "alice@acme.test"


def test_offboarding_says_how_many_keys_and_revokes_them_all(app, alice, make_key, user_id, client):
    secrets = [make_key("bob@acme.test", ["client.read"], name=f"k{n}") for n in range(3)]
    alice_key = make_key("alice@acme.test", ["client.read"], name="alice's")
    bob_id = user_id("bob@acme.test")
    page = alice.get("/organization").text
    assert f"/organization/1/users/{bob_id}/revoke-all" in page
    confirm = alice.get(f"/organization/1/users/{bob_id}/revoke-all")
    assert "This will revoke 3 keys" in confirm.text
    response = alice.submit(
        f"/organization/1/users/{bob_id}/revoke-all",
        f"/organization/1/users/{bob_id}/revoke-all",
        {"reason": "left the company"},
    )
    assert response.status_code == 302
    assert "Revoked 3 keys of Bob Keller" in alice.get("/organization").text
    for secret in secrets:
        assert client.get("/v1/clients", headers=bearer(secret)).status_code == 401
    assert client.get("/v1/clients", headers=bearer(alice_key)).status_code == 200


def test_non_admin_cannot_open_the_admin_page(bob):
    assert bob.get("/organization").status_code == 403


def test_admin_of_another_organization_gets_404(carol, make_key, db_key, user_id):
    secret = make_key("bob@acme.test", ["client.read"], name="acme key")
    key_id = db_key(secret).id
    bob_id = user_id("bob@acme.test")
    assert carol.get(f"/{key_id}").status_code == 404
    assert carol.get(f"/{key_id}/revoke").status_code == 404
    assert carol.get("/organization?org=1").status_code == 404
    assert carol.get(f"/organization/1/users/{bob_id}/revoke-all").status_code == 404
    page = carol.get("/organization").text
    assert "acme key" not in page and "Acme" not in page
