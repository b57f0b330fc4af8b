"""Issue #20, the show-once and create pages: the key first and once, the snippets in
tabs that read an environment variable, the seeds' advice where it is needed, and every
option a plan or a policy refuses shown locked, with why, before anything is sent."""

from __future__ import annotations

import re

from tests.pages.conftest import PREFIX, csrf_token

#: The seeds' advice, as each page words it (once each).
ADVICE = {
    "create": [
        "secrets manager",
        "OS keychain",
        "never in code or in a file you commit",
        "one key per integration and environment",
        "90 days is the default. Rotating keys regularly",
    ],
    "show-once": [
        "secrets manager",
        "OS keychain",
        "Never commit it",
        "list .env in .gitignore",
        "One key per integration and environment",
        "Rotate it regularly: keys expire after 90 days by default",
    ],
}


def _set_policy(app, org_name: str, **rules) -> None:
    from example_app import apikeys, db
    from example_app.models import Organization

    with app.app_context():
        org_id = db.session.scalar(db.select(Organization.id).filter_by(name=org_name))
        apikeys.service.policies.set_policy(org_id, **rules)


# -- the show-once page ----------------------------------------------------------------------


def test_the_show_once_page_is_the_key_shown_once_with_done_first(bob):
    response, secret = bob.create("Nightly export", scopes=["client.read"])
    html = response.text
    assert html.count(secret) == 1
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    title = re.search(r"<title>(.*?) · Ledgerly</title>", html).group(1)
    heading = re.search(r"<h1>(.*?)</h1>", html).group(1)
    assert title == heading == "Copy your new API key"
    # The key, its Copy button and Done come before the snippets; the warning beside them.
    key_box, done = html.index('id="ak-new-key"'), html.index(">Done</a>")
    assert key_box < done < html.index('id="ak-use-title"')
    assert 'data-ak-copy-target="ak-new-key"' in html
    assert html.index("You will not see it again.") < html.index('id="ak-use-title"')
    assert "I have copied the key" not in html


def test_the_snippets_are_tabs_that_read_the_environment_variable(bob):
    response, _ = bob.create("tabs", scopes=["client.read"])
    html = response.text
    tabs = re.findall(r'<details class="ak-tab" name="ak-snippets" data-ak-tab="(\w+)"', html)
    assert tabs == ["curl", "python", "javascript", "go", "mcp"]
    labels = re.findall(r"<summary>(.*?)</summary>", html)
    assert labels == ["curl", "Python", "JavaScript", "Go", "MCP clients"]
    assert re.search(r'<details class="ak-tab" name="ak-snippets" data-ak-tab="curl" open>', html)
    # How to set the variable comes first, before the tabs that read it.
    setup = html.index('id="ak-snippet-env"')
    assert setup < html.index('data-ak-tab="curl"')
    assert "read -rs FSK_API_KEY &amp;&amp; export FSK_API_KEY" in html
    assert "<code>.env</code> file that <code>.gitignore</code> lists" in html
    for snippet in ("curl", "python", "javascript", "go", "mcp-claude-code", "mcp-cursor"):
        body = re.search(rf'id="ak-snippet-{snippet}"[^>]*>(.*?)</textarea>', html, re.S)
        assert body and "FSK_API_KEY" in body.group(1), snippet


def test_the_rotated_key_page_says_the_same_and_when_the_old_key_stops(bob, db_key):
    _, secret = bob.create("to rotate", scopes=["client.read"])
    key = db_key(secret)
    rotated = bob.submit(f"/{key.id}", f"/{key.id}/rotate", {"grace": "1h"})
    assert rotated.status_code == 200
    assert "<h1>Copy your new API key</h1>" in rotated.text
    assert "keeps working until" in rotated.text
    assert f'replaces <code class="ak-prefix">{key.display_prefix}…</code>' in rotated.text


# -- advice ------------------------------------------------------------------------------------


