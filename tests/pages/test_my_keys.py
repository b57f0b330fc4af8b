"""The "API keys" list: what a user sees of their own keys."""

from __future__ import annotations

import datetime as dt
import re

from tests.conftest import bearer


def test_empty_state_explains_what_a_key_is_for(bob):
    page = bob.get("/")
    assert page.status_code == 200
    assert "You have no API keys yet" in page.text
    assert "act on your behalf" in page.text
    assert 'href="/settings/api-keys/new"' in page.text


def test_list_shows_name_prefix_scopes_dates_usage_and_status(app, bob, db_key, client):
    _, secret = bob.create("Accounting export", scopes=["invoice.read", "client.read"])
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    key = db_key(secret)
    page = bob.get("/")
    text = page.text
    assert "Accounting export" in text
    assert f"{key.display_prefix}…" in text
    assert "invoice.read" in text and "client.read" in text
    created = key.created_at
    assert f">{created.day} {created:%b %Y}</time>" in text
    expires = key.expires_at
    assert f">{expires.day} {expires:%b %Y}</time>" in text
    assert ">Active<" in text
    assert secret not in text


def test_list_shows_revoked_expired_and_rotating_statuses(app, bob, make_key, db_key):
    from example_app import apikeys, db

    revoked = make_key("bob@acme.test", ["client.read"], name="old laptop")
    rotating = make_key("bob@acme.test", ["client.read"], name="ci runner")
    expired = make_key("bob@acme.test", ["client.read"], name="trial")
    with app.app_context():
        service = apikeys.service
        bob_user = service.verifier.find_by_secret(revoked).owner
        service.keys.revoke(service.verifier.find_by_secret(revoked), actor=bob_user)
        service.keys.rotate(service.verifier.find_by_secret(rotating), grace=dt.timedelta(hours=1))
        key = service.verifier.find_by_secret(expired)
        key.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        db.session.commit()
    text = bob.get("/?revoked=1").text
    assert ">Revoked<" in text
    assert ">Rotating<" in text
    assert ">Expired<" in text
    assert "Works until" in text
    cells = re.findall(r'<td data-label="Expires">(.*?)</td>', text, re.S)
    assert any("Stops" in cell for cell in cells)  # the rotating key: when it stops
    assert any("no expiry" in cell for cell in cells)  # the revoked key: no expiry date


def test_usage_count_is_shown(app, bob, make_key):
    from example_app import apikeys, db

    secret = make_key("bob@acme.test", ["client.read"], name="busy")
    with app.app_context():
        apikeys.service.verifier.find_by_secret(secret).usage_count = 12345
        db.session.commit()
    assert "12,345" in bob.get("/").text


def test_a_user_without_the_create_permission_is_told_why(app, browser):
    from example_app import db
    from example_app.models import Membership, User

    with app.app_context():
        user = User(email="dan@acme.test", name="Dan")
        user.set_password("demo-password")
        user.memberships.append(Membership(organization_id=1, permissions="invoice.read"))
        db.session.add(user)
        db.session.commit()
    browser.login("dan@acme.test")
    page = browser.get("/")
    assert "You need the &#39;api_key.create&#39; permission" in page.text
    assert 'href="/settings/api-keys/new"' not in page.text
