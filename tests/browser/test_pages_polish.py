"""The pages' rough edges, fixed (issue #14, item 4), checked in Chromium at both sizes.

Each test walks a page the way the designer did, asserts what was wrong is right now,
runs axe-core and saves the screenshots (``check_page``: ``test-artifacts/screenshots``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}


def fits_the_phone(page: Any, name: str) -> None:
    """At 390 px nothing scrolls the page sideways."""
    page.set_viewport_size(MOBILE)
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    page.set_viewport_size(DESKTOP)
    assert scroll <= inner, f"{name} scrolls sideways at 390 px: {scroll} > {inner}"


def axe_at_both_sizes(page: Any, check_page: Any, name: str) -> None:
    """No axe-core violation at all, on the phone and on the desktop; then the
    screenshots (``check_page`` runs axe again at 1280 px, for serious ones)."""
    for viewport in (MOBILE, DESKTOP):
        page.set_viewport_size(viewport)
        found = check_page.axe.run(page).response["violations"]
        assert not found, (name, viewport, [(v["id"], v["nodes"][0]["target"]) for v in found])
    check_page(page, name)


def day(moment: dt.datetime | dt.date, long: bool = False) -> str:
    return f"{moment.day} {moment:%B %Y}" if long else f"{moment.day} {moment:%b %Y}"


def service_call(app: Any, action: str, secret: str, **kwargs: Any) -> Any:
    """Rotate or revoke a key the way a script would, outside the browser."""
    from example_app import apikeys

    with app.app_context():
        service = apikeys.service
        key = service.verifier.find_by_secret(secret)
        if action == "rotate":
            return service.keys.rotate(key, **kwargs).secret
        return service.keys.revoke(key, actor=key.owner, **kwargs)


def prefix_of(app: Any, secret: str) -> str:
    from example_app import apikeys

    with app.app_context():
        return str(apikeys.service.verifier.find_by_secret(secret).display_prefix)


def flash_is_under_the_title(page: Any, text: str) -> None:
    flash = page.locator(".ak-flashes", has_text=text)
    expect(flash).to_be_visible()
    after = flash.evaluate(
        "el => !!(document.querySelector('.ak h1').compareDocumentPosition(el) & 4)"
    )
    assert after, "the flash message comes before the page title"


def test_my_keys_revoke_from_a_row_menu_and_revoked_keys_behind_a_filter(
    app, new_page, make_key, check_page
):
    old = make_key("bob@acme.test", ["client.read"], name="CI deploy")
    new = service_call(app, "rotate", old, grace=dt.timedelta(hours=24))
    lost = make_key("bob@acme.test", ["client.read"], name="Old laptop")
    service_call(app, "revoke", lost, reason="laptop lost")
    make_key("bob@acme.test", ["invoice.read"], name="Nightly export")
    page = new_page()
    login(page, "bob@acme.test")

    # Revoked keys are hidden until asked for: active keys by default, the others a
    # status away, each with its count.
    expect(page.get_by_role("link", name="Active 3")).to_have_attribute("aria-current", "true")
    expect(page.get_by_role("link", name="Revoked 1")).to_be_visible()
    expect(page.get_by_text("Old laptop")).to_have_count(0)

    # Two rows named "CI deploy": the new one and the rotated one say which is which.
    rows = page.get_by_role("row").filter(has_text="CI deploy")
    expect(rows).to_have_count(2)
    new_row = rows.filter(has=page.locator("code.ak-prefix", has_text=prefix_of(app, new)))
    old_row = rows.filter(has=page.locator("code.ak-prefix", has_text=prefix_of(app, old)))
    expect(new_row.locator(".ak-tag")).to_have_text("new")
    expect(new_row.get_by_text(re.compile("^Replaces"))).to_be_visible()
    expect(old_row.locator(".ak-tag")).to_have_text("rotated")
    expect(old_row.get_by_text(re.compile("^Replaced by"))).to_be_visible()
    expect(old_row.get_by_text(re.compile("^Works until"))).to_be_visible()
    expect(page.get_by_text(re.compile("saved every 10 seconds"))).to_be_visible()

    # Revoke from the list: a menu per row, then the confirm page, then back to the list.
    row = page.get_by_role("row").filter(has_text="Nightly export")
    expect(row.get_by_role("link", name="Revoke…")).to_be_hidden()
    row.locator("summary").click()
    expect(row.get_by_role("link", name="Revoke…")).to_be_visible()
    axe_at_both_sizes(page, check_page, "polish-keys-menu-open")
    fits_the_phone(page, "my keys with a menu open")
    page.keyboard.press("Escape")
    expect(row.get_by_role("link", name="Revoke…")).to_be_hidden()
    row.locator("summary").click()
    row.get_by_role("link", name="Revoke…").click()
    expect(page.get_by_role("link", name="← Back to your keys")).to_be_visible()
    page.get_by_label("Reason (optional)").fill("not needed")
    page.get_by_role("button", name="Revoke key").click()
    expect(page).to_have_url(re.compile(r"/settings/api-keys/$"))
    flash_is_under_the_title(page, "was revoked.")
    expect(page.get_by_role("link", name="Nightly export")).to_have_count(0)
    axe_at_both_sizes(page, check_page, "polish-keys-revoked-hidden")

    page.get_by_role("link", name="Revoked 2").click()
    expect(page.get_by_role("link", name="Old laptop")).to_be_visible()
    expect(page.get_by_text("“laptop lost”")).to_be_visible()
    expect(page.get_by_role("link", name="Revoked 2")).to_have_attribute("aria-current", "true")
    expect(page.get_by_role("link", name="CI deploy")).to_have_count(0)  # active: hidden
    axe_at_both_sizes(page, check_page, "polish-keys-revoked-shown")
    fits_the_phone(page, "my keys with revoked ones")


def test_organization_page_sorts_shows_expiry_and_reasons_and_keeps_actions_in_menus(
    app, new_page, make_key, check_page
):
    gone = make_key("bob@acme.test", ["client.read"], name="Bob's laptop script")
    service_call(app, "revoke", gone, reason="left the company")
    make_key("bob@acme.test", ["client.read"], name="CRM sync", expires_at=None)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    busy = make_key("alice@acme.test", ["invoice.read"], name="CI deploy", expires_at=soon)
    from example_app import apikeys, db

    with app.app_context():
        apikeys.service.verifier.find_by_secret(busy).usage_count = 1234
        db.session.commit()
    page = new_page()
    login(page, "alice@acme.test")
    page.get_by_role("link", name="Organization keys", exact=True).click()
    expect(page.get_by_role("heading", name="Organization API keys")).to_be_visible()
    expect(page.get_by_role("link", name="Organization keys", exact=True)).to_have_attribute(
        "aria-current", "page"
    )

    # The table fits 1,280 px: six columns, no sideways scroll.
    expect(page.locator("thead th")).to_have_count(6)
    wide, room = page.locator(".ak-table-wrap").evaluate("el => [el.scrollWidth, el.clientWidth]")
    assert wide <= room, f"the organization table scrolls sideways at 1280 px: {wide} > {room}"
    expect(page.get_by_text("Never expires").first).to_be_visible()
    expect(page.get_by_text("Bob's laptop script")).to_have_count(0)  # active keys only
    expect(page.locator("tbody .ak-btn-danger-outline")).to_have_count(0)  # no red per row

    # The filters apply themselves: choosing a status reloads the list (no Apply button).
    expect(page.get_by_role("button", name="Apply")).to_be_hidden()
    page.get_by_label("Status").select_option("all")
    expect(page).to_have_url(re.compile(r"status=all"))
    expect(page.get_by_text("“left the company”")).to_be_visible()

    # One way to sort: the headers. Newest first until one is chosen.
    expect(page.locator("th[aria-sort]")).to_have_count(0)
    name = page.get_by_role("columnheader", name=re.compile("^Name"))
    expect(name.locator(".ak-sort-icon")).to_have_text("↕")
    name.get_by_role("link").click()
    name = page.get_by_role("columnheader", name=re.compile("^Name"))
    expect(name).to_have_attribute("aria-sort", "ascending")
    expect(name.locator(".ak-sort-icon")).to_have_text("↑")
    expect(page.locator("tbody tr").first).to_contain_text("Bob's laptop script")
    expect(page).to_have_url(re.compile(r"status=all"))  # the filters stay
    name.get_by_role("link").click()
    name = page.get_by_role("columnheader", name=re.compile("^Name"))
    expect(name).to_have_attribute("aria-sort", "descending")
    expect(page.locator("tbody tr").first).to_contain_text("CRM sync")
    status = page.get_by_role("columnheader", name=re.compile("^Status"))
    status.get_by_role("link").click()
    expect(page.get_by_role("columnheader", name=re.compile("^Status"))).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(page.locator("tbody tr").first).to_contain_text("CI deploy")  # expires first
    page.get_by_role("link", name="Clear").click()
    expect(page.get_by_text("Bob's laptop script")).to_have_count(0)

    row = page.get_by_role("row").filter(has_text="CRM sync")
    row.locator("summary").click()
    expect(
        row.get_by_role("link", name=re.compile("^Revoke all keys of Bob Keller"))
    ).to_be_visible()
    axe_at_both_sizes(page, check_page, "polish-organization-menu-open")
    fits_the_phone(page, "organization keys with a menu open")
    row.get_by_role("link", name="Revoke…").click()
    expect(page.get_by_text("owned by Bob Keller")).to_be_visible()
    expect(page.get_by_role("link", name="Organization keys", exact=True)).to_have_attribute(
        "aria-current", "true"
    )
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("heading", name="Organization API keys")).to_be_visible()
    flash_is_under_the_title(page, "was revoked.")

    page.get_by_label("Name or key").fill("nothing like this")
    page.get_by_label("Name or key").press("Enter")
    expect(page.get_by_role("heading", name="No keys match")).to_be_visible()
    axe_at_both_sizes(page, check_page, "polish-organization-no-match")

    page.get_by_role("link", name=re.compile("Revoke all keys of Alice")).click()
    expect(page.get_by_role("link", name="Organization keys", exact=True)).to_have_attribute(
        "aria-current", "true"
    )
    expect(page.get_by_role("link", name="Your keys", exact=True)).not_to_have_attribute(
        "aria-current", re.compile(".")
    )
    expect(page.get_by_role("link", name="← Back to organization keys")).to_be_visible()


def test_create_page_says_when_the_key_expires_and_drops_fixed_errors(new_page, check_page):
    page = new_page()
    login(page, "bob@acme.test", "/settings/api-keys/new")
    summary = page.locator("[data-ak-expiry-summary]")
    today = dt.datetime.now(dt.UTC)
    expect(summary).to_have_text(f"Expires on {day(today + dt.timedelta(days=90), True)}.")
    page.get_by_role("radio", name="30 days").check()
    expect(summary).to_have_text(f"Expires on {day(today + dt.timedelta(days=30), True)}.")
    page.get_by_role("radio", name="Custom date").check()
    expect(summary).to_have_text("Pick the last day the key works.")
    page.get_by_label(re.compile("Expires after")).fill("2031-03-03")
    expect(summary).to_have_text("Expires at the end of 3 March 2031 (UTC).")
    page.get_by_role("radio", name="No expiration").check()
    expect(summary).to_have_text("Never expires.")

    # A message goes once its field is fixed, and comes back if it is broken again.
    page.get_by_role("button", name="Create key").click()
    name_error = page.get_by_text("Give the key a name.")
    expect(name_error).to_be_visible()
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    axe_at_both_sizes(page, check_page, "polish-create-invalid")
    page.get_by_label("Name").fill("Fixed")
    expect(name_error).to_be_hidden()
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "false")
    expect(page.get_by_label("Name")).not_to_have_attribute(
        "aria-describedby", re.compile("errors")
    )
    page.get_by_label("Name").fill("")
    expect(name_error).to_be_visible()
    page.get_by_label("Name").fill("Fixed again")
    expect(name_error).to_be_hidden()
    page.get_by_role("button", name="Create key").click()
    scope_error = page.get_by_text("Choose at least one permission.")
    expect(scope_error).to_be_visible()
    page.get_by_label(re.compile("See clients")).check()
    expect(scope_error).to_be_hidden()
    axe_at_both_sizes(page, check_page, "polish-create-fixed")
    fits_the_phone(page, "create")


def test_create_page_shows_each_expiry_date_without_javascript(chromium, server):
    context = chromium.new_context(base_url=server, java_script_enabled=False)
    try:
        page = context.new_page()
        login(page, "bob@acme.test", "/settings/api-keys/new")
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
        expect(page.locator(".ak-choice", has_text="30 days")).to_contain_text(day(later))
        expect(page.locator("[data-ak-expiry-summary]")).to_be_hidden()
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=str(_shots() / "polish-create-nojs-desktop.png"), full_page=True)
    finally:
        context.close()


def _shots() -> Any:
    from tests.browser.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def test_the_key_and_the_snippets_wrap_on_a_phone(new_page, check_page):
    page = new_page()
    login(page, "bob@acme.test", "/settings/api-keys/new")
    page.set_viewport_size(MOBILE)
    page.get_by_label("Name").fill("Phone key")
    page.get_by_label("Read-only", exact=True).check()
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("You will not see it again.")).to_be_visible()
    key = page.get_by_label("API key", exact=True)
    assert key.input_value().startswith("fsk_")
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('.ak-copy .ak-code')].map(el => ({
            id: el.id, right: el.getBoundingClientRect().right,
            sideways: el.scrollWidth - el.clientWidth, hidden: el.scrollHeight - el.clientHeight,
        }))"""
    )
    assert len(boxes) >= 4, boxes  # the key and its snippets
    for box in boxes:
        assert box["right"] <= 390, box  # inside the screen
        assert box["sideways"] <= 0, box  # wraps, no sideways scroll
        assert box["hidden"] <= 1, box  # all of it shown: no scroll either way
    lines = key.evaluate("el => el.clientHeight / parseFloat(getComputedStyle(el).lineHeight)")
    assert lines >= 1.9, "the key should wrap onto a second line at 390 px"
    fits_the_phone(page, "show once")
    axe_at_both_sizes(page, check_page, "polish-show-once")


