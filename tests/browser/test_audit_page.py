"""The audit trail page in headless Chromium: an admin filters, pages, downloads the CSV.

Also makes the docs' screenshot of the page, ``docs/_static/audit-trail.png``, the way
tests/browser/test_docs_screenshots.py makes the others: written into the docs only
with ``UPDATE_DOCS_SCREENSHOTS=1``, under ``test-artifacts/`` otherwise.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.audit_helpers import ACME_SERVICE_EVENTS, INJECTION, seed_trail
from tests.browser.conftest import login
from tests.browser.test_csp import CSPWatch

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"
SHOT = "audit-trail.png"
SHOTS = (
    DOCS / "_static"
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1"
    else DOCS.parent / "test-artifacts" / "screenshots" / "docs"
)
ROWS = "table.ak-audit tbody tr"


def test_an_admin_reads_filters_pages_and_exports_the_trail(app, new_page, check_page):
    seeded = seed_trail(app)
    app.config["APIKEYS_AUDIT_PAGE_SIZE"] = 10
    page = new_page()
    watch = CSPWatch(page)  # no page of the trail breaks the Content-Security-Policy
    login(page, "alice@acme.test")
    page.get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", name="Audit trail", exact=True)).to_be_visible()
    expect(page.locator(ROWS)).to_have_count(10)
    watch.check("audit-trail")
    expect(page.get_by_role("link", name="Audit trail")).to_have_attribute("aria-current", "page")
    check_page(page, "audit-trail")

    older = page.get_by_role("link", name="Older →")
    older.click()
    expect(page.get_by_role("link", name="← Newer")).to_be_visible()
    second = page.locator(f"{ROWS} time").all_inner_texts()
    assert second and len(second) == 10
    page.get_by_role("link", name="← Newer").click()
    expect(page.get_by_role("link", name="← Newer")).to_have_count(0)

    page.get_by_label("Person", exact=True).select_option(label="Bob Keller (bob@acme.test)")
    page.get_by_label("Involved as", exact=True).select_option(label="Owns the key")
    page.get_by_label("Event", exact=True).select_option(label="Revoked")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(ROWS)).to_have_count(1)
    row = page.locator(ROWS).first
    expect(row).to_contain_text("lost laptop")
    expect(row).to_contain_text("Alice Martin (alice@acme.test)")
    expect(page.get_by_label("Involved as", exact=True)).to_have_value("owner")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [(r["event_name"], r["key"]) for r in rows] == [("revoked", seeded.laptop)]

    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Key", exact=True).fill(seeded.formula)
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(ROWS)).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    (created,) = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert created["key_name"] == "'" + INJECTION  # text in a spreadsheet, not a formula

    page.get_by_label("Key", exact=True).fill("fsk_nothere1")
    page.get_by_role("button", name="Apply").click()
    key_field = page.get_by_label("Key", exact=True)
    expect(key_field).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("No key fsk_nothere1 in this organization.")).to_be_visible()
    watch.check("audit-trail-error")
    check_page(page, "audit-trail-error")


def test_the_docs_screenshot_of_the_trail(app, new_page):
    seed_trail(app, formula_name="Invoice sync")
    page = new_page()
    login(page, "alice@acme.test", "/settings/api-keys/organization/audit")
    expect(page.get_by_role("heading", name="Audit trail", exact=True)).to_be_visible()
    expect(page.locator(ROWS)).to_have_count(min(50, ACME_SERVICE_EVENTS + 15))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1100, "height": 760})
    page.screenshot(path=str(SHOTS / SHOT), full_page=False)
    assert f"_static/{SHOT}" in (DOCS / "audit.md").read_text()
    assert (DOCS / "_static" / SHOT).is_file()
    assert re.search(r"Older|Newer", page.content()) is None  # one page at 50 a page
