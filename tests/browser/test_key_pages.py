"""The key pages in headless Chromium: the flows a new user and an admin go through."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import login

pytestmark = pytest.mark.browser


def call(server: str, secret: str, path: str = "/v1/clients") -> int:
    response = requests.get(
        server + path, headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    return response.status_code


def test_bob_creates_uses_renames_rotates_and_revokes_a_key(new_page, server, check_page):
    page = new_page()
    page.goto("/")
    check_page(page, "home")
    login(page, "bob@acme.test")
    expect(page).to_have_url(re.compile(r"/settings/api-keys/$"))
    expect(page.get_by_role("heading", name="You have no API keys yet")).to_be_visible()
    check_page(page, "keys-empty")

    page.get_by_role("link", name="Create your first key").click()
    expect(page.get_by_role("heading", name="Create an API key")).to_be_visible()
    expect(page.get_by_label(re.compile("Create invoices"))).to_be_disabled()
    expect(page.locator("#scope-invoice-write-why")).to_have_text(
        "You don\u2019t have this permission"
    )
    check_page(page, "create")

    page.get_by_label("Name").fill("Accounting export")
    page.get_by_label("Read-only", exact=True).check()
    expect(page.get_by_label(re.compile("See invoices"))).to_be_checked()
    expect(page.get_by_label(re.compile("See clients"))).to_be_checked()
    page.get_by_role("button", name="Create key").click()

    expect(page.get_by_text("You will not see it again.")).to_be_visible()
    check_page(page, "show-once")
    shown = page.get_by_label("API key", exact=True).input_value()
    page.get_by_role("button", name="Copy API key", exact=True).click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert secret == shown and secret.startswith("fsk_")
    assert call(server, secret) == 200
    assert call(server, secret, "/v1/me/permissions") == 200

    page.get_by_role("link", name="Done", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("Accounting export"))).to_be_visible()
    check_page(page, "detail")
    page.get_by_label("Name", exact=True).fill("Accounting export (prod)")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_text("The key was renamed.")).to_be_visible()
    expect(
        page.get_by_role("heading", name=re.compile(r"Accounting export \(prod\)"))
    ).to_be_visible()

    page.get_by_label("When should the old key stop working?").select_option("1h")
    page.get_by_role("button", name="Rotate key").click()
    expect(page.get_by_role("heading", name="Copy your new API key")).to_be_visible()
    expect(page.get_by_text("keeps working until")).to_be_visible()
    check_page(page, "show-once-rotated")
    rotated = page.get_by_label("API key", exact=True).input_value()
    assert rotated != secret
    assert call(server, secret) == 200  # the old key, in its grace hour
    assert call(server, rotated) == 200

    page.get_by_role("link", name="Done", exact=True).click()
    page.get_by_role("link", name="Revoke…").click()
    expect(page.get_by_role("heading", name=re.compile("Revoke"))).to_be_visible()
    check_page(page, "revoke-confirm")
    page.get_by_label("Reason (optional)").fill("done with the export")
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_text("was revoked.")).to_be_visible()
    assert call(server, rotated) == 401

    page.get_by_role("link", name="← Back to your keys").click()
    expect(page.get_by_role("cell", name="Revoked")).to_have_count(0)  # hidden until asked
    page.get_by_role("link", name=re.compile(r"^All \d+$")).click()
    expect(page.get_by_role("cell", name="Revoked")).to_have_count(1)
    expect(page.get_by_role("cell", name=re.compile("^Rotating"))).to_have_count(1)
    check_page(page, "keys-list")


def test_alice_revokes_a_key_of_bob_then_offboards_him(new_page, server, make_key, check_page):
    first = make_key("bob@acme.test", ["client.read"], name="Bob's laptop script")
    others = [make_key("bob@acme.test", ["invoice.read"], name=f"Bob's CI {n}") for n in (1, 2)]
    mine = make_key("alice@acme.test", ["client.read"], name="Alice's report")
    page = new_page()
    login(page, "alice@acme.test")
    page.get_by_role("link", name="Organization keys").click()
    expect(page.get_by_role("heading", name="Organization API keys")).to_be_visible()
    check_page(page, "organization")

    row = page.get_by_role("row").filter(has_text="Bob's laptop script")
    row.locator("summary").click()  # the row's "Actions" menu
    row.get_by_role("link", name="Revoke…").click()
    expect(page.get_by_text("owned by Bob Keller")).to_be_visible()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_text("was revoked.")).to_be_visible()
    assert call(server, first) == 401
    assert all(call(server, s, "/v1/invoices") == 200 for s in others)

    page.get_by_role("link", name=re.compile("Revoke all keys of Bob Keller")).click()
    expect(page.get_by_role("heading", name="This will revoke 2 keys")).to_be_visible()
    check_page(page, "offboard-confirm")
    page.get_by_label("Reason (optional)").fill("left the company")
    page.get_by_role("button", name="Revoke 2 keys").click()
    expect(page.get_by_text("Revoked 2 keys of Bob Keller")).to_be_visible()
    assert all(call(server, s, "/v1/invoices") == 401 for s in others)
    assert call(server, mine) == 200

    page.get_by_label("Status").select_option("revoked")  # applies itself (lists.js)
    expect(page).to_have_url(re.compile("status=revoked"))
    expect(page.get_by_role("row").filter(has_text="Bob's")).to_have_count(3)
    check_page(page, "organization-filtered")


def test_carol_sees_no_acme_key(new_page, make_key):
    make_key("bob@acme.test", ["client.read"], name="Acme-only key")
    page = new_page()
    login(page, "carol@globex.test")
    expect(page.get_by_role("heading", name="You have no API keys yet")).to_be_visible()
    page.goto("/settings/api-keys/organization")
    expect(page.get_by_role("heading", name="Organization API keys")).to_be_visible()
    expect(page.get_by_text("Acme-only key")).to_have_count(0)
    expect(page.get_by_text("Nobody in Globex has created an API key yet.")).to_be_visible()


def _tab_to(page, predicate: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {predicate}; }})()"):
            return
    raise AssertionError(f"never reached {predicate} with Tab")


def test_the_create_flow_works_with_the_keyboard_alone(new_page, server):
    page = new_page()
    page.goto("/login?next=/settings/api-keys/new")
    expect(page.get_by_label("Email")).to_be_focused()  # autofocus
    page.keyboard.type("bob@acme.test")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type("demo-password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Create an API key")).to_be_visible()
    expect(page.get_by_label("Name")).to_be_focused()
    page.keyboard.type("Keyboard key")
    _tab_to(page, "el.name === 'access'")
    page.keyboard.press("ArrowDown")  # "Choose permissions" -> "Read-only"
    expect(page.get_by_label("Read-only", exact=True)).to_be_checked()
    expect(page.get_by_label(re.compile("See clients"))).to_be_checked()
    _tab_to(page, "el.tagName === 'BUTTON' && el.textContent.trim() === 'Create key'")
    page.keyboard.press("Enter")
    expect(page.get_by_text("You will not see it again.")).to_be_visible()
    _tab_to(page, "el.dataset.akCopyTarget === 'ak-new-key'")
    page.keyboard.press("Enter")
    secret = page.evaluate("navigator.clipboard.readText()")
    assert call(server, secret) == 200


def test_pages_work_without_javascript(chromium, server):
    context = chromium.new_context(base_url=server, java_script_enabled=False)
    try:
        page = context.new_page()
        login(page, "bob@acme.test", "/settings/api-keys/new")
        page.get_by_label("Name").fill("No JS")
        page.get_by_label("Read-only", exact=True).check()
        page.get_by_role("button", name="Create key").click()
        secret = page.get_by_label("API key", exact=True).input_value()
        assert call(server, secret) == 200
        expect(page.get_by_role("button", name="Copy API key")).to_be_hidden()
    finally:
        context.close()
