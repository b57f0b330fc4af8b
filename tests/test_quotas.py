"""Quotas: N calls a day, a month or in total (refilled or not), counted exactly.

The database counter runs on the configured database (SQLite by default, PostgreSQL with
``TEST_DATABASE_URL``); the Redis tests use ``TEST_REDIS_URL``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys import Quota, QuotaExceeded, RequestRefused, parse_quota
from flask_apikeys.quota_redis import RedisQuotaStore
from flask_apikeys.quota_service import QuotaCounter
from flask_apikeys.quotas import (
    EPOCH,
    DatabaseQuotaStore,
    Period,
    current_period,
    quota_timezone,
)
from tests.conftest import bearer
from tests.docs_examples import example_app_example
from tests.pages.conftest import Browser, csrf_token
from tests.statements import recorded_statements, writes

DOWN = "redis://127.0.0.1:9/0"  # nothing listens on the discard port


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


class Clock:
    """The service's clock, set by the test."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.now = dt.datetime.now(dt.UTC)

    def set(self, moment: dt.datetime) -> None:
        self.now = moment
        self.app.extensions["apikeys"].hot_path(self.app).service.clock = lambda: self.now


@pytest.fixture
def clock(app: Flask) -> Clock:
    return Clock(app)


def _issue(app: Flask, quota: str | None, *, refill: str | None = None, **kwargs: Any) -> Any:
    """A key of Bob's (client.read) with *quota*; returns (secret, key id, display prefix)."""
    from example_app import apikeys, db
    from example_app.models import User

    with app.app_context():
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        issued = apikeys.service.issue(bob, "quota test", ["client.read"], **kwargs)
        if quota is not None:
            apikeys.service.set_quota(issued.key, quota, refill=refill)
        return issued.secret, issued.key.id, issued.key.display_prefix


def _usage(app: Flask, key_id: int) -> Any:
    from example_app import apikeys

    with app.app_context():
        service = apikeys.service
        return service.quota_usage(service.get_key(key_id))


def _get(client: FlaskClient, secret: str) -> Any:
    return client.get("/v1/clients", headers=bearer(secret))


