"""The screenshots of the docs, taken from the real pages in Chromium.

The docs show ``docs/_static/screenshots/*.png``; this test makes every one of them. It
writes them to ``test-artifacts/screenshots/docs/``, and into the docs only when
``UPDATE_DOCS_SCREENSHOTS=1`` (the committed ones then change only when someone means
them to: random keys and ports make every run's images differ a little). It fails when a
page the docs show no longer renders as the flow expects, or when the docs show a
screenshot this test does not make.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.browser.conftest import login

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"
SHOTS = (
    DOCS / "_static" / "screenshots"
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1"
    else DOCS.parent / "test-artifacts" / "screenshots" / "docs"
)
REFERENCE = re.compile(r"_static/screenshots/([\w.-]+\.png)")


def referenced_by_docs() -> set[str]:
    names: set[str] = set()
    for page in DOCS.glob("*.md"):
        names.update(REFERENCE.findall(page.read_text()))
    return names


def add_usage(app, secret: str) -> None:
    """Two weeks of made-up daily usage, so the detail page's chart has something to show."""
    from example_app import apikeys, db

    with app.app_context():
        models = apikeys.models
        key = apikeys.service.verifier.find_by_secret(secret)
        now = dt.datetime.now(dt.UTC)
        total = 0
        for days_ago in range(14):
            count = 40 + (days_ago * 37) % 90
            total += count
            db.session.add(
                models.APIKeyUsageDay(
                    key_id=key.id, day=now.date() - dt.timedelta(days=days_ago), count=count
                )
            )
        db.session.execute(
            sa.update(models.APIKey)
            .where(models.APIKey.id == key.id)
            .values(usage_count=total, last_used_at=now - dt.timedelta(minutes=5))
        )
        db.session.commit()


def test_the_docs_screenshots_are_taken_from_the_pages(app, new_page, make_key):
    make_key("bob@acme.test", ["invoice.read", "client.read"], name="Accounting export")
    make_key("bob@acme.test", ["client.read"], name="CRM sync")
    ci = make_key("alice@acme.test", ["invoice.read", "invoice.write"], name="CI deploy")
    add_usage(app, ci)
    make_key("alice@acme.test", ["client.read"], name="Old laptop script", expires_at=None)
    bot = make_key("alice@acme.test", ["invoice.read"], name="Deploy bot")
    lost = make_key("alice@acme.test", ["client.read"], name="Lost phone")
    from example_app import apikeys

    with app.app_context():  # a rotation in its grace period, and a revoked key
        service = apikeys.service
        service.keys.rotate(service.verifier.find_by_secret(bot), grace=dt.timedelta(hours=24))
        key = service.verifier.find_by_secret(lost)
        service.keys.revoke(key, actor=key.owner, reason="phone lost")

    SHOTS.mkdir(parents=True, exist_ok=True)
    taken: list[str] = []

    def shoot(page, name: str, width: int = 1100, height: int = 760, full: bool = True) -> None:
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / name), full_page=full)
        page.set_viewport_size({"width": 1100, "height": 760})
        taken.append(name)

    page = new_page()
    login(page, "alice@acme.test")
    expect(page.get_by_role("heading", name="API keys", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Revoked 1")).to_be_visible()
    expect(page.locator(".ak-tag-new")).to_have_count(1)
    shoot(page, "keys.png")

    page.get_by_role("link", name="Create API key").first.click()
    expect(page.get_by_role("heading", name="Create an API key")).to_be_visible()
    page.get_by_label("Name").fill("Nightly invoice export")
    page.get_by_label(re.compile("See invoices")).check()
    page.get_by_role("radio", name="30 days").check()
    expect(page.locator("[data-ak-expiry-summary]")).to_contain_text("Expires on")
    shoot(page, "create.png")

    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("You will not see it again.")).to_be_visible()
    shoot(page, "show-once.png")
    shoot(page, "show-once-mobile.png", 390, 844, full=False)  # the first screen of a phone

    page.goto("/settings/api-keys/")
    page.get_by_role("link", name="CI deploy").click()
    expect(page.get_by_role("heading", name=re.compile("CI deploy"))).to_be_visible()
    shoot(page, "detail.png")

    page.get_by_role("link", name="Organization keys").click()
    expect(page.get_by_role("heading", name="Organization API keys")).to_be_visible()
    expect(page.get_by_role("link", name="CRM sync", exact=True)).to_be_visible()
    page.get_by_role("row").filter(has_text="CRM sync").locator("summary").click()
    expect(page.get_by_role("link", name="Revoke…")).to_be_visible()
    shoot(page, "organization.png")

    assert referenced_by_docs() == set(taken)
    assert all((DOCS / "_static" / "screenshots" / name).is_file() for name in taken)
