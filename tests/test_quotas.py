"""Quotas: N calls a day, a month or in total (refilled or not), counted exactly.

Parsing and periods, requests against the quota, rotation and who may set one, on the
database counter (SQLite by default, PostgreSQL with ``TEST_DATABASE_URL``). Redis is in
test_quota_redis.py; the command line, the pages and the docs in test_quota_admin.py.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys import Quota, RequestRefused, parse_quota
from flask_apikeys.service.quota_rules import (
    EPOCH,
    DatabaseQuotaStore,
    Period,
    current_period,
    quota_timezone,
)
from tests.conftest import bearer
from tests.quota_helpers import Clock, get_clients, issue_key, quota_usage_of
from tests.statements import recorded_statements, writes


@pytest.fixture
def clock(app: Flask) -> Clock:
    return Clock(app)


# -- parsing and periods -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "refill", "expected"),
    [
        ("1000/day", None, Quota(1000, "day")),
        (" 1,000 / Month ", None, Quota(1000, "month")),
        ("50_000/total", None, Quota(50000, "total")),
        ("50000/total", "month", Quota(50000, "total", "month")),
        ("1/total", "day", Quota(1, "total", "day")),
    ],
)
def test_quotas_are_written_as_calls_per_period(
    text: str, refill: str | None, expected: Quota
) -> None:
    assert parse_quota(text, refill) == expected


@pytest.mark.parametrize(
    ("text", "refill", "field", "words"),
    [
        ("1000/week", None, "quota", "Unknown quota"),
        ("lots", None, "quota", "Unknown quota"),
        ("-5/day", None, "quota", "Unknown quota"),
        ("0/day", None, "quota", "between 1 and"),
        (f"{10**13}/month", None, "quota", "between 1 and"),
        ("1000/month", "month", "refill", "Only a total is refilled"),
        ("1000/total", "week", "refill", "every day or every month"),
    ],
)
def test_a_bad_quota_is_refused_with_a_sentence(
    text: str, refill: str | None, field: str, words: str
) -> None:
    with pytest.raises(RequestRefused) as refused:
        parse_quota(text, refill)
    assert refused.value.field == field
    assert words in refused.value.message


def test_quotas_describe_themselves() -> None:
    assert Quota(1000, "month").describe() == "1,000 calls a month"
    assert Quota(1, "day").describe() == "1 call a day"
    assert Quota(50000, "total").describe() == "50,000 calls in total"
    assert Quota(500, "total", "day").describe() == "500 calls, refilled every day"
    assert str(Quota(500, "total", "month")) == "500/total (refill month)"


def test_periods_are_calendar_days_and_months() -> None:
    now = dt.datetime(2024, 12, 31, 15, 0, tzinfo=dt.UTC)
    day = current_period(Quota(1, "day"), now, dt.UTC)
    assert day == Period(
        dt.datetime(2024, 12, 31, tzinfo=dt.UTC), dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    )
    month = current_period(Quota(1, "month"), now, dt.UTC)
    assert month == Period(
        dt.datetime(2024, 12, 1, tzinfo=dt.UTC), dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    )
    february = current_period(Quota(1, "month"), dt.datetime(2024, 2, 29, tzinfo=dt.UTC), dt.UTC)
    assert february.end == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert current_period(Quota(1, "total"), now, dt.UTC) == Period(EPOCH, None)
    refilled = current_period(Quota(1, "total", "month"), now, dt.UTC)
    assert refilled == month


def test_periods_follow_the_configured_time_zone_through_daylight_saving() -> None:
    new_york = quota_timezone("America/New_York")
    # 2024-03-10 has 23 hours in New York: clocks jump from 2:00 to 3:00.
    now = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)
    day = current_period(Quota(1, "day"), now, new_york)
    assert day.start == dt.datetime(2024, 3, 10, 5, 0, tzinfo=dt.UTC)  # midnight EST
    assert day.end == dt.datetime(2024, 3, 11, 4, 0, tzinfo=dt.UTC)  # midnight EDT
    # 03:30 UTC on the 1st is still the last evening of February in New York.
    late = dt.datetime(2024, 3, 1, 3, 30, tzinfo=dt.UTC)
    month = current_period(Quota(1, "month"), late, new_york)
    assert month.start == dt.datetime(2024, 2, 1, 5, 0, tzinfo=dt.UTC)
    assert month.end == dt.datetime(2024, 3, 1, 5, 0, tzinfo=dt.UTC)


def test_an_unknown_time_zone_is_a_configuration_error() -> None:
    with pytest.raises(RuntimeError, match="APIKEYS_QUOTA_TIMEZONE"):
        quota_timezone("Mars/Olympus_Mons")
    assert quota_timezone("UTC") is dt.UTC


# -- requests --------------------------------------------------------------------------


def test_a_daily_quota_serves_n_calls_then_says_when_it_starts_again(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    clock.set(dt.datetime(2025, 1, 15, 23, 59, 30, tzinfo=dt.UTC))
    secret, key_id, _ = issue_key(app, "3/day")
    assert [get_clients(client, secret).status_code for _ in range(3)] == [200] * 3
    refused = get_clients(client, secret)
    assert refused.status_code == 429
    assert refused.json == {
        "error": "quota_exceeded",
        "message": "This API key has used its quota of 3 calls a day; "
        "it starts again at 2025-01-16 00:00 UTC.",
        "limit": 3,
        "period": "day",
        "reset_at": "2025-01-16T00:00:00Z",
    }
    assert refused.headers["Retry-After"] == "30"
    assert refused.headers["Content-Type"] == "application/json"
    assert "WWW-Authenticate" not in refused.headers
    assert get_clients(client, secret).status_code == 429
    assert quota_usage_of(app, key_id).used == 3  # the refused calls were not counted

    clock.set(dt.datetime(2025, 1, 16, 0, 0, 1, tzinfo=dt.UTC))  # a new day
    assert get_clients(client, secret).status_code == 200
    assert quota_usage_of(app, key_id).used == 1


def test_a_monthly_quota_counts_in_the_configured_time_zone(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    app.config["APIKEYS_QUOTA_TIMEZONE"] = "Pacific/Auckland"  # UTC+13 in January
    clock.set(dt.datetime(2025, 1, 31, 10, 0, tzinfo=dt.UTC))  # 23:00 on 31 January there
    secret, _, _ = issue_key(app, "1/month")
    assert get_clients(client, secret).status_code == 200
    refused = get_clients(client, secret)
    assert refused.json["reset_at"] == "2025-01-31T11:00:00Z"  # midnight, 1 February
    assert refused.headers["Retry-After"] == "3600"
    clock.set(dt.datetime(2025, 1, 31, 11, 0, tzinfo=dt.UTC))
    assert get_clients(client, secret).status_code == 200


def test_a_total_without_refill_never_resets_and_sends_no_retry_after(
    app: Flask, client: FlaskClient
) -> None:
    secret, key_id, _ = issue_key(app, "2/total")
    assert [get_clients(client, secret).status_code for _ in range(3)] == [200, 200, 429]
    refused = get_clients(client, secret)
    assert refused.json["error"] == "quota_exceeded"
    assert refused.json["period"] == "total" and refused.json["reset_at"] is None
    assert refused.json["message"] == "This API key has used its quota of 2 calls in total."
    assert "Retry-After" not in refused.headers
    with app.app_context():  # raising the limit allows more: the count is kept
        from example_app import apikeys

        apikeys.service.quotas.set_quota(apikeys.service.queries.get_key(key_id), "3/total")
    assert [get_clients(client, secret).status_code for _ in range(2)] == [200, 429]


def test_a_refilled_total_starts_again_each_period(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    clock.set(dt.datetime(2025, 3, 31, 12, 0, tzinfo=dt.UTC))
    secret, key_id, _ = issue_key(app, "2/total", refill="month")
    assert [get_clients(client, secret).status_code for _ in range(3)] == [200, 200, 429]
    assert get_clients(client, secret).json["reset_at"] == "2025-04-01T00:00:00Z"
    assert quota_usage_of(app, key_id).summary() == "2 of 2 calls since this month's refill"
    clock.set(dt.datetime(2025, 4, 1, 0, 0, tzinfo=dt.UTC))
    assert get_clients(client, secret).status_code == 200


def test_a_rate_limited_call_does_not_use_the_quota(app: Flask, client: FlaskClient) -> None:
    secret, key_id, _ = issue_key(app, "10/day", rate_limit="2/minute")
    statuses = [get_clients(client, secret) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 429, 429]
    assert {r.json["error"] for r in statuses[2:]} == {"rate_limited"}
    assert quota_usage_of(app, key_id).used == 2


def test_every_accepted_call_counts_even_a_missing_scope(app: Flask, client: FlaskClient) -> None:
    secret, key_id, _ = issue_key(app, "5/day")
    assert client.get("/v1/invoices", headers=bearer(secret)).status_code == 403
    assert quota_usage_of(app, key_id).used == 1


def test_keys_without_a_quota_write_nothing_and_keys_with_one_write_one_statement(
    app: Flask, client: FlaskClient
) -> None:
    from example_app import db

    plain, _, _ = issue_key(app, None)
    limited, _, _ = issue_key(app, "100/day")
    with app.app_context():
        db.session.remove()
    assert get_clients(client, plain).status_code == 200  # warm up
    with recorded_statements() as statements:
        for _ in range(3):
            assert get_clients(client, plain).status_code == 200
    assert writes(statements) == []
    assert not [s for s in statements if "quota_counters" in s]
    with recorded_statements() as statements:
        for _ in range(3):
            assert get_clients(client, limited).status_code == 200
    counted = [s for s in statements if "quota_counters" in s]
    assert len(counted) == 3 and writes(statements) == counted
    assert "ON CONFLICT" in counted[0] and "RETURNING" in counted[0]


def test_the_database_counter_is_exact_under_concurrent_calls(app: Flask) -> None:
    from example_app import apikeys, db

    with app.app_context():
        table = apikeys.models.APIKeyQuotaCounter.__table__  # type: ignore[union-attr]
        store = DatabaseQuotaStore(db.engine, table)
        _, key_id, _ = issue_key(app, None)
        period = Period(dt.datetime(2025, 5, 1, tzinfo=dt.UTC), None)

        def spend(_: int) -> int | None:
            return store.spend(key_id, period, 37, period.start)

        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(spend, range(60)))
        assert sorted(r for r in results if r is not None) == list(range(1, 38))
        assert results.count(None) == 23
        assert store.used([(key_id, period)]) == {(key_id, period.start): 37}


# -- rotation, who may set it, the audit trail ---------------------------------------


def test_rotation_keeps_the_quota_and_shares_the_count(app: Flask, client: FlaskClient) -> None:
    from example_app import apikeys

    secret, key_id, _ = issue_key(app, "3/day")
    assert get_clients(client, secret).status_code == 200
    with app.app_context():
        service = apikeys.service
        new = service.keys.rotate(service.queries.get_key(key_id), grace=dt.timedelta(hours=1))
        assert (new.key.quota_limit, new.key.quota_period) == (3, "day")
        assert new.key.quota_counter_id == key_id
        new_id = new.key.id
        again = service.keys.rotate(
            service.queries.get_key(new_id)
        )  # the chain keeps the first counter
        assert again.key.quota_counter_id == key_id
        newest = again.secret
    # The old key works in its grace period and shares the count: 1 + 2 = 3.
    assert get_clients(client, new.secret).status_code == 401  # rotated away without grace
    assert get_clients(client, secret).status_code == 200
    assert get_clients(client, newest).status_code == 200
    assert get_clients(client, newest).status_code == 429
    assert quota_usage_of(app, new_id).used == 3


def test_only_admins_and_operators_set_quotas_and_each_change_is_audited(app: Flask) -> None:
    from example_app import apikeys, db
    from example_app.models import User

    _, key_id, _ = issue_key(app, None)
    with app.app_context():
        service = apikeys.service
        key = service.queries.get_key(key_id)
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        alice = db.session.scalar(sa.select(User).where(User.email == "alice@acme.test"))
        carol = db.session.scalar(sa.select(User).where(User.email == "carol@globex.test"))
        for outsider in (bob, carol):  # the owner; an admin of another organization
            with pytest.raises(RequestRefused, match=r"api_key\.manage"):
                service.quotas.set_quota(key, "10/day", actor=outsider)
        assert key.quota_limit is None
        service.quotas.set_quota(key, "1000/month", actor=alice, ip="203.0.113.5")
        service.quotas.set_quota(key, "1000/month", actor=alice)  # unchanged: no event
        service.quotas.set_quota(key, "5000/total", refill="month")  # an operator
        service.quotas.set_quota(key, None)
        events = [e for e in service.queries.events(key) if e.event == "quota_changed"]
        assert [(e.details["old"], e.details["new"]) for e in reversed(events)] == [
            ("none", "1000/month"),
            ("1000/month", "5000/total (refill month)"),
            ("5000/total (refill month)", "none"),
        ]
        first = events[-1]
        assert first.actor_id == alice.id and first.ip == "203.0.113.5"
        with pytest.raises(RequestRefused, match="Unknown quota"):
            service.quotas.set_quota(key, "many")
        db.session.rollback()
        assert service.queries.get_key(key_id).quota_limit is None


def test_a_key_is_issued_with_its_quota_in_one_transaction(app: Flask, client: FlaskClient) -> None:
    from example_app import apikeys, db
    from example_app.models import User

    with app.app_context():
        service = apikeys.service
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        issued = service.keys.issue(bob, "ci", ["client.read"], actor=bob, quota="2/day")
        limited = service.keys.issue(
            bob, "nightly", ["client.read"], quota="500/total", quota_refill="month"
        )
        plain = service.keys.issue(bob, "plain", ["client.read"])
        assert (limited.key.quota_limit, limited.key.quota_refill) == (500, "month")
        assert plain.key.quota_limit is None
        events = [(e.event, e.details) for e in service.queries.events(issued.key)]
        assert ("quota_changed", {"old": "none", "new": "2/day"}) in events
        assert not [e for e in service.queries.events(plain.key) if e.event == "quota_changed"]
        before = db.session.scalar(sa.select(sa.func.count()).select_from(type(plain.key)))
        for bad in ("many", "0/day", "5/week"):
            with pytest.raises(RequestRefused, match="quota"):
                service.keys.issue(bob, "bad", ["client.read"], quota=bad)
        after = db.session.scalar(sa.select(sa.func.count()).select_from(type(plain.key)))
        assert after == before  # a refused quota writes no key
    assert [get_clients(client, issued.secret).status_code for _ in range(3)] == [200, 200, 429]


def test_the_example_tells_a_key_its_quota_as_its_description_says(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    from jsonschema import Draft202012Validator

    clock.set(dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.UTC))
    secret, _, _ = issue_key(app, "3/day")
    assert get_clients(client, secret).status_code == 200
    me = client.get("/v1/me/permissions", headers=bearer(secret)).json
    assert me["quota"] == {
        "limit": 3,
        "period": "day",
        "refill": None,
        "used": 2,  # this call counts too
        "reset_at": "2025-01-16T00:00:00Z",
    }
    operation = client.get("/openapi.json").json["paths"]["/v1/me/permissions"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    Draft202012Validator(schema).validate(me)
    plain, _, _ = issue_key(app, None)
    assert client.get("/v1/me/permissions", headers=bearer(plain)).json["quota"] is None
