"""The pages at scale (issue #20): one user with 50,000 keys (a bot whose revoked keys
are never deleted) and a long audit trail. Every page renders one page of rows, in a
fixed number of statements whatever the page (keyset pages: the last page costs what
the second does), and weighs well under 200 KB.

The rows go in by bulk INSERT (tests/scale_data.py). Times are not asserted here (a
busy 2-core machine); benchmarks/pages.py measures them against gunicorn.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.conftest import (
    _COMPILED_TEMPLATES,
    DATABASE_URL,
    _configured_postgres,
    _fresh_schema,
)
from tests.pages.conftest import Browser
from tests.scale_data import BOT_EMAIL, Filled, fill
from tests.statements import recorded_statements

KEYS = 50_000
PAGE_SIZE = 25
MAX_BYTES = 200_000
ROW = re.compile(r'<th scope="row" data-label="Name">')


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, Filled]]:
    """The example app with the bot's 50,000 keys and an event per key, made once."""
    from example_app import create_app, db
    from example_app.cli import seed_demo_data

    tmp = tmp_path_factory.mktemp("scale")

    def run(url: str) -> Iterator[tuple[Flask, Filled]]:
        app = create_app({"TESTING": True, "SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": url})
        app.instance_path = str(tmp)
        app.jinja_env.bytecode_cache = _COMPILED_TEMPLATES
        with app.app_context():
            db.create_all()
            seed_demo_data()
            filled = fill(keys=KEYS, events=KEYS)
            db.session.remove()
        yield app, filled
        with app.app_context():
            app.extensions["apikeys"].flush_usage(app)
            db.session.remove()
            db.engine.dispose()

    if DATABASE_URL.startswith("postgres"):
        with _fresh_schema(_configured_postgres()) as url:
            yield from run(url)
    else:
        yield from run(f"sqlite:///{tmp / 'scale.sqlite'}")


DASH = "\N{EN DASH}"


def signed_in(app: Flask, email: str) -> Browser:
    browser = Browser(app.test_client())
    browser.login(email)
    return browser


def measured(browser: Browser, path: str) -> tuple[str, int]:
    """The page at *path* (under the blueprint, or absolute) and its statement count."""
    with recorded_statements() as statements:
        response = browser.client.get(path) if path.startswith("/settings/") else browser.get(path)
    assert response.status_code == 200, (path, response.status_code)
    assert len(response.data) < MAX_BYTES, (path, len(response.data))
    return response.text, len(statements)


def link(page: str, label: str) -> str:
    """The href of the pager's link *label* (``Page 2``, ``Next →``, ...)."""
    match = re.search(rf'<a [^>]*href="([^"]+)"[^>]*>{re.escape(label)}</a>', page) or re.search(
        rf'<a href="([^"]+)" aria-label="{re.escape(label)}"', page
    )
    assert match, f"no link {label!r}"
    return html.unescape(match.group(1))


