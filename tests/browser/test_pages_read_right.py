"""Issue #20 in Chromium, at 1280 x 800 and 390 x 844: the show-once page is the key (one
screen high, the secret once, tabs that work with and without JavaScript), the create
pages of the three plans, and a key's page with refused calls, compact on a phone. axe
finds nothing, anywhere; every page is saved to ``test-artifacts/screenshots``."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.browser.test_pages_polish import DESKTOP, MOBILE, axe_at_both_sizes, fits_the_phone

pytestmark = pytest.mark.browser

TABS = ["curl", "Python", "JavaScript", "Go", "MCP clients"]


def height(page: Any, viewport: dict[str, int]) -> int:
    page.set_viewport_size(viewport)
    tall = int(page.evaluate("document.documentElement.scrollHeight"))
    page.set_viewport_size(DESKTOP)
    return tall


def create_key(page: Any, name: str = "Nightly export") -> str:
    page.goto("/settings/api-keys/new")
    page.get_by_label("Name").fill(name)
    page.get_by_label(re.compile("See invoices")).check()
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", name="Copy your new API key")).to_be_visible()
    return str(page.get_by_label("API key", exact=True).input_value())


def test_the_show_once_page_is_one_screen_with_the_key_once_and_tabs(new_page, check_page):
    page = new_page()
    login(page, "bob@acme.test")
    secret = create_key(page)
    assert page.content().count(secret) == 1
    assert page.title() == "Copy your new API key · Ledgerly"
    assert height(page, DESKTOP) < 1200  # was 2,980 px
    assert height(page, MOBILE) < 1800  # was 4,035 px
    # Key, Copy and Done in the first screen, on the desktop and on the phone.
    for viewport in (DESKTOP, MOBILE):
        page.set_viewport_size(viewport)
        for target in (
            page.get_by_label("API key", exact=True),
            page.get_by_role("button", name="Copy API key", exact=True),
            page.get_by_role("link", name="Done", exact=True),
        ):
            box = target.bounding_box()
            assert box and box["y"] + box["height"] <= viewport["height"], (viewport, target)
    page.set_viewport_size(DESKTOP)

    tabs = page.get_by_role("tab")
    expect(tabs).to_have_text(TABS)
    expect(page.get_by_role("tab", name="curl")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel")).to_have_count(1)  # the others are hidden
    page.get_by_role("tab", name="curl").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Python")).to_be_focused()
    expect(page.get_by_role("tabpanel")).to_contain_text("import requests")
    page.keyboard.press("End")
    expect(page.get_by_role("tabpanel")).to_contain_text("claude mcp add")
    page.get_by_role("tab", name="Go").click()
    page.get_by_role("button", name=re.compile("^Copy Go")).click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert 'os.Getenv("FSK_API_KEY")' in copied and secret not in copied
    create_key(page, "The next one")  # the tab chosen last is chosen again
    expect(page.get_by_role("tab", name="Go")).to_have_attribute("aria-selected", "true")
    fits_the_phone(page, "show once")
    axe_at_both_sizes(page, check_page, "read-right-show-once")


def test_the_snippet_tabs_work_without_javascript(chromium, server):
    context = chromium.new_context(base_url=server, java_script_enabled=False)
    try:
        page = context.new_page()
        login(page, "bob@acme.test")
        secret = create_key(page)
        assert page.content().count(secret) == 1
        summaries = page.locator("details.ak-tab > summary")
        expect(summaries).to_have_text(TABS)
        expect(page.locator("#ak-snippet-curl")).to_be_visible()
        expect(page.locator("#ak-snippet-python")).to_be_hidden()
        summaries.filter(has_text="Python").click()
        expect(page.locator("#ak-snippet-python")).to_be_visible()
        expect(page.locator("#ak-snippet-curl")).to_be_hidden()  # one open at a time
    finally:
        context.close()


@pytest.mark.parametrize(
    ("email", "what"),
    [
        ("bob@acme.test", "custom"),
        ("erin@hooli.test", "read"),
        ("dana@bluth.test", None),
    ],
)
def test_each_plans_create_page(new_page, check_page, email, what):
    page = new_page()
    login(page, email, "/settings/api-keys/new")
    expect(page.get_by_role("heading", name="Create an API key")).to_be_visible()
    if what is None:  # the Free plan: read-only, one banner
        expect(page.get_by_text("API keys are available on paid plans.")).to_have_count(1)
        expect(page.get_by_role("link", name="Upgrade")).to_have_attribute("href", "/plans")
        expect(page.get_by_label("Name")).to_be_disabled()
        expect(page.get_by_role("button", name="Create key")).to_have_count(0)
    else:
        expect(page.locator(f"input[name=access][value={what}]")).to_be_checked()
    if email.startswith("erin"):
        locked = page.get_by_label("Choose permissions")
        expect(locked).to_be_disabled()
        expect(page.get_by_role("link", name="Compare plans")).to_have_count(2)
        page.get_by_role("link", name="Compare plans").first.click()
        expect(page.get_by_role("heading", name="Plans", exact=True)).to_be_visible()
        expect(page.locator(".plan-yours")).to_contain_text("Team")
        axe_at_both_sizes(page, check_page, "read-right-plans")
        page.go_back()
    fits_the_phone(page, f"create ({email})")
    axe_at_both_sizes(page, check_page, f"read-right-create-{email.split('@')[0]}")


def test_the_key_page_shows_refused_calls_and_is_compact_on_a_phone(
    app, new_page, server, make_key, check_page
):
    from example_app import apikeys

    secret = make_key("bob@acme.test", ["invoice.read"], name="Busy export", rate_limit="20/minute")
    codes = [
        requests.get(
            server + "/v1/invoices", headers={"Authorization": f"Bearer {secret}"}, timeout=10
        ).status_code
        for _ in range(25)
    ]
    assert codes.count(429) == 5
    apikeys.flush_usage(app)
    page = new_page()
    login(page, "bob@acme.test")
    page.get_by_role("link", name="Busy export").click()
    expect(page.locator("#requests .ak-req-refused")).to_have_count(5)
    expect(page.get_by_text("No requests recorded yet")).to_have_count(0)
    expect(page.get_by_role("navigation", name="Sections of this page")).to_be_visible()
    page.set_viewport_size(MOBILE)
    rows = page.evaluate(
        "[...document.querySelectorAll('#requests tbody tr')].map(r => r.offsetHeight)"
    )
    assert rows and max(rows) < 70, rows  # two short lines, not a card per request
    page.set_viewport_size(DESKTOP)
    fits_the_phone(page, "key page")
    axe_at_both_sizes(page, check_page, "read-right-detail")


def test_the_docs_page_the_404_and_the_sign_in_page(new_page, check_page, server):
    page = new_page()
    page.goto("/login")
    expect(page.locator(".demo-accounts tbody tr")).to_have_count(5)
    axe_at_both_sizes(page, check_page, "read-right-login")
    page.goto("/no-such-page")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    axe_at_both_sizes(page, check_page, "read-right-404")
    page.goto("/docs")
    page.get_by_role("link", name="← Back to Ledgerly").wait_for()
    for tag in ("Invoices", "Clients", "Your key"):
        expect(page.locator(f"h3.opblock-tag[data-tag='{tag}']")).to_be_visible()
    page.get_by_role("link", name="← Back to Ledgerly").click()
    expect(page).to_have_url(server + "/")