def test_a_daily_quota_serves_n_calls_then_says_when_it_starts_again(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    clock.set(dt.datetime(2025, 1, 15, 23, 59, 30, tzinfo=dt.UTC))
    secret, key_id, _ = _issue(app, "3/day")
    assert [_get(client, secret).status_code for _ in range(3)] == [200] * 3
    refused = _get(client, secret)
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
    assert _get(client, secret).status_code == 429
    assert _usage(app, key_id).used == 3  # the refused calls were not counted

    clock.set(dt.datetime(2025, 1, 16, 0, 0, 1, tzinfo=dt.UTC))  # a new day
    assert _get(client, secret).status_code == 200
    assert _usage(app, key_id).used == 1


def test_a_monthly_quota_counts_in_the_configured_time_zone(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    app.config["APIKEYS_QUOTA_TIMEZONE"] = "Pacific/Auckland"  # UTC+13 in January
    clock.set(dt.datetime(2025, 1, 31, 10, 0, tzinfo=dt.UTC))  # 23:00 on 31 January there
    secret, _, _ = _issue(app, "1/month")
    assert _get(client, secret).status_code == 200
    refused = _get(client, secret)
    assert refused.json["reset_at"] == "2025-01-31T11:00:00Z"  # midnight, 1 February
    assert refused.headers["Retry-After"] == "3600"
    clock.set(dt.datetime(2025, 1, 31, 11, 0, tzinfo=dt.UTC))
    assert _get(client, secret).status_code == 200


def test_a_total_without_refill_never_resets_and_sends_no_retry_after(
    app: Flask, client: FlaskClient
) -> None:
    secret, key_id, _ = _issue(app, "2/total")
    assert [_get(client, secret).status_code for _ in range(3)] == [200, 200, 429]
    refused = _get(client, secret)
    assert refused.json["error"] == "quota_exceeded"
    assert refused.json["period"] == "total" and refused.json["reset_at"] is None
    assert refused.json["message"] == "This API key has used its quota of 2 calls in total."
    assert "Retry-After" not in refused.headers
    with app.app_context():  # raising the limit allows more: the count is kept
        from example_app import apikeys

        apikeys.service.set_quota(apikeys.service.get_key(key_id), "3/total")
    assert [_get(client, secret).status_code for _ in range(2)] == [200, 429]


def test_a_refilled_total_starts_again_each_period(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    clock.set(dt.datetime(2025, 3, 31, 12, 0, tzinfo=dt.UTC))
    secret, key_id, _ = _issue(app, "2/total", refill="month")
    assert [_get(client, secret).status_code for _ in range(3)] == [200, 200, 429]
    assert _get(client, secret).json["reset_at"] == "2025-04-01T00:00:00Z"
    assert _usage(app, key_id).summary() == "2 of 2 calls since this month's refill"
    clock.set(dt.datetime(2025, 4, 1, 0, 0, tzinfo=dt.UTC))
    assert _get(client, secret).status_code == 200


def test_a_rate_limited_call_does_not_use_the_quota(app: Flask, client: FlaskClient) -> None:
    secret, key_id, _ = _issue(app, "10/day", rate_limit="2/minute")
    statuses = [_get(client, secret) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 429, 429]
    assert {r.json["error"] for r in statuses[2:]} == {"rate_limited"}
    assert _usage(app, key_id).used == 2


def test_every_accepted_call_counts_even_a_missing_scope(app: Flask, client: FlaskClient) -> None:
    secret, key_id, _ = _issue(app, "5/day")
    assert client.get("/v1/invoices", headers=bearer(secret)).status_code == 403
    assert _usage(app, key_id).used == 1


def test_keys_without_a_quota_write_nothing_and_keys_with_one_write_one_statement(
    app: Flask, client: FlaskClient
) -> None:
    from example_app import db

    plain, _, _ = _issue(app, None)
    limited, _, _ = _issue(app, "100/day")
    with app.app_context():
        db.session.remove()
    assert _get(client, plain).status_code == 200  # warm up
    with recorded_statements() as statements:
        for _ in range(3):
            assert _get(client, plain).status_code == 200
    assert writes(statements) == []
    assert not [s for s in statements if "quota_counters" in s]
    with recorded_statements() as statements:
        for _ in range(3):
            assert _get(client, limited).status_code == 200
    counted = [s for s in statements if "quota_counters" in s]
    assert len(counted) == 3 and writes(statements) == counted
    assert "ON CONFLICT" in counted[0] and "RETURNING" in counted[0]


def test_the_database_counter_is_exact_under_concurrent_calls(app: Flask) -> None:
    from example_app import apikeys, db

    with app.app_context():
        table = apikeys.models.APIKeyQuotaCounter.__table__  # type: ignore[union-attr]
        store = DatabaseQuotaStore(db.engine, table)
        _, key_id, _ = _issue(app, None)
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

    secret, key_id, _ = _issue(app, "3/day")
    assert _get(client, secret).status_code == 200
    with app.app_context():
        service = apikeys.service
        new = service.rotate(service.get_key(key_id), grace=dt.timedelta(hours=1))
        assert (new.key.quota_limit, new.key.quota_period) == (3, "day")
        assert new.key.quota_counter_id == key_id
        new_id = new.key.id
        again = service.rotate(service.get_key(new_id))  # the chain keeps the first counter
        assert again.key.quota_counter_id == key_id
        newest = again.secret
    # The old key works in its grace period and shares the count: 1 + 2 = 3.
    assert _get(client, new.secret).status_code == 401  # rotated away without grace
    assert _get(client, secret).status_code == 200
    assert _get(client, newest).status_code == 200
    assert _get(client, newest).status_code == 429
    assert _usage(app, new_id).used == 3


def test_only_admins_and_operators_set_quotas_and_each_change_is_audited(app: Flask) -> None:
    from example_app import apikeys, db
    from example_app.models import User

    _, key_id, _ = _issue(app, None)
    with app.app_context():
        service = apikeys.service
        key = service.get_key(key_id)
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        alice = db.session.scalar(sa.select(User).where(User.email == "alice@acme.test"))
        carol = db.session.scalar(sa.select(User).where(User.email == "carol@globex.test"))
        for outsider in (bob, carol):  # the owner; an admin of another organization
            with pytest.raises(RequestRefused, match=r"api_key\.manage"):
                service.set_quota(key, "10/day", actor=outsider)
        assert key.quota_limit is None
        service.set_quota(key, "1000/month", actor=alice, ip="203.0.113.5")
        service.set_quota(key, "1000/month", actor=alice)  # unchanged: no event
        service.set_quota(key, "5000/total", refill="month")  # an operator
        service.set_quota(key, None)
        events = [e for e in service.events(key) if e.event == "quota_changed"]
        assert [(e.details["old"], e.details["new"]) for e in reversed(events)] == [
            ("none", "1000/month"),
            ("1000/month", "5000/total (refill month)"),
            ("5000/total (refill month)", "none"),
        ]
        first = events[-1]
        assert first.actor_id == alice.id and first.ip == "203.0.113.5"
        with pytest.raises(RequestRefused, match="Unknown quota"):
            service.set_quota(key, "many")
        db.session.rollback()
        assert service.get_key(key_id).quota_limit is None


def test_a_key_is_issued_with_its_quota_in_one_transaction(app: Flask, client: FlaskClient) -> None:
    from example_app import apikeys, db
    from example_app.models import User

    with app.app_context():
        service = apikeys.service
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        issued = service.issue(bob, "ci", ["client.read"], actor=bob, quota="2/day")
        limited = service.issue(
            bob, "nightly", ["client.read"], quota="500/total", quota_refill="month"
        )
        plain = service.issue(bob, "plain", ["client.read"])
        assert (limited.key.quota_limit, limited.key.quota_refill) == (500, "month")
        assert plain.key.quota_limit is None
        events = [(e.event, e.details) for e in service.events(issued.key)]
        assert ("quota_changed", {"old": "none", "new": "2/day"}) in events
        assert not [e for e in service.events(plain.key) if e.event == "quota_changed"]
        before = db.session.scalar(sa.select(sa.func.count()).select_from(type(plain.key)))
        for bad in ("many", "0/day", "5/week"):
            with pytest.raises(RequestRefused, match="quota"):
                service.issue(bob, "bad", ["client.read"], quota=bad)
        after = db.session.scalar(sa.select(sa.func.count()).select_from(type(plain.key)))
        assert after == before  # a refused quota writes no key
    assert [_get(client, issued.secret).status_code for _ in range(3)] == [200, 200, 429]


def test_the_example_tells_a_key_its_quota_as_its_description_says(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    from jsonschema import Draft202012Validator

    clock.set(dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.UTC))
    secret, _, _ = _issue(app, "3/day")
    assert _get(client, secret).status_code == 200
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
    plain, _, _ = _issue(app, None)
    assert client.get("/v1/me/permissions", headers=bearer(plain)).json["quota"] is None


# -- Redis -------------------------------------------------------------------------------


@pytest.fixture
def redis_quotas(app: Flask, redis_url: str) -> Iterator[str]:
    app.config.update(
        APIKEYS_QUOTA_STORAGE_URI=redis_url,
        APIKEYS_RATELIMIT_KEY_PREFIX=f"test-{uuid.uuid4().hex}",
    )
    yield redis_url
    import redis

    server = redis.Redis.from_url(redis_url)
    prefix = app.config["APIKEYS_RATELIMIT_KEY_PREFIX"]
    for name in server.scan_iter(f"{prefix}/*"):
        server.delete(name)
    server.close()


@pytest.mark.redis
def test_a_quota_counts_in_redis_when_configured(
    app: Flask, client: FlaskClient, redis_quotas: str, clock: Clock
) -> None:
    import redis

    clock.set(dt.datetime(2025, 6, 10, 12, 0, tzinfo=dt.UTC))
    plain, _, _ = _issue(app, None)
    secret, key_id, _ = _issue(app, "2/month")
    store = app.extensions["apikeys"].hot_path(app).service.quotas.store
    assert isinstance(store, RedisQuotaStore)
    assert _get(client, plain).status_code == 200
    assert store._client is None  # a key without a quota never reaches Redis
    with recorded_statements() as statements:
        assert [_get(client, secret).status_code for _ in range(3)] == [200, 200, 429]
    assert writes(statements) == []  # nothing in the database
    server = redis.Redis.from_url(redis_quotas)
    name = f"{app.config['APIKEYS_RATELIMIT_KEY_PREFIX']}/quota/{key_id}/1748736000"
    assert server.get(name) == b"2"
    # Expires an hour after the month ends (1 July 2025, 00:00 UTC), counted from now.
    lives = (dt.datetime(2025, 7, 1, 1, 0, tzinfo=dt.UTC) - clock.now).total_seconds()
    assert lives - 5 <= server.ttl(name) <= lives
    assert _usage(app, key_id).used == 2


@pytest.mark.redis
def test_the_redis_counter_is_exact_under_concurrent_calls(redis_url: str) -> None:
    store = RedisQuotaStore(redis_url, key_prefix=f"test-{uuid.uuid4().hex}")
    period = Period(dt.datetime(2025, 5, 1, tzinfo=dt.UTC), None)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: store.spend(7, period, 37, period.start), range(60)))
    assert sorted(r for r in results if r is not None) == list(range(1, 38))
    assert store.used([(7, period), (8, period)]) == {(7, period.start): 37}
    assert store.client.ttl(store.counter_key(7, period)) == -1  # a total never expires
    store.reset(7, period)


def test_an_unreachable_redis_serves_uncounted_by_default_and_warns_once(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    app.config.update(APIKEYS_QUOTA_STORAGE_URI=DOWN)
    secret, key_id, _ = _issue(app, "1/day")
    counter = app.extensions["apikeys"].hot_path(app).service.quotas
    counter.retry_after_failure = 0  # try on every call: each one fails
    with caplog.at_level(logging.WARNING, logger="flask_apikeys"):
        assert [_get(client, secret).status_code for _ in range(3)] == [200] * 3
        assert _usage(app, key_id) is None  # the page shows the quota without a count
    warnings = [r for r in caplog.records if "quota storage" in r.getMessage()]
    assert len(warnings) == 1 and "failing open" in warnings[0].getMessage()


def test_an_unreachable_redis_can_fail_closed(app: Flask, client: FlaskClient) -> None:
    app.config.update(APIKEYS_QUOTA_STORAGE_URI=DOWN, APIKEYS_QUOTA_FAIL_OPEN=False)
    plain, _, _ = _issue(app, None)
    secret, _, _ = _issue(app, "1000/day")
    refused = _get(client, secret)
    assert refused.status_code == 429
    assert refused.json["error"] == "quota_exceeded"
    assert "cannot be counted right now" in refused.json["message"]
    assert refused.headers["Retry-After"] == "5" and refused.json["reset_at"] is None
    assert _get(client, plain).status_code == 200  # no quota, no storage needed


def test_a_quota_counter_recovers_after_an_outage(caplog: pytest.LogCaptureFixture) -> None:
    class Flaky:
        down = True

        def spend(self, counter_id: int, period: Period, limit: int, now: Any) -> int | None:
            if self.down:
                raise ConnectionError("refused")
            return 1

        def used(self, wanted: Any) -> dict[Any, int]:
            return {}

    store = Flaky()
    counter = QuotaCounter(store, retry_after_failure=0)
    with caplog.at_level(logging.WARNING, logger="flask_apikeys"):
        assert counter.spend(Quota(5, "day", counter_id=1)).unavailable
        store.down = False
        decision = counter.spend(Quota(5, "day", counter_id=1))
    assert decision.allowed and decision.used == 1 and not decision.unavailable
    assert [r.getMessage() for r in caplog.records][-1].endswith("answers again")
    with pytest.raises(ValueError, match="key's quota"):
        counter.spend(Quota(5, "day"))


# -- the command line -------------------------------------------------------------------


def _cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["apikeys", *args])


def test_the_cli_sets_shows_lists_and_clears_a_quota(app: Flask, client: FlaskClient) -> None:
    secret, _, prefix = _issue(app, None)
    _, _, other = _issue(app, None)
    plain_list = _cli(app, "list")
    result = _cli(app, "set-quota", prefix, "1000/month")
    assert result.exit_code == 0, result.output
    assert f"{prefix} may make 1,000 calls a month." in result.stderr
    assert "Now: 0 of 1,000 calls this month (resets " in result.stderr
    assert result.stdout == ""
    assert _get(client, secret).status_code == 200

    shown = _cli(app, "show", prefix).stdout.splitlines()
    quota_line = next(line for line in shown if line.startswith("Quota:"))
    assert re.fullmatch(
        r"Quota: +1 of 1,000 calls this month \(resets \d{4}-\d\d-01 00:00 UTC\)", quota_line
    )
    assert shown.index("Usage:        0") < shown.index(quota_line) < shown.index("Events:")
    assert any("quota_changed" in line for line in shown)

    table = _cli(app, "list").stdout.splitlines()
    assert table[0].split()[-1] == "QUOTA"
    rows = {line.split()[0]: line for line in table[1:]}
    assert rows[prefix].endswith("  1/1000 month")
    assert rows[other].endswith("  -")
    rows_json = [_json(line) for line in _cli(app, "list", "--json").stdout.splitlines()]
    mine = next(r for r in rows_json if r["display_prefix"] == prefix)
    assert (mine["quota"], mine["quota_refill"], mine["quota_used"]) == ("1000/month", None, 1)
    assert mine["quota_resets_at"].endswith("T00:00:00+00:00")
    assert next(r for r in rows_json if r["display_prefix"] == other)["quota"] is None

    result = _cli(app, "set-quota", prefix, "500/total", "--refill", "day")
    assert "500 calls, refilled every day" in result.stderr
    result = _cli(app, "set-quota", prefix, "--clear")
    assert result.exit_code == 0 and f"{prefix} has no quota." in result.stderr
    assert _cli(app, "list").stdout == plain_list.stdout  # no quota listed: no column
    assert any(
        line.startswith("Quota:") and line.endswith("none")
        for line in _cli(app, "show", prefix).stdout.splitlines()
    )


def test_the_cli_refuses_bad_quotas(app: Flask) -> None:
    _, key_id, prefix = _issue(app, None)
    for args, message in [
        ([], "Give a quota"),
        (["10/day", "--clear"], "Give a quota"),
        (["--clear", "--refill", "day"], "--refill goes with a quota"),
        (["10/day", "--refill", "day"], "Only a total is refilled"),
        (["10/fortnight"], "Unknown quota"),
    ]:
        result = _cli(app, "set-quota", prefix, *args)
        assert result.exit_code != 0
        assert message in result.stderr, (args, result.stderr)
    assert _cli(app, "set-quota", "fsk_nosuchkey", "1/day").exit_code == 1
    assert _usage(app, key_id) is None


def _json(line: str) -> dict[str, Any]:
    import json

    value: dict[str, Any] = json.loads(line)
    return value


# -- the pages --------------------------------------------------------------------------


@pytest.fixture
def bob(client: FlaskClient) -> Browser:
    browser = Browser(client)
    browser.login("bob@acme.test")
    return browser


@pytest.fixture
def alice(app: Flask) -> Browser:
    browser = Browser(app.test_client())
    browser.login("alice@acme.test")
    return browser


def _detail(browser: Browser, key_id: int) -> str:
    page = browser.get(f"/{key_id}")
    assert page.status_code == 200
    return str(page.text)


def test_the_owner_sees_calls_this_period_and_cannot_change_the_quota(
    app: Flask, bob: Browser
) -> None:
    secret, key_id, _ = _issue(app, "3/day")
    assert _get(app.test_client(), secret).status_code == 200
    html = _detail(bob, key_id)
    assert "<strong>1</strong> of 3 calls today" in html
    assert 'max="3" value="1"' in html
    assert "An organization admin can change it." in html
    assert 'action="/settings/api-keys/' + str(key_id) + '/quota"' not in html
    page = bob.get(f"/{key_id}")
    response = bob.client.post(
        f"/settings/api-keys/{key_id}/quota",
        data={"quota": "100/day", "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 403


def test_an_admin_sets_and_clears_a_quota_on_the_page(app: Flask, alice: Browser) -> None:
    _, key_id, _ = _issue(app, None)
    html = _detail(alice, key_id)
    assert "No quota: this key may make any number of calls" in html
    path = f"/{key_id}"
    response = alice.submit(path, f"{path}/quota", {"quota": "50000/total", "refill": "month"})
    assert response.status_code == 302 and response.headers["Location"].endswith("#restrictions")
    html = _detail(alice, key_id)
    assert "of 50,000 calls since this month&#39;s refill" in html
    assert "50,000 calls, refilled every month." in html
    assert 'value="50000/total"' in html

    refused = alice.submit(path, f"{path}/quota", {"quota": "50000/week", "refill": ""})
    assert refused.status_code == 400
    assert "Unknown quota" in refused.text
    assert 'value="50000/week"' in refused.text  # what was typed stays in the field
    no_csrf = alice.client.post(f"/settings/api-keys{path}/quota", data={"quota": "1/day"})
    assert no_csrf.status_code == 400

    response = alice.submit(path, f"{path}/quota", {"quota": "", "refill": ""})
    assert response.status_code == 302
    assert "No quota" in _detail(alice, key_id)
    with app.app_context():
        from example_app import apikeys

        events = apikeys.service.events(apikeys.service.get_key(key_id))
        assert [e.event for e in events[:2]] == ["quota_changed", "quota_changed"]


def test_the_list_shows_each_quota_from_one_query(app: Flask, bob: Browser) -> None:
    secrets = [_issue(app, f"{n + 2}/day")[0] for n in range(3)]
    _issue(app, None)
    client = app.test_client()
    for secret in secrets:
        assert _get(client, secret).status_code == 200
    with recorded_statements() as statements:
        page = bob.get("/")
    assert page.status_code == 200
    for n in range(3):
        assert f"1 of {n + 2} today" in page.text
    assert len([s for s in statements if "quota_counters" in s]) == 1


# -- the docs ----------------------------------------------------------------------------


def test_the_quotas_example_runs(database_url: str) -> None:
    with example_app_example("quotas.md", "quotas", database_url):
        pass  # the example asserts what it shows


def test_quota_exceeded_is_an_api_key_error_of_its_own() -> None:
    from flask_apikeys import APIKeyError, RateLimited

    error = QuotaExceeded(limit=5, period="day", retry_after=0)
    assert isinstance(error, APIKeyError) and not isinstance(error, RateLimited)
    assert error.code == 429 and error.retry_after == 1
    assert ("Retry-After", "1") in error.get_headers()
