"""The key lists and the pages around them with many keys (issue #20), in Chromium at
1280 and 390 px: a bot with 300 keys (most revoked), an organization with a policy its
keys break. Axe at both sizes, no sideways scroll on a phone, screenshots in
``test-artifacts/screenshots`` (``lists-*``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.browser.test_pages_polish import DESKTOP, MOBILE, axe_at_both_sizes, fits_the_phone
from tests.scale_data import BOT_EMAIL, Filled, fill

pytestmark = pytest.mark.browser
DASH = "\N{EN DASH}"


@pytest.fixture
def filled(app: Any) -> Filled:
    from example_app import apikeys

    with app.app_context():
        done = fill(keys=300, events=300)
        apikeys.service.policies.set_policy(
            1, max_lifetime_days=365, allowed_permissions=["invoice.read", "client.read"]
        )
    return done


def test_my_keys_pages_searches_and_filters_by_status(filled, new_page, check_page):
    page = new_page()
    login(page, BOT_EMAIL)
    expect(page.get_by_role("link", name=f"Active {filled.active}")).to_have_attribute(
        "aria-current", "true"
    )
    expect(page.get_by_role("link", name=f"Revoked {filled.revoked}")).to_be_visible()
    expect(
        page.get_by_text(re.compile(f"Showing 1{DASH}25 of {filled.active} active keys"))
    ).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(25)
    expect(page.get_by_role("navigation", name="Pages of your keys")).to_be_visible()
    axe_at_both_sizes(page, check_page, "lists-my-keys")
    fits_the_phone(page, "my keys")

    page.get_by_role("link", name="Page 2", exact=True).click()
    expect(page).to_have_url(re.compile(r"after=.*page=2|page=2.*after="))
    expect(page.get_by_text(re.compile(f"Showing 26{DASH}50 of"))).to_be_visible()
    expect(page.locator(".ak-page-on")).to_have_text("2")
    page.get_by_role("link", name="Next →").click()
    expect(page.locator(".ak-page-on")).to_have_text("3")
    page.get_by_role("link", name="← Previous").click()
    expect(page.locator(".ak-page-on")).to_have_text("2")
    last = -(-filled.active // 25)
    page.get_by_role("link", name=re.compile(rf"^Page {last}(, the last)?$")).click()
    expect(page.locator(".ak-page-on")).to_have_text(str(last))
    expect(page.get_by_role("link", name="Next →")).to_have_count(0)

    page.get_by_role("link", name=f"Revoked {filled.revoked}").click()
    expect(page.locator("tbody tr").first.get_by_text("Revoked", exact=True)).to_be_visible()
    page.get_by_label("Name or key prefix").fill("deploy 0029")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"status=revoked"))
    expect(page.locator("tbody tr")).to_have_count(len([n for n in range(290, 300) if n % 10 >= 4]))
    axe_at_both_sizes(page, check_page, "lists-my-keys-search")


def test_the_organization_list_marks_keys_that_break_the_policy(filled, new_page, check_page):
    page = new_page()
    login(page, "alice@acme.test", "/settings/api-keys/organization")
    expect(page.get_by_role("heading", name="Organization API keys")).to_be_visible()
    expect(page.locator("thead th")).to_have_count(6)
    wide, room = page.locator(".ak-table-wrap").evaluate("el => [el.scrollWidth, el.clientWidth]")
    assert wide <= room, f"the organization table scrolls sideways: {wide} > {room}"
    expect(page.locator(".ak-tag-warn").first).to_have_text("Breaks policy")
    expect(page.get_by_text(re.compile(": not allowed$")).first).to_be_visible()
    axe_at_both_sizes(page, check_page, "lists-organization")
    fits_the_phone(page, "organization keys")

    # The policy filter applies itself; the pager keeps it.
    page.get_by_label("Policy").select_option("permissions")
    expect(page).to_have_url(re.compile(r"policy=permissions"))
    expect(page.locator("tbody tr .ak-tag-warn")).to_have_count(25)
    page.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"policy=permissions"))
    expect(page.locator(".ak-page-on")).to_have_text("2")

    # On a phone the filters fold behind their summary, and open on a tap.
    page.set_viewport_size(MOBILE)
    page.reload()
    expect(page.get_by_label("Owner")).to_be_hidden()
    page.locator("summary", has_text="Filters").click()
    expect(page.get_by_label("Owner")).to_be_visible()
    page.set_viewport_size(DESKTOP)


def test_offboarding_summarises_and_links_to_the_members_permissions(filled, new_page, check_page):
    page = new_page()
    offboard = f"/settings/api-keys/organization/1/users/{filled.bot_id}/revoke-all"
    login(page, "alice@acme.test", offboard)
    expect(page.get_by_role("heading", name=re.compile("This will revoke"))).to_be_visible()
    expect(page.locator(".ak-offboard-keys li")).to_have_count(5)
    expect(page.get_by_role("link", name=re.compile(r"See all \d+ working keys"))).to_be_visible()
    expect(page.get_by_text("Deploy Bot can still create keys.")).to_be_visible()
    axe_at_both_sizes(page, check_page, "lists-offboarding")
    fits_the_phone(page, "offboarding")

    page.get_by_role("link", name="Remove their permission to create keys").click()
    expect(page.get_by_role("heading", name="Deploy Bot in Acme")).to_be_visible()
    page.get_by_label(re.compile("^Create API keys")).uncheck()
    page.get_by_role("button", name="Save permissions").click()
    expect(page.get_by_text("Saved the permissions of Deploy Bot.")).to_be_visible()
    page.goto(offboard)
    expect(page.get_by_text("can still create keys")).to_have_count(0)


def test_the_policy_page_lists_both_kinds_of_breaking_keys(filled, new_page, check_page):
    page = new_page()
    login(page, "alice@acme.test", "/settings/api-keys/organization/1/policy")
    expect(page.get_by_role("heading", name="Key policy")).to_be_visible()
    expect(page.get_by_role("link", name="Organization keys", exact=True)).to_have_attribute(
        "aria-current", "true"
    )
    expect(page.get_by_role("heading", name="Keys that outlive 365 days")).to_be_visible()
    expect(page.get_by_role("heading", name="Keys holding more than is allowed")).to_be_visible()
    expect(page.locator(".ak-breaking")).to_have_count(2)
    box = page.get_by_label("Keys may hold only the permissions chosen below")
    perm = page.get_by_label(re.compile("Create invoices"))
    expect(box).to_be_checked()
    expect(perm).to_be_enabled()
    box.uncheck()
    expect(perm).to_be_disabled()
    box.check()
    expect(perm).to_be_enabled()
    axe_at_both_sizes(page, check_page, "lists-policy")
    fits_the_phone(page, "key policy")
    page.get_by_role(
        "link", name=re.compile(r"See all \d+ in the organization's keys")
    ).first.click()
    expect(page).to_have_url(re.compile(r"policy=lifetime"))