def test_the_seeds_advice_is_on_the_create_and_show_once_pages_once_each(bob):
    create = bob.get("/new").text
    response, _ = bob.create("advice", scopes=["client.read"])
    for name, page in (("create", create), ("show-once", response.text)):
        text = " ".join(re.sub(r"<[^>]+>", "", page).split())
        for words in ADVICE[name]:
            assert text.lower().count(words.lower()) == 1, (name, words)


def test_the_docs_give_the_same_advice():
    from pathlib import Path

    pages = (Path(__file__).parents[2] / "docs" / "pages.md").read_text()
    for words in ("secrets manager", "keychain", ".gitignore", "integration and environment"):
        assert words in pages
    assert "90 days" in pages


# -- locked options ----------------------------------------------------------------------------


def _radio(html: str, name: str, value: str) -> str:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*value="{value}"[^>]*>', html)
    assert found, (name, value)
    return found.group(0)


def test_the_team_plan_defaults_to_an_access_it_allows_and_locks_the_rest(browser):
    browser.login("erin@hooli.test")
    page = browser.get("/new").text
    assert "disabled" in _radio(page, "access", "custom")
    assert "checked" in _radio(page, "access", "read")
    assert "disabled" not in _radio(page, "access", "full")
    assert "Choosing permissions one by one is available on the Business plan." in page
    assert "disabled" in _radio(page, 'resources-[^"]*-mode', "only")
    # Read-only says what it gives, as there is no grid to show it.
    assert "Every “read” permission you hold: client.read, invoice.read." in page


def test_a_free_plan_page_is_read_only_under_one_banner(browser):
    browser.login("dana@bluth.test")
    page = browser.get("/new")
    assert page.status_code == 200
    assert page.text.count("API keys are available on paid plans.") == 1
    assert '<fieldset class="ak-form-body" disabled' in page.text
    assert "autofocus" not in page.text
    forced = browser.client.post(
        PREFIX + "/new",
        data={"csrf_token": csrf_token(page.text), "name": "x", "access": "full", "expires": "30d"},
    )
    assert forced.status_code == 403
    assert forced.text.count("API keys are available on paid plans.") == 1
    assert 'class="ak-alert ak-alert-error"' not in forced.text


def test_an_organization_policy_locks_long_expiries_and_names_itself(app, alice, bob):
    _set_policy(
        app, "Acme", max_lifetime_days=60, allowed_permissions=["client.read", "invoice.read"]
    )
    page = bob.get("/new").text
    for value in ("90d", "1y", "never"):
        assert "disabled" in _radio(page, "expires", value), value
    assert "disabled" not in _radio(page, "expires", "30d")
    assert "checked" in _radio(page, "expires", "30d")  # the default 90 days is locked
    assert "Acme\u2019s key policy: keys expire within 60 days." in page
    assert "See the policy" not in page  # bob cannot open it
    admin = alice.get("/new").text
    policy_link = '60 days. <a href="/settings/api-keys/organization/'
    assert policy_link in admin and "See the policy</a>" in admin
    # alice holds invoice.write; the policy does not allow it; bob does not hold it.
    why = re.search(r'id="scope-invoice-write-why">(.*?)<', admin).group(1)
    assert why == "Not allowed by Acme\u2019s key policy"
    assert re.search(r'id="scope-invoice-write-why">(.*?)<', page).group(1) == (
        "You don\u2019t have this permission"
    )


def test_the_plans_page_compares_the_plans_and_marks_yours(browser):
    browser.login("erin@hooli.test")
    page = browser.client.get("/plans").text
    assert "<title>Plans · Ledgerly</title>" in page
    assert page.count('<section class="plan') == 3
    assert re.search(r'<section class="plan plan-yours"[^>]*>\s*<h2[^>]*>Team <span', page)
    assert "Hooli is on the Team plan." in page
    assert "Keys with permissions chosen one by one" in page
