"""The service behind the key lists (issue #20): keyset pages in every order, cursors,
status counts, the keys that break a policy, and audit details in words."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from flask_apikeys.service.audit_details import CSV_DETAILS, csv_details, describe_details
from flask_apikeys.service.audit_filters import parse_moment
from flask_apikeys.service.keyset import SORT_DIRECTIONS, Order, make_cursor, read_cursor

NOW = dt.datetime.now(dt.UTC)


def _bob(app: Any) -> Any:
    from example_app import db
    from example_app.models import User

    return db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))


@pytest.fixture
def thirteen(app: Any, make_key: Any) -> list[int]:
    """Thirteen keys of Bob with ties and empty values in every sortable column."""
    from example_app import apikeys, db

    ids = []
    for n in range(13):
        secret = make_key("bob@acme.test", ["client.read"], name=f"K{n % 4} {'x' * (n % 3)}")
        with app.app_context():
            key = apikeys.service.verifier.find_by_secret(secret)
            key.usage_count = n % 3
            key.last_used_at = None if n % 4 == 0 else NOW - dt.timedelta(hours=n % 5)
            key.expires_at = None if n % 3 == 0 else NOW + dt.timedelta(days=1 + n % 2)
            key.created_at = NOW - dt.timedelta(minutes=n % 6)  # ties, broken by id
            db.session.commit()
            ids.append(key.id)
    return ids


@pytest.mark.parametrize("sort", sorted(SORT_DIRECTIONS))
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_keyset_pages_walk_every_key_once_in_order_both_ways(app, thirteen, sort, direction):
    from example_app import apikeys

    with app.app_context():
        listing = apikeys.service.listing
        bob = _bob(app)
        expected = [
            k.id
            for k in apikeys.service.session.scalars(
                listing.ordered_keys_query(sort, direction, owner=bob)
            )
        ]
        assert sorted(expected) == sorted(thirteen)
        seen, link, numbers = [], {}, []
        while link is not None:
            page = listing.key_page(
                sort=sort, direction=direction, per_page=3, owner=bob,
                after=link.get("after"), number=link.get("page", 1),
            )  # fmt: skip
            seen += [k.id for k in page.keys]
            numbers.append(page.number)
            assert page.total == 13 and page.pages == 5
            link = page.next
        assert seen == expected, (sort, direction)
        assert numbers == [1, 2, 3, 4, 5]
        # From the last page back to the first, by the "previous" links.
        page = listing.key_page(sort=sort, direction=direction, per_page=3, owner=bob, last=True)
        back = [k.id for k in page.keys]
        assert page.number == 5 and len(back) == 1
        while page.previous is not None:
            link = page.previous
            page = listing.key_page(
                sort=sort, direction=direction, per_page=3, owner=bob,
                after=link.get("after"), number=link.get("page", 1),
            )  # fmt: skip
            back = [k.id for k in page.keys] + back
        assert back == expected and page.number == 1
        # A "before" cursor reads the page that ends just before a row; its number is
        # corrected by the rows before it (page 2, whatever the link said).
        order = listing.order(sort, direction)
        value = listing.key_page(sort=sort, direction=direction, per_page=13, owner=bob).keys[6]
        row = apikeys.service.session.execute(
            sa.select(order.column).where(order.id_column == value.id)
        ).scalar_one()
        page = listing.key_page(
            sort=sort, direction=direction, per_page=3, owner=bob,
            before=make_cursor(order, row, value.id), number=3,
        )  # fmt: skip
        assert [k.id for k in page.keys] == expected[3:6] and page.number == 2


def test_the_pager_names_the_pages_near_this_one_and_the_last(app, thirteen):
    from example_app import apikeys

    with app.app_context():
        listing, bob = apikeys.service.listing, _bob(app)
        first = listing.key_page(per_page=2, owner=bob)
        assert [n for n, _ in first.nearby] == [1, 2, 3] and first.last == {"page": "last"}
        link = first.nearby[2][1]
        third = listing.key_page(per_page=2, owner=bob, after=link["after"], number=3)
        assert [n for n, _ in third.nearby] == [1, 2, 3, 4, 5]
        assert third.nearby[0][1] == {} and third.previous == third.nearby[1][1]
        # A page number the rows contradict is corrected (a link from a longer list).
        wrong = listing.key_page(per_page=2, owner=bob, after=link["after"], number=40)
        assert wrong.number == 3
        assert (wrong.first_number, wrong.last_number) == (5, 6)


def test_cursors_of_another_order_or_unreadable_start_again(app):
    from example_app import apikeys

    with app.app_context():
        listing = apikeys.service.listing
        created, name = listing.order("created"), listing.order("name")
        moment = dt.datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=dt.UTC)
        assert read_cursor(make_cursor(created, moment, 42), created) == (moment, 42)
        assert read_cursor(make_cursor(name, "ünïcode: ~/", 7), name) == ("ünïcode: ~/", 7)
        assert read_cursor(make_cursor(created, moment, 42), name) is None
        expires = listing.order("expires", "desc")
        assert read_cursor(make_cursor(expires, None, 3), expires) == (None, 3)
        assert read_cursor("created:desc:-:3", created) is None  # created is never empty
        for garbage in (
            "",
            "x" * 5000,
            "created:desc:t1:99999999999999999999",
            "a:b:c:d",
            "name:asc:s%%%:1",
            "usage:desc:n1e9:1",
            "created:desc:tabc:1",
        ):
            assert read_cursor(garbage, created) is None, garbage
            assert read_cursor(garbage, name) is None, garbage
        assert isinstance(Order.of("usage", "asc", None, None), Order)


def test_status_counts_agree_with_the_status_filters(app, make_key):
    from example_app import apikeys, db

    secrets = [make_key("bob@acme.test", ["client.read"], name=f"k{n}") for n in range(6)]
    with app.app_context():
        service = apikeys.service
        keys = [service.verifier.find_by_secret(s) for s in secrets]
        service.keys.revoke(keys[0])
        keys[1].expires_at = NOW - dt.timedelta(days=1)
        keys[2].last_used_at = NOW - dt.timedelta(days=40)  # idle, once the policy says 30
        db.session.commit()
        service.keys.rotate(keys[3], grace=dt.timedelta(hours=1))  # a grace period: active
        service.policies.set_policy(1, idle_expiry_days=30)
        bob = _bob(app)
        counts = service.listing.status_counts(owner=bob)
        for status in ("active", "expired", "revoked"):
            listed = service.queries.list_keys(owner=bob, status=status)
            assert counts.of(status) == len(listed), status
        assert (counts.active, counts.expired, counts.revoked) == (4, 2, 1)
        assert counts.all == 7 and not counts.capped
        capped = service.listing.status_counts(owner=bob, cap=3)
        assert capped.capped and capped.all == 3


def test_the_policy_clause_finds_keys_that_outlive_it_or_hold_more(app, make_key):
    from example_app import apikeys

    make_key("alice@acme.test", ["invoice.read"], name="long")
    wide = make_key("alice@acme.test", ["invoice.read", "invoice.write"], name="wide")
    both = make_key("alice@acme.test", ["client.write"], name="both")
    soon = NOW + dt.timedelta(days=10)
    make_key("alice@acme.test", [], name="full", full_access=True, expires_at=soon)
    make_key("alice@acme.test", ["invoice.read"], name="fine", expires_at=soon)
    gone = make_key("alice@acme.test", ["client.write"], name="gone")
    with app.app_context():
        service = apikeys.service
        service.keys.revoke(service.verifier.find_by_secret(gone))
        for secret, days in ((wide, 10), (both, 400)):
            service.verifier.find_by_secret(secret).expires_at = NOW + dt.timedelta(days=days)
        service.session.commit()
        allowed = ["invoice.read", "client.read"]
        service.policies.set_policy(1, max_lifetime_days=30, allowed_permissions=allowed)

        def names(rule: str) -> set[str]:
            stmt = service.queries.keys_query(organization_id=1).where(
                service.listing.policy_clause(1, rule)
            )
            return {k.name for k in service.session.scalars(stmt)}

        assert names("lifetime") == {"long", "both"}
        assert names("permissions") == {"wide", "both"}
        assert names("any") == {"long", "wide", "both"}
        keys = {k.name: k for k in service.queries.list_keys(organization_id=1)}
        assert service.listing.policy_breaches(keys["both"]) == ["lifetime", "permissions"]
        assert service.listing.policy_breaches(keys["full"]) == []
        assert service.listing.policy_breaches(keys["gone"]) == []
        assert service.listing.policy_breaches(keys["fine"]) == []
        newest, total = service.listing.keys_breaking_policy(1, "any", limit=2)
        assert total == 3 and [k.name for k in newest] == ["both", "wide"]
        service.policies.set_policy(1, max_lifetime_days=None, allowed_permissions=None)
        assert names("any") == set()


def test_the_created_event_says_never_and_the_resources(app, make_key):
    from example_app import apikeys

    make_key("alice@acme.test", ["client.read"], name="forever")
    make_key("alice@acme.test", ["client.read"], name="two clients",
             expires_at=NOW + dt.timedelta(days=5), resources={"client": ["1", "2"]})  # fmt: skip
    with app.app_context():
        keys = {k.name: k for k in apikeys.service.queries.list_keys(organization_id=1)}
        forever = apikeys.service.queries.events(keys["forever"])[-1]
        assert forever.details["expires_at"] == "never" and "resources" not in forever.details
        limited = apikeys.service.queries.events(keys["two clients"])[-1]
        assert sorted(limited.details["resources"]["client"]) == ["1", "2"]
        words = {d.label: d for d in describe_details("created", limited.details)}
        assert words["Permissions"].text == "client.read"
        assert words["Expiry"].day and words["Expiry"].moment is not None
        assert words["Resources"].text in ("client: 1, 2", "client: 2, 1")
        assert describe_details("created", forever.details)[1].text == "Never"


def test_details_in_words_and_in_csv_columns():
    said = describe_details(
        "revoked", {"reason": "left", "bulk": True, "host_thing": 3, "at": None}
    )
    assert [(d.label, d.text) for d in said] == [
        ("Reason", "left"), ("Offboarding", ""), ("Host thing", "3"), ("At", "—"),
    ]  # fmt: skip
    policy = describe_details(
        "policy_changed",
        {"before": {"max_lifetime_days": None, "idle_expiry_days": None,
                    "allowed_permissions": None},
         "after": {"max_lifetime_days": 90, "idle_expiry_days": 1,
                   "allowed_permissions": ["a.read"]}},
    )  # fmt: skip
    assert policy[0].text == "no maximum lifetime, no idle expiry, any permission"
    assert policy[1].text == "maximum lifetime 90 days, idle expiry 1 day, only a.read"
    assert (
        describe_details("ip_allowlist_changed", {"old": [], "new": ["10.0.0.0/8"]})[0].text
        == "Any address"
    )
    rotated = describe_details("rotated", {"works_until": "2027-03-07T14:05:09+00:00"})[0]
    assert rotated.text == "7 Mar 2027, 14:05" and not rotated.day
    columns = [*dict.fromkeys(CSV_DETAILS.values()), "other_details"]
    details = {"scopes": "full access", "expires_at": "2027-03-07T00:00:00+00:00", "x": 1}
    cells = dict(zip(columns, csv_details("created", details), strict=True))
    assert cells["permissions"] == "Full access" and cells["expiry"] == "2027-03-07T00:00:00Z"
    assert cells["other_details"] == '{"x": 1}' and cells["reason"] == ""
    offboarded = dict(zip(columns, csv_details("revoked", {"bulk": True}), strict=True))
    assert offboarded["offboarding"] == "yes"


def test_the_date_filters_read_the_pages_day_style():
    assert parse_moment("7 Mar 2027") == dt.datetime(2027, 3, 7, tzinfo=dt.UTC)
    assert parse_moment("7 march 2027", end=True) == dt.datetime(2027, 3, 8, tzinfo=dt.UTC)
    assert parse_moment("2027-03-07") == parse_moment("7 Mar 2027")
    from flask_apikeys import RequestRefused

    for wrong in ("31 Feb 2027", "7 Foo 2027", "7 Mar 1900"):
        with pytest.raises(RequestRefused):
            parse_moment(wrong)
