"""Issue #20, the small ones: a favicon, Swagger UI that leads back to the app and groups
its operations, one wording for back links, every demo account on the sign-in page, and a
404 page that says what to do next."""

from __future__ import annotations

import re

from tests.pages.conftest import Browser


def test_every_page_has_a_favicon(app, bob):
    client = app.test_client()  # signed out
    for page in (client.get("/login"), bob.get("/"), client.get("/nope")):
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page.text
    with client.get("/static/favicon.svg") as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    old_style = client.get("/favicon.ico")
    assert old_style.status_code == 301 and old_style.location.endswith("/static/favicon.svg")
    docs = client.get("/docs").text
    assert '<link rel="icon" href="/static/favicon.svg"' in docs


def test_swagger_ui_leads_back_to_the_app_and_groups_operations_by_tag(client):
    docs = client.get("/docs").text
    assert '<a href="/">← Back to Ledgerly</a>' in docs
    assert '<a href="/settings/api-keys/">Your API keys</a>' in docs
    with client.get("/static/docs.css") as css:
        assert css.status_code == 200
    description = client.get("/openapi.json").get_json()
    assert [tag["name"] for tag in description["tags"]] == ["Invoices", "Clients", "Your key"]
    for path, operations in description["paths"].items():
        for method, operation in operations.items():
            assert len(operation["tags"]) == 1, (path, method)


def test_back_links_all_say_back_to(bob, alice, make_key, db_key):
    key = db_key(make_key("bob@acme.test", ["client.read"], name="linked"))
    _response, _secret = bob.create("shown once", scopes=["client.read"])
    pages = [
        bob.get("/new").text,
        bob.get(f"/{key.id}").text,
        bob.get(f"/{key.id}/revoke").text,
        alice.get(f"/{key.id}").text,
        _response.text,
        bob.client.get("/plans").text,
    ]
    for text in pages:
        for link in re.findall(r"<a [^>]*>([^<]*[Bb]ack to[^<]*)</a>", text):
            assert link.startswith("← Back to "), link


def test_the_sign_in_page_lists_every_seeded_account(client):
    from example_app.cli import DEMO

    page = client.get("/login").text
    seeded = [email for spec in DEMO.values() for email in spec["users"]]
    assert len(seeded) == 5
    for email in seeded:
        assert f"<code>{email}</code>" in page
    assert "demo-password" in page
    for plan in ("Free plan", "Team plan", "Business plan"):
        assert plan in page
    home = client.get("/").text
    assert all(email in home for email in seeded)


def test_the_404_page_says_what_to_do_next(app, client):
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert "<h1>Page not found</h1>" in page.text
    assert "Check the address for a typo." in page.text
    for link in ('href="/"', 'href="/docs"', 'href="/login"'):
        assert link in page.text
    signed_in = Browser(app.test_client())
    signed_in.login("bob@acme.test")
    missing = signed_in.get("/999999")  # someone else's key, or none: the site's 404
    assert missing.status_code == 404
    assert 'href="/settings/api-keys/">your API keys</a>' in missing.text
    assert "belong to an organization you do not manage" in missing.text
