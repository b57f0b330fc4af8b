"""Creating a key: the form, the scope grid, the rules, and the show-once page."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from tests.conftest import bearer
from tests.pages.conftest import csrf_token, shown_secret


def test_grid_groups_by_resource_and_disables_what_the_user_lacks(bob):
    page = bob.get("/new")
    assert page.status_code == 200
    html = page.text
    for group in ("<legend>Invoice</legend>", "<legend>Client</legend>"):
        assert group in html
    write = re.search(
        r'<input type="checkbox" name="scopes" value="invoice.write"[^>]*>', html, re.S
    )
    assert write and "disabled" in write.group(0)
    read = re.search(r'<input type="checkbox" name="scopes" value="invoice.read"[^>]*>', html, re.S)
    assert read and "disabled" not in read.group(0)
    assert "You don\u2019t have this permission" in html
    assert "See invoices" in html  # the description


def test_read_only_shortcut_gives_every_read_permission_the_user_holds(bob, db_key, client):
    response, secret = bob.create("read only", access="read")
    assert response.headers["Cache-Control"] == "no-store"
    key = db_key(secret)
    assert key.scopes == ["client.read", "invoice.read"]
    assert not key.full_access
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    assert client.post("/v1/invoices", headers=bearer(secret), json={}).status_code == 403


def test_full_access_shortcut_makes_a_full_access_key(alice, db_key):
    _, secret = alice.create("everything", access="full")
    key = db_key(secret)
    assert key.full_access
    assert "Full access" in alice.get(f"/{key.id}").text


def test_chosen_scopes_and_trimmed_name_are_kept(bob, db_key):
    _, secret = bob.create("   Nightly    sync  ", scopes=["client.read"])
    key = db_key(secret)
    assert key.name == "Nightly sync"
    assert key.scopes == ["client.read"]


@pytest.mark.parametrize(("choice", "days"), [("30d", 30), ("90d", 90), ("1y", 365)])
def test_expiry_choices(bob, db_key, choice, days):
    _, secret = bob.create("exp", scopes=["client.read"], expires=choice)
    key = db_key(secret)
    assert abs((key.expires_at - key.created_at) - dt.timedelta(days=days)) < dt.timedelta(
        minutes=1
    )


def test_custom_date_and_never(bob, db_key):
    day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).date()
    _, secret = bob.create("custom", scopes=["client.read"], expires="custom", expires_on=day)
    assert db_key(secret).expires_at.date() == day + dt.timedelta(days=1)
    _, secret = bob.create("forever", scopes=["client.read"], expires="never")
    assert db_key(secret).expires_at is None


def test_custom_expiry_without_a_date_is_a_form_error(bob):
    response = bob.submit(
        "/new", "/new", {"name": "x", "expires": "custom", "scopes": ["client.read"]}
    )
    assert response.status_code == 400
    assert "Pick the date the key expires." in response.text


def test_max_lifetime_locks_longer_choices_and_refuses_them(app, bob):
    app.config["APIKEYS_MAX_LIFETIME"] = 90
    app.extensions["apikeys"].refresh(app)
    page = bob.get("/new").text
    for value in ("never", "1y"):  # shown, locked, with why
        radio = re.search(rf'<input[^>]*value="{value}"[^>]*>', page)
        assert radio and "disabled" in radio.group(0)
        assert 'aria-describedby="ak-expiry-lock"' in radio.group(0)
    assert "Keys on this site expire within 90 days." in page
    response = bob.submit(
        "/new", "/new", {"name": "x", "expires": "never", "scopes": ["client.read"]}
    )
    assert response.status_code == 400
    assert "fsk_" not in response.text
    far = (dt.datetime.now(dt.UTC) + dt.timedelta(days=200)).date()
    response = bob.submit(
        "/new",
        "/new",
        {"name": "x", "expires": "custom", "expires_on": far, "scopes": ["client.read"]},
    )
    assert response.status_code == 400
    assert "Keys must expire within 90 days." in response.text


def test_name_is_required_and_bounded(bob):
    response = bob.submit(
        "/new", "/new", {"name": "   ", "expires": "90d", "scopes": ["client.read"]}
    )
    assert response.status_code == 400
    assert "Give the key a name." in response.text
    response = bob.submit(
        "/new", "/new", {"name": "x" * 101, "expires": "90d", "scopes": ["client.read"]}
    )
    assert response.status_code == 400
    assert "At most 100 characters." in response.text


def test_no_permission_chosen_is_a_form_error(bob):
    response = bob.submit("/new", "/new", {"name": "x", "expires": "90d", "access": "custom"})
    assert response.status_code == 400
    assert "Choose at least one permission." in response.text


def test_forged_permission_the_user_lacks_is_refused_with_a_form_error(app, bob):
    from example_app import apikeys

    response = bob.submit(
        "/new",
        "/new",
        {"name": "sneaky", "expires": "90d", "scopes": ["client.read", "invoice.write"]},
    )
    assert response.status_code == 400
    assert "You cannot grant &#39;invoice.write&#39;: you do not hold it." in response.text
    assert "fsk_" not in response.text.replace('value="fsk_', "")  # no key shown
    with app.app_context():
        assert apikeys.service.queries.list_keys() == []


def test_unknown_permission_is_refused(bob):
    response = bob.submit(
        "/new", "/new", {"name": "x", "expires": "90d", "scopes": ["root.everything"]}
    )
    assert response.status_code == 400
    assert "Unknown permission" in response.text


def test_creation_policy_message_is_shown(app, bob):
    from example_app import apikeys

    previous = apikeys._creation_policy

    @apikeys.creation_policy
    def paid_plans_only(user, organization_id):
        return "API keys are available on paid plans."

    try:
        page = bob.get("/new")
        assert page.text.count("API keys are available on paid plans.") == 1
        response = bob.submit(
            "/new", "/new", {"name": "x", "expires": "90d", "scopes": ["client.read"]}
        )
        assert response.status_code == 403  # a forced submit: the same page, said once
        assert response.text.count("API keys are available on paid plans.") == 1
        with app.app_context():
            assert apikeys.service.queries.list_keys() == []
    finally:
        apikeys._creation_policy = previous


def test_show_once_page_has_the_key_once_snippets_and_warning_and_is_never_cached(bob):
    response, secret = bob.create("snippets", scopes=["client.read"])
    html = response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert "You will not see it again." in html
    assert html.count(secret) == 1  # in its box; the snippets read $FSK_API_KEY
    assert "read -rs FSK_API_KEY &amp;&amp; export FSK_API_KEY" in html
    assert "curl -H &#34;Authorization: Bearer $FSK_API_KEY&#34;" in html
    assert "http://localhost/v1/me/permissions" in html
    assert "import requests" in html
    assert "process.env.FSK_API_KEY" in html and "net/http" in html
    mcp = re.search(r'id="ak-snippet-mcp"[^>]*>(.*?)</textarea>', html, re.S)
    assert mcp
    config = json.loads(mcp.group(1).replace("&#34;", '"'))
    server = config["mcpServers"]["ledgerly"]
    assert server["url"] == "http://localhost/mcp"
    assert server["headers"]["Authorization"] == "Bearer YOUR_API_KEY"


def test_secret_never_reaches_the_session_a_url_or_a_later_page(bob):
    response, secret = bob.create("once", scopes=["client.read"])
    assert response.location is None
    with bob.client.session_transaction() as session:
        assert secret not in repr(dict(session))
    for path in ("/", "/1"):
        assert secret not in bob.get(path).text
    assert secret[-20:] not in bob.get("/1").text


def test_creating_needs_a_csrf_token(app, bob):
    from example_app import apikeys

    response = bob.client.post(
        "/settings/api-keys/new", data={"name": "x", "expires": "90d", "scopes": ["client.read"]}
    )
    assert response.status_code == 400
    response = bob.client.post(
        "/settings/api-keys/new",
        data={"name": "x", "expires": "90d", "scopes": ["client.read"], "csrf_token": "forged"},
    )
    assert response.status_code == 400
    with app.app_context():
        assert apikeys.service.queries.list_keys() == []


def test_organization_select_when_the_user_has_several(app, browser, db_key):
    from example_app import db
    from example_app.models import Membership, Organization, User

    with app.app_context():
        globex = db.session.scalar(db.select(Organization).where(Organization.name == "Globex"))
        user = db.session.scalar(db.select(User).where(User.email == "bob@acme.test"))
        user.memberships.append(
            Membership(organization_id=globex.id, permissions="api_key.create client.read")
        )
        db.session.commit()
        globex_id = globex.id
    browser.login("bob@acme.test")
    page = browser.get("/new")
    assert re.search(r'<select[^>]*id="organization"', page.text)
    assert ">Globex</option>" in page.text
    response = browser.client.post(
        "/settings/api-keys/new",
        data={
            "csrf_token": csrf_token(page.text),
            "name": "globex key",
            "expires": "30d",
            "organization": str(globex_id),
            "scopes": ["client.read"],
        },
    )
    assert response.status_code == 200
    assert db_key(shown_secret(response.text)).organization_id == globex_id
    # Not a member of organization 999: refused on the organization field.
    response = browser.submit(
        "/new",
        "/new",
        {"name": "x", "expires": "30d", "organization": "999", "scopes": ["client.read"]},
    )
    assert response.status_code == 400
    assert "You are not a member of that organization." in response.text


def test_sending_the_create_form_twice_makes_one_key(bob, app):
    """A refresh of the show-once page re-sends the POST: it must not make a second key."""
    import re

    from example_app import apikeys
    from tests.pages.conftest import PREFIX, csrf_token

    page = bob.get("/new").text
    submission = re.search(r'name="submission" type="hidden" value="([^"]+)"', page).group(1)
    data = {
        "name": "Twice",
        "expires": "90d",
        "access": "custom",
        "scopes": ["client.read"],
        "csrf_token": csrf_token(page),
        "submission": submission,
    }
    first = bob.client.post(PREFIX + "/new", data=data)
    assert first.status_code == 200 and "fsk_" in first.text
    again = bob.client.post(PREFIX + "/new", data=data)
    assert again.status_code == 302 and again.headers["Location"].endswith(PREFIX + "/")
    assert "fsk_" not in again.text
    with app.app_context():
        assert [k.name for k in apikeys.service.queries.list_keys()].count("Twice") == 1
    listing = bob.client.get(PREFIX + "/").text
    assert "already created" in listing
