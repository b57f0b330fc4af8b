"""The pages' rough edges (issue #14, item 4), server side, part two: the detail page's
facts, ``<time>`` tags, the create page's expiry dates, tabs, flashes, back links and
how fresh the numbers are."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import render_template_string

from tests.pages.test_polish import ISO_TIME, _rotate, _tab

# -- detail, create, times ------------------------------------------------------------------


def test_detail_facts_fill_their_rows(app, bob, make_key, db_key):
    plain = db_key(make_key("bob@acme.test", ["client.read"], name="plain"))
    page = bob.get(f"/{plain.id}").text
    # Organization, created, expires, last used, calls, limits: 6 facts -> 3 columns.
    assert 'class="ak-facts ak-facts-cols-3"' in page
    old = make_key("bob@acme.test", ["client.read"], name="rotated")
    new = db_key(_rotate(app, old))
    # + rotated from: 7 -> 4 columns (4 + 3)
    assert 'class="ak-facts ak-facts-cols-4 ak-facts-odd"' in bob.get(f"/{new.id}").text


def test_activity_and_audit_detail_times_are_time_tags_not_raw_iso(app, bob, make_key, db_key):
    old = make_key("bob@acme.test", ["client.read"], name="k")
    _rotate(app, old)
    page = bob.get(f"/{db_key(old).id}").text
    events = page[page.index('id="ak-events-title"') :]
    assert re.search(rf'<td data-label="When"><time datetime="{ISO_TIME}" title=', events)
    # "works until" in the rotation event's details is a time, not an ISO string.
    assert re.search(rf'works until:</span> <time datetime="{ISO_TIME}"', events)
    assert not re.search(r">\d{4}-\d\d-\d\dT", events)


def test_time_tag_macro(app):
    template = '{% import "apikeys/_macros.html" as m with context %}{{ m.time_tag(value) }}'
    moment = dt.datetime(2026, 12, 3, 14, 5, 9, tzinfo=dt.UTC)
    with app.test_request_context("/settings/api-keys/"):
        assert render_template_string(template, value=moment) == (
            '<time datetime="2026-12-03T14:05:09+00:00" title="2026-12-03 14:05:09 UTC">'
            "3 Dec 2026, 14:05</time>"
        )
        naive = render_template_string(template, value=moment.replace(tzinfo=None))
        assert 'datetime="2026-12-03T14:05:09+00:00"' in naive
        later = moment.astimezone(dt.timezone(dt.timedelta(hours=2)))
        assert ">3 Dec 2026, 14:05</time>" in render_template_string(template, value=later)
        assert render_template_string(template, value=None) == '<span class="ak-muted">—</span>'
        assert render_template_string(template, value=moment.date()) == (
            '<time datetime="2026-12-03" title="2026-12-03">3 Dec 2026</time>'
        )
        never = (
            '{% import "apikeys/_macros.html" as m with context %}{{ m.time_tag(None, "Never") }}'
        )
        assert render_template_string(never) == '<span class="ak-muted">Never</span>'


def test_create_page_says_when_each_choice_expires(bob):
    now = dt.datetime.now(dt.UTC)
    page = bob.get("/new").text
    in_90 = now + dt.timedelta(days=90)
    assert f"Expires on {in_90.day} {in_90:%B %Y}." in page  # the default choice
    for days, value in ((30, "30d"), (365, "1y")):
        then = now + dt.timedelta(days=days)
        assert f'data-ak-expiry-text="Expires on {then.day} {then:%B %Y}."' in page
        assert f'<span class="ak-choice-date">· {then.day} {then:%b %Y}</span>' in page
    assert 'data-ak-expiry-text="Never expires."' in page


def test_create_page_keeps_a_custom_date_when_it_shows_errors_again(bob):
    response = bob.submit(
        "/new", "/new", {"name": "", "expires": "custom", "expires_on": "2031-03-03"}
    )
    assert response.status_code == 400
    assert "Expires at the end of 3 March 2031 (UTC)." in response.text
    never = bob.submit("/new", "/new", {"name": "", "expires": "never"})
    assert (
        '<p class="ak-expiry-summary" data-ak-expiry-summary aria-live="polite">Never expires.'
        in never.text
    )


# -- layout: tabs, flashes, back links, freshness ---------------------------------------------


def test_tabs_highlight_the_section_of_sub_pages(alice, make_key, db_key, user_id):
    own = db_key(make_key("alice@acme.test", ["client.read"], name="mine")).id
    bobs = db_key(make_key("bob@acme.test", ["client.read"], name="bob's")).id
    index = alice.get("/").text
    assert _tab(index, "Your keys") == "page" and _tab(index, "Organization keys") is None
    for path in ("/new", f"/{own}", f"/{own}/revoke"):
        page = alice.get(path).text
        assert _tab(page, "Your keys") == "true", path
        assert _tab(page, "Organization keys") is None, path
    assert _tab(alice.get("/organization").text, "Organization keys") == "page"
    for path in (
        f"/{bobs}",
        f"/{bobs}/revoke",
        f"/organization/1/users/{user_id('bob@acme.test')}/revoke-all",
    ):
        page = alice.get(path).text
        assert _tab(page, "Organization keys") == "true", path
        assert _tab(page, "Your keys") is None, path
    assert "Audit trail</a>" in index  # another tab of the same bar


def test_flash_messages_come_under_the_page_title(bob, make_key, db_key):
    key_id = db_key(make_key("bob@acme.test", ["client.read"], name="old"))
    response = bob.submit(f"/{key_id.id}", f"/{key_id.id}/rename", {"name": "new"})
    assert response.status_code == 302
    page = bob.get(f"/{key_id.id}").text
    assert page.index("<h1>") < page.index("The key was renamed.")


@pytest.mark.parametrize("path", ["/new", "/{key}", "/{key}/revoke"])
def test_every_back_link_says_back_to(bob, make_key, db_key, path):
    key_id = db_key(make_key("bob@acme.test", ["client.read"], name="k")).id
    page = bob.get(path.format(key=key_id)).text
    back = re.search(r'<p class="ak-back">\s*<a href="[^"]+">([^<]+)</a>', page)
    assert back and back.group(1).startswith("← Back to "), page[:3000]


def test_lists_say_how_fresh_calls_and_last_use_are(app, alice, make_key, db_key):
    from example_app import apikeys

    key_id = db_key(make_key("alice@acme.test", ["client.read"], name="k")).id
    for path in ("/", "/organization", f"/{key_id}"):
        assert "Calls and last use are saved every 10 seconds" in alice.get(path).text, path
    app.config.update(APIKEYS_USAGE_FLUSH_INTERVAL=90, APIKEYS_LAST_USED_RESOLUTION=300)
    apikeys.refresh(app)
    page = alice.get("/").text
    assert "saved every 90 seconds" in page
    assert "Last use is updated at most once per 5 minutes." in page
    app.config.update(APIKEYS_USAGE_TRACKING=False)
    apikeys.refresh(app)
    assert "Calls and last use are saved" not in alice.get(f"/{key_id}").text


def test_the_time_tag_example_of_the_docs_renders_as_it_says(app):
    from types import SimpleNamespace

    from tests.pages.test_docs_and_templates import _doc_blocks

    example = next(b for b in _doc_blocks("jinja") if "time_tag" in b)
    said = re.search(r"\{# (<time .*</time>) #\}", example)
    assert said, example
    key = SimpleNamespace(
        created_at=dt.datetime(2026, 12, 3, 14, 5, 9, tzinfo=dt.UTC), last_used_at=None
    )
    with app.test_request_context("/settings/api-keys/"):
        out = render_template_string(example, key=key)
    assert said.group(1) in out
    assert '<span class="ak-muted">Never</span>' in out