def test_detail_page_facts_times_links_between_rotated_keys_and_tabs(
    app, new_page, make_key, check_page
):
    old = make_key("alice@acme.test", ["invoice.read"], name="CI deploy")
    new = service_call(app, "rotate", old, grace=dt.timedelta(hours=1))
    page = new_page()
    login(page, "alice@acme.test")
    newest = page.locator("code.ak-prefix", has_text=prefix_of(app, new))
    page.get_by_role("row").filter(has=newest).get_by_role("link", name="CI deploy").click()
    expect(page.get_by_role("heading", name=re.compile("CI deploy"))).to_be_visible()
    expect(page.get_by_role("link", name="Your keys", exact=True)).to_have_attribute(
        "aria-current", "true"
    )
    expect(page.get_by_text(re.compile("saved every 10 seconds"))).to_be_visible()

    # The event times: readable, the exact time on hover, ISO for machines.
    when = page.locator(".ak-events time").first
    expect(when).to_have_text(re.compile(r"^\d{1,2} \w{3} \d{4}, \d{2}:\d{2}$"))
    expect(when).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))
    expect(when).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT.*\+00:00$"))

    for viewport in (DESKTOP, MOBILE):
        page.set_viewport_size(viewport)
        rows = page.evaluate(
            """() => {
                const dl = document.querySelector('.ak-facts');
                const rows = {};
                for (const item of dl.children) {
                    const box = item.getBoundingClientRect();
                    (rows[Math.round(box.top)] ||= []).push(Math.round(box.width));
                }
                const width = Math.round(dl.getBoundingClientRect().width);
                return {width: width, rows: Object.values(rows)};
            }"""
        )
        for row in rows["rows"]:  # no fact alone on a row, unless it spans the row
            assert len(row) >= 2 or row[0] >= rows["width"] - 2, (viewport, rows)
    page.set_viewport_size(DESKTOP)
    axe_at_both_sizes(page, check_page, "polish-detail-new")
    fits_the_phone(page, "detail")

    page.get_by_role("link", name=f"{prefix_of(app, old)}…").click()
    expect(page.locator("dt", has_text="Replaced by")).to_be_visible()
    expect(page.locator(".ak-stops")).to_contain_text("Stops")  # its Expires: when it stops
    axe_at_both_sizes(page, check_page, "polish-detail-rotated")
    page.get_by_role("link", name=f"{prefix_of(app, new)}…").click()
    expect(page.locator("dt", has_text="Rotated from")).to_be_visible()

    bob_key = make_key("bob@acme.test", ["client.read"], name="Bob's export")
    from example_app import apikeys

    with app.app_context():
        bob_key_id = apikeys.service.verifier.find_by_secret(bob_key).id
    page.goto(f"/settings/api-keys/{bob_key_id}")
    expect(page.get_by_role("link", name="Organization keys", exact=True)).to_have_attribute(
        "aria-current", "true"
    )
    expect(page.get_by_role("link", name="← Back to organization keys")).to_be_visible()