def test_my_keys_is_a_keyset_page_of_25_in_a_fixed_number_of_statements(scale):
    app, filled = scale
    bot = signed_in(app, BOT_EMAIL)
    first, first_cost = measured(bot, "/")
    assert len(ROW.findall(first)) == PAGE_SIZE
    assert f"Showing 1{DASH}25 of {filled.active:,} active keys" in first
    assert f'Revoked <span class="ak-segment-count">{filled.revoked:,}</span>' in first
    last_page = -(-filled.active // PAGE_SIZE)
    assert f'aria-label="Page {last_page:,}, the last">{last_page:,}</a>' in first

    second, second_cost = measured(bot, link(first, "Page 2"))
    assert f"Showing 26{DASH}50 of" in second and len(ROW.findall(second)) == PAGE_SIZE
    last, last_cost = measured(bot, link(first, f"Page {last_page:,}, the last"))
    rows = filled.active - (last_page - 1) * PAGE_SIZE
    assert len(ROW.findall(last)) == rows
    before_last, before_last_cost = measured(bot, link(last, "← Previous"))
    assert f'aria-current="page" aria-label="Page {last_page - 1:,}"' in before_last
    assert len(ROW.findall(before_last)) == PAGE_SIZE
    # Page 1 reads no page before it; every other page costs the same, the last included.
    assert second_cost == before_last_cost <= first_cost + 1, (first_cost, second_cost)
    assert last_cost <= second_cost
    assert first_cost <= 14, first_cost

    # Every key, revoked ones included, sorted by a nullable column, and a search.
    every, every_cost = measured(bot, "/?status=all&sort=last_used")
    assert f"of {filled.keys:,} keys" in every and len(ROW.findall(every)) == PAGE_SIZE
    assert every_cost <= first_cost
    far, far_cost = measured(bot, link(every, f"Page {filled.keys // PAGE_SIZE:,}, the last"))
    assert len(ROW.findall(far)) == PAGE_SIZE and far_cost <= second_cost
    found, _ = measured(bot, "/?status=all&q=deploy+04207")
    assert len(ROW.findall(found)) == 1 and ">deploy 04207</a>" in found


def test_the_organization_page_is_a_keyset_page_with_a_numbered_pager(scale):
    app, filled = scale
    alice = signed_in(app, "alice@acme.test")
    first, first_cost = measured(alice, "/organization")
    assert len(ROW.findall(first)) == PAGE_SIZE
    assert f"Showing 1{DASH}25 of {filled.active:,} active keys" in first
    pages = -(-filled.active // PAGE_SIZE)
    third, third_cost = measured(alice, link(first, "Page 3"))
    assert f"Showing 51{DASH}75 of" in third
    assert 'aria-label="Page 1">1</a>' in third  # the first page, then 2 before 3
    last, last_cost = measured(alice, link(first, f"Page {pages:,}, the last"))
    assert len(ROW.findall(last)) == filled.active - (pages - 1) * PAGE_SIZE
    assert last_cost <= third_cost <= first_cost + 1, (first_cost, third_cost, last_cost)
    assert first_cost <= 16, first_cost


def test_offboarding_summarises_instead_of_listing_every_key(scale):
    app, filled = scale
    alice = signed_in(app, "alice@acme.test")
    page, cost = measured(alice, f"/organization/1/users/{filled.bot_id}/revoke-all")
    assert f"This will revoke {filled.active:,} keys" in page
    assert page.count('<li><a href="/settings/api-keys/') == 5  # the newest five
    assert f"See all {filled.active:,} working keys of Deploy Bot" in page
    assert f">{filled.revoked:,}</a>" in page  # the revoked ones, counted and linked
    assert "Deploy Bot can still create keys." in page
    assert f'href="/settings/members/{filled.bot_id}?org=1"' in page
    assert len(page) < 30_000 and cost <= 14, (len(page), cost)


def test_the_policy_page_lists_the_newest_keys_that_break_it(scale):
    app, _ = scale
    from example_app import apikeys

    with app.app_context():
        apikeys.service.policies.set_policy(
            1, max_lifetime_days=365, allowed_permissions=["invoice.read", "client.read"]
        )
    try:
        alice = signed_in(app, "alice@acme.test")
        page, cost = measured(alice, "/organization/1/policy")
        assert page.count('<ul class="ak-breaking">') == 2
        assert page.count("ak-breaking") and cost <= 16, cost
        assert "/organization?org=1&amp;policy=lifetime" in page
        assert "/organization?org=1&amp;policy=permissions" in page
        marked, _ = measured(alice, "/organization?policy=permissions")
        assert len(ROW.findall(marked)) == PAGE_SIZE
        assert marked.count("Breaks policy</span>") == PAGE_SIZE
        assert "Holds invoice.write: not allowed" in marked
    finally:
        with app.app_context():
            apikeys.service.policies.set_policy(1, max_lifetime_days=None, allowed_permissions=None)


def test_the_audit_trail_pages_50_events(scale):
    app, _ = scale
    alice = signed_in(app, "alice@acme.test")
    page, cost = measured(alice, "/organization/audit")
    assert page.count('<th scope="row" data-label="When">') == 50
    older, older_cost = measured(alice, link(page, "Older →"))
    assert older.count('<th scope="row" data-label="When">') == 50
    assert older_cost == cost and cost <= 14, cost
