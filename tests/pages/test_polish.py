"""The pages' rough edges (issue #14, item 4), server side: filters, sorts, row menus and
their forms, empty states, rotation links, ``<time>`` tags, tabs, flashes, back links."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

from tests.conftest import bearer

ISO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"

DASH = "\N{EN DASH}"


def _rotate(app: Any, secret: str, hours: float = 1) -> str:
    from example_app import apikeys

    with app.app_context():
        service = apikeys.service
        return service.keys.rotate(
            service.verifier.find_by_secret(secret), grace=dt.timedelta(hours=hours)
        ).secret


def _revoke(app: Any, secret: str, reason: str | None = None) -> None:
    from example_app import apikeys

    with app.app_context():
        key = apikeys.service.verifier.find_by_secret(secret)
        apikeys.service.keys.revoke(key, actor=key.owner, reason=reason)


def _names(page: str) -> list[str]:
    """The key names of a list, top to bottom."""
    found = re.findall(r'<th scope="row" data-label="Name"><a [^>]*>([^<]+)<', page)
    return [html.unescape(name) for name in found]


def _tab(page: str, label: str) -> str | None:
    """The aria-current of tab *label* (None when it has none)."""
    match = re.search(rf'<a href="[^"]*" (?:aria-current="(\w+)")?>{label}</a>', page)
    assert match, f"no tab {label!r}"
    return match.group(1)


# -- my keys ----------------------------------------------------------------------------


def test_revoked_keys_are_hidden_until_asked_for(app, bob, make_key):
    make_key("bob@acme.test", ["client.read"], name="still here")
    for n in range(3):
        _revoke(app, make_key("bob@acme.test", ["client.read"], name=f"gone {n}"), "old")
    page = bob.get("/").text
    assert _names(page) == ["still here"]
    assert re.search(
        r'<a href="/settings/api-keys/\?status=revoked">Revoked '
        r'<span class="ak-segment-count">3</span></a>',
        page,
    )
    assert 'aria-current="true">Active <span class="ak-segment-count">1</span>' in page
    shown = bob.get("/?status=all").text
    assert sorted(_names(shown)) == ["gone 0", "gone 1", "gone 2", "still here"]
    assert "“old”" in shown  # the reason
    assert sorted(_names(bob.get("/?status=revoked").text)) == ["gone 0", "gone 1", "gone 2"]
    assert len(_names(bob.get("/?revoked=1").text)) == 4  # the old "Show revoked" link
    assert _names(bob.get("/?revoked=yes").text) == ["still here"]  # anything else: default
    assert _names(bob.get("/?status=bogus").text) == ["still here"]


def test_a_rotating_key_is_not_hidden_and_only_revoked_ones_are(app, bob, make_key):
    old = make_key("bob@acme.test", ["client.read"], name="ci")
    _rotate(app, old)
    page = bob.get("/").text
    assert _names(page) == ["ci", "ci"]
    assert "Show revoked" not in page


def test_when_every_key_is_revoked_the_page_says_so(app, bob, make_key):
    _revoke(app, make_key("bob@acme.test", ["client.read"], name="only"))
    page = bob.get("/").text
    assert "No active keys" in page and "Your only key is revoked." in page
    assert "You have no API keys yet" not in page
    assert '<a href="/settings/api-keys/?status=revoked">Show revoked (1)</a>' in page


def test_each_working_key_has_a_menu_to_revoke_it_through_the_confirm_page(
    app, bob, make_key, db_key, client
):
    live = make_key("bob@acme.test", ["client.read"], name="live")
    dead = make_key("bob@acme.test", ["client.read"], name="dead")
    _revoke(app, dead)
    live_id, dead_id = db_key(live).id, db_key(dead).id
    page = bob.get("/?revoked=1").text
    assert page.count('<details class="ak-menu" data-ak-menu>') == 1  # revoked: no menu
    assert f'href="/settings/api-keys/{live_id}/revoke?back=list">Revoke…</a>' in page
    assert f"/settings/api-keys/{dead_id}/revoke" not in page
    assert 'Actions<span class="ak-sr-only"> for live (' in page

    confirm = bob.get(f"/{live_id}/revoke?back=list")
    assert '<a href="/settings/api-keys/">← Back to your keys</a>' in confirm.text
    assert f'action="/settings/api-keys/{live_id}/revoke?back=list"' in confirm.text
    # Without its CSRF token the menu's revoke is refused.
    refused = bob.client.post(f"/settings/api-keys/{live_id}/revoke?back=list", data={})
    assert refused.status_code == 400
    assert client.get("/v1/clients", headers=bearer(live)).status_code == 200
    done = bob.submit(f"/{live_id}/revoke?back=list", f"/{live_id}/revoke?back=list", {})
    assert done.status_code == 302 and done.location == "/settings/api-keys/"
    assert client.get("/v1/clients", headers=bearer(live)).status_code == 401


def test_revoke_goes_back_where_it_came_from_and_only_there(alice, bob, make_key, db_key):
    key_id = db_key(make_key("bob@acme.test", ["client.read"], name="k")).id
    own = bob.get(f"/{key_id}/revoke").text
    assert f'<a href="/settings/api-keys/{key_id}">← Back to “k”</a>' in own
    # ?back=org from someone who is not an admin is ignored: back to the key.
    assert f'<a href="/settings/api-keys/{key_id}">←' in bob.get(f"/{key_id}/revoke?back=org").text
    admin = alice.get(f"/{key_id}/revoke?back=org").text
    assert (
        '<a href="/settings/api-keys/organization?org=1">← Back to organization keys</a>' in admin
    )
    assert "?back=list" not in alice.get(f"/{key_id}/revoke?back=list").text  # not alice's key
    done = alice.submit(f"/{key_id}/revoke?back=org", f"/{key_id}/revoke?back=org", {})
    assert done.location == "/settings/api-keys/organization?org=1"


# -- rotation links -----------------------------------------------------------------------


def test_rotated_keys_link_to_each_other_in_lists_and_on_their_pages(app, bob, make_key, db_key):
    old = make_key("bob@acme.test", ["client.read"], name="deploy")
    new = _rotate(app, old, hours=24)
    old_key, new_key = db_key(old), db_key(new)
    page = bob.get("/").text
    assert '<span class="ak-tag ak-tag-new">new</span>' in page
    assert '<span class="ak-tag">rotated</span>' in page
    assert (
        f'Replaces <a href="/settings/api-keys/{old_key.id}"><code>{old_key.display_prefix}…</code>'
        in page
    )
    assert (
        f'Replaced by <a href="/settings/api-keys/{new_key.id}"><code>{new_key.display_prefix}…'
        in page
    )

    new_page = bob.get(f"/{new_key.id}").text
    assert "<dt>Rotated from</dt>" in new_page
    assert f'href="/settings/api-keys/{old_key.id}"><code class="ak-prefix">' in new_page
    assert "still works until <time" in new_page
    old_page = bob.get(f"/{old_key.id}").text
    assert "<dt>Replaced by</dt>" in old_page
    assert f'href="/settings/api-keys/{new_key.id}"><code class="ak-prefix">' in old_page

    # Once the grace period is over the old key is revoked: no more "new" tag.
    from example_app import apikeys, db

    with app.app_context():
        apikeys.service.queries.get_key(old_key.id).revoked_at = dt.datetime.now(dt.UTC)
        db.session.commit()
    later = bob.get("/?revoked=1").text
    assert "ak-tag-new" not in later and "Rotated from <a" in later


def test_rotation_links_never_cross_owners(app, make_key, db_key):
    from example_app import apikeys, db

    mine = db_key(make_key("bob@acme.test", ["client.read"], name="bob's"))
    theirs = db_key(make_key("alice@acme.test", ["client.read"], name="alice's"))
    with app.app_context():
        key = apikeys.service.queries.get_key(theirs.id)
        key.rotated_from_id = mine.id  # forged lineage
        db.session.commit()
        service = apikeys.service
        links = service.listing.rotation_links(
            [service.queries.get_key(mine.id), service.queries.get_key(theirs.id)]
        )
        assert links.rotated_from == {} and links.replaced_by == {}
        assert service.listing.rotation_links([]).rotated_from == {}


# -- organization -------------------------------------------------------------------------


def test_organization_shows_expiry_and_revoke_reason_and_actions_in_menus(
    app, alice, make_key, db_key, user_id
):
    expiring = make_key(
        "bob@acme.test",
        ["client.read"],
        name="expiring",
        expires_at=dt.datetime(2031, 3, 3, 12, tzinfo=dt.UTC),
    )
    gone = make_key("bob@acme.test", ["client.read"], name="gone")
    _revoke(app, gone, "left the company")
    page = alice.get("/organization?status=all").text
    assert "Expires" in page and ">3 Mar 2031</time>" in page
    assert "“left the company”" in page
    table = page[page.index("<tbody>") : page.index("</tbody>")]
    assert "ak-btn-danger-outline" not in table  # no red button on every row
    key_id = db_key(expiring).id
    assert f'href="/settings/api-keys/{key_id}/revoke?back=org">Revoke…</a>' in table
    offboard = f"/settings/api-keys/organization/1/users/{user_id('bob@acme.test')}/revoke-all"
    assert f'href="{offboard}">Revoke all keys of Bob Keller…</a>' in table
    assert f"/{db_key(gone).id}/revoke?" not in table  # revoked: nothing to revoke


def test_sortable_headers_show_their_order_and_reverse_it(app, alice, make_key):
    from example_app import apikeys, db

    for name, uses, days in (("b-key", 5, 30), ("A-key", 50, None), ("c-key", 1, 10)):
        secret = make_key("bob@acme.test", ["client.read"], name=name)
        with app.app_context():
            key = apikeys.service.verifier.find_by_secret(secret)
            key.usage_count = uses
            key.expires_at = None if days is None else dt.datetime.now(dt.UTC) + dt.timedelta(days)
            db.session.commit()

    page = alice.get("/organization").text
    assert page.count("aria-sort=") == 0  # newest first: no header is sorted
    assert ", newest first" in page
    assert 'href="/settings/api-keys/organization?sort=name" class="ak-sort">Name' in page
    assert 'href="/settings/api-keys/organization?sort=expires" class="ak-sort">Status' in page
    assert ", sort by expiry date ascending</span>" in page
    assert '<span class="ak-sort-icon" aria-hidden="true">↕</span>' in page

    # Calls have no header of their own (they are under "Last used"); the URL still sorts.
    usage = alice.get("/organization?sort=usage").text
    assert _names(usage) == ["A-key", "b-key", "c-key"]
    assert _names(alice.get("/organization?sort=usage:asc").text) == ["c-key", "b-key", "A-key"]
    by_name = alice.get("/organization?sort=name").text
    assert _names(by_name) == ["A-key", "b-key", "c-key"]
    assert re.search(r'aria-sort="ascending">\s*<a href="[^"]*sort=name:desc"', by_name)
    assert _names(alice.get("/organization?sort=name:desc").text) == ["c-key", "b-key", "A-key"]
    # Soonest expiry first, keys that never expire last; reversed, the other way round.
    assert _names(alice.get("/organization?sort=expires").text) == ["c-key", "b-key", "A-key"]
    assert _names(alice.get("/organization?sort=expires:desc").text) == ["A-key", "b-key", "c-key"]
    assert 'aria-sort="descending"' in alice.get("/organization?sort=expires:desc").text
    for nonsense in ("usage:sideways", "bogus:asc", ":asc", "usage:asc:asc", "usage:" + "x" * 500):
        response = alice.get(f"/organization?sort={nonsense}")
        assert response.status_code == 200, nonsense


def test_sort_headers_keep_the_filters(alice, make_key, user_id):
    make_key("bob@acme.test", ["client.read"], name="k")
    bob = user_id("bob@acme.test")
    page = alice.get(f"/organization?owner={bob}&status=all&q=k&page=1").text
    link = re.search(r'href="([^"]*sort=last_used[^"]*)"', page)
    assert link, page
    url = html.unescape(link.group(1))
    assert f"owner={bob}" in url and "status=all" in url and "q=k" in url
    assert "page=" not in url


def test_empty_states_say_no_keys_yet_or_no_keys_match(alice, carol, make_key):
    empty = carol.get("/organization").text
    assert "No keys yet" in empty and "No keys match" not in empty
    assert "No keys yet" in carol.get("/organization?q=anything&status=revoked").text
    make_key("bob@acme.test", ["client.read"], name="something")
    none = alice.get("/organization?q=nothing-like-it").text
    assert "No keys match" in none and "No keys yet" not in none
    assert 'href="/settings/api-keys/organization">Clear the filters</a>' in none


def test_a_page_past_the_end_shows_the_last_page(app, alice, make_key, db_key):
    app.config["APIKEYS_PAGE_SIZE"] = 2
    secrets = [make_key("bob@acme.test", ["client.read"], name=f"key {n}") for n in range(3)]
    # A link to the page after "key 1" (the last page), and then "key 0" is revoked.
    page = alice.get("/organization").text
    link = html.unescape(re.search(r'<a href="([^"]+)" aria-label="Page 2">', page).group(1))
    _revoke(app, secrets[0])
    past = alice.client.get(link).text
    assert _names(past) == ["key 2", "key 1"] and f"Showing 1{DASH}2 of 2 active keys" not in past
    assert "2 active keys" in past and "No keys match" not in past
    assert _names(alice.get("/organization?page=9").text) == ["key 2", "key 1"]  # no cursor
    assert _names(alice.get("/organization?after=garbage&page=2").text) == ["key 2", "key 1"]
