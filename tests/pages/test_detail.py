"""One key: rename, rotate, revoke, restrictions, usage chart and audit events."""

from __future__ import annotations

import datetime as dt
import re

from tests.conftest import bearer
from tests.pages.conftest import shown_secret


def test_rename_is_audited_and_shown(bob, db_key):
    _, secret = bob.create("first", scopes=["client.read"])
    key_id = db_key(secret).id
    response = bob.submit(f"/{key_id}", f"/{key_id}/rename", {"name": "  second  "})
    assert response.status_code == 302
    page = bob.get(f"/{key_id}")
    assert "<h1>second" in page.text
    assert "The key was renamed." in page.text
    assert "Renamed" in page.text and "old name:</span> first" in page.text
    assert db_key(secret).name == "second"


def test_rename_to_blank_is_a_form_error(bob, db_key):
    _, secret = bob.create("first", scopes=["client.read"])
    key_id = db_key(secret).id
    response = bob.submit(f"/{key_id}", f"/{key_id}/rename", {"name": "   "})
    assert response.status_code == 400
    assert "Give the key a name." in response.text
    assert db_key(secret).name == "first"


def test_rotate_with_grace_shows_the_new_key_once_and_both_work(bob, db_key, client):
    _, old = bob.create("rotating", scopes=["client.read"])
    key_id = db_key(old).id
    response = bob.submit(f"/{key_id}", f"/{key_id}/rotate", {"grace": "1h"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    new = shown_secret(response.text)
    assert new != old
    assert "keeps working until" in response.text
    assert client.get("/v1/clients", headers=bearer(old)).status_code == 200
    assert client.get("/v1/clients", headers=bearer(new)).status_code == 200
    assert ">Rotating<" in bob.get(f"/{key_id}").text


def test_rotate_now_stops_the_old_key(bob, db_key, client):
    _, old = bob.create("rotating", scopes=["client.read"])
    key_id = db_key(old).id
    response = bob.submit(f"/{key_id}", f"/{key_id}/rotate", {"grace": "now"})
    new = shown_secret(response.text)
    assert "has stopped working" in response.text
    assert client.get("/v1/clients", headers=bearer(old)).status_code == 401
    assert client.get("/v1/clients", headers=bearer(new)).status_code == 200


def test_rotate_refuses_an_unknown_grace(bob, db_key):
    _, old = bob.create("rotating", scopes=["client.read"])
    key_id = db_key(old).id
    response = bob.submit(f"/{key_id}", f"/{key_id}/rotate", {"grace": "99y"})
    assert response.status_code == 400
    assert "fsk_" not in re.sub(r"fsk_\w{8}…", "", response.text)


def test_revoke_asks_for_confirmation_then_revokes_with_reason(bob, db_key, client):
    _, secret = bob.create("doomed", scopes=["client.read"])
    key_id = db_key(secret).id
    confirm = bob.get(f"/{key_id}/revoke")
    assert confirm.status_code == 200
    assert "will stop working <strong>immediately</strong>" in confirm.text
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200  # not yet
    response = bob.submit(f"/{key_id}/revoke", f"/{key_id}/revoke", {"reason": "laptop lost"})
    assert response.status_code == 302
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 401
    page = bob.get(f"/{key_id}").text
    assert ">Revoked<" in page
    assert "laptop lost" in page
    assert "Revoke…" not in page


def test_audit_events_show_event_actor_time_and_address(bob, db_key):
    _, secret = bob.create("audited", scopes=["client.read"])
    key_id = db_key(secret).id
    page = bob.get(f"/{key_id}").text
    assert "Created" in page
    assert "Bob Keller (bob@acme.test)" in page
    assert "127.0.0.1" in page
    # A readable time, the exact one on hover, the machine one in datetime=.
    events = page[page.index('id="ak-events-title"') :]
    stamp = re.search(
        r'<time datetime="(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00)" '
        r'title="(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC)">'
        r"(\d{1,2} \w{3} \d{4}, \d{2}:\d{2})</time>",
        events,
    )
    assert stamp, events[:2000]
    iso, exact, shown = stamp.groups()
    moment = dt.datetime.fromisoformat(iso)
    assert exact == f"{moment:%Y-%m-%d %H:%M:%S} UTC"
    assert shown == f"{moment.day} {moment:%b %Y, %H:%M}"


def test_usage_section_shows_calls_this_period_and_a_bar_per_active_day(app, bob, db_key):
    from example_app import apikeys, db

    _, secret = bob.create("used", scopes=["client.read"])
    key_id = db_key(secret).id
    today = dt.datetime.now(dt.UTC).date()
    with app.app_context():
        Usage = apikeys.models.APIKeyUsageDay
        db.session.add_all(
            [
                Usage(key_id=key_id, day=today, count=40),
                Usage(key_id=key_id, day=today - dt.timedelta(days=3), count=2),
                Usage(key_id=key_id, day=today - dt.timedelta(days=45), count=1000),
            ]
        )
        db.session.commit()
    page = bob.get(f"/{key_id}").text
    assert "<strong>42</strong> calls in the last 30 days" in page
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert svg.count("<rect") == 2
    assert f"{today.isoformat()}: 40 calls" in svg
    assert "42 in total, at most 40 on one day" in svg


def test_ip_allowlist_is_saved_and_enforced(bob, db_key, client):
    _, secret = bob.create("fenced", scopes=["client.read"])
    key_id = db_key(secret).id
    response = bob.submit(
        f"/{key_id}", f"/{key_id}/ip-allowlist", {"ip_allowlist": "203.0.113.0/24\n10.1.2.3"}
    )
    assert response.status_code == 302
    assert db_key(secret).ip_allowlist == ["203.0.113.0/24", "10.1.2.3/32"]
    response = bob.submit(f"/{key_id}", f"/{key_id}/ip-allowlist", {"ip_allowlist": "nonsense"})
    assert response.status_code == 400
    assert "is not an IP address or network" in response.text


def test_rate_limit_form_is_for_organization_admins_only(bob, alice, db_key):
    _, secret = bob.create("limited", scopes=["client.read"])
    key_id = db_key(secret).id
    assert 'id="rate_limit"' not in bob.get(f"/{key_id}").text
    response = bob.client.post(
        f"/settings/api-keys/{key_id}/rate-limit", data={"rate_limit": "1/day"}
    )
    assert response.status_code == 403
    assert db_key(secret).rate_limit is None
    # Alice manages Acme: she sees Bob's key and sets its limit.
    assert 'id="rate_limit"' in alice.get(f"/{key_id}").text
    response = alice.submit(f"/{key_id}", f"/{key_id}/rate-limit", {"rate_limit": "100/minute"})
    assert response.status_code == 302
    assert db_key(secret).rate_limit == "100/minute"
    response = alice.submit(f"/{key_id}", f"/{key_id}/rate-limit", {"rate_limit": "lots"})
    assert response.status_code == 400
    assert "is not a rate limit" in response.text
