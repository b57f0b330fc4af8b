"""Quotas counted in Redis (``TEST_REDIS_URL``): exact under concurrent calls, and what
an unreachable Redis means (served uncounted, or refused when failing closed)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys import Quota
from flask_apikeys.service.quota_rules import Period
from flask_apikeys.service.quota_stores import RedisQuotaStore
from flask_apikeys.service.quotas import QuotaCounter
from tests.quota_helpers import DOWN, Clock, get_clients, issue_key, quota_usage_of
from tests.statements import recorded_statements, writes

# -- Redis -------------------------------------------------------------------------------


@pytest.fixture
def clock(app: Flask) -> Clock:
    return Clock(app)


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
    plain, _, _ = issue_key(app, None)
    secret, key_id, _ = issue_key(app, "2/month")
    store = app.extensions["apikeys"].hot_path(app).service.quotas.counter.store
    assert isinstance(store, RedisQuotaStore)
    assert get_clients(client, plain).status_code == 200
    assert store._client is None  # a key without a quota never reaches Redis
    with recorded_statements() as statements:
        assert [get_clients(client, secret).status_code for _ in range(3)] == [200, 200, 429]
    assert writes(statements) == []  # nothing in the database
    server = redis.Redis.from_url(redis_quotas)
    name = f"{app.config['APIKEYS_RATELIMIT_KEY_PREFIX']}/quota/{key_id}/1748736000"
    assert server.get(name) == b"2"
    # Expires an hour after the month ends (1 July 2025, 00:00 UTC), counted from now.
    lives = (dt.datetime(2025, 7, 1, 1, 0, tzinfo=dt.UTC) - clock.now).total_seconds()
    assert lives - 5 <= server.ttl(name) <= lives
    assert quota_usage_of(app, key_id).used == 2


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
    secret, key_id, _ = issue_key(app, "1/day")
    counter = app.extensions["apikeys"].hot_path(app).service.quotas
    counter.retry_after_failure = 0  # try on every call: each one fails
    with caplog.at_level(logging.WARNING, logger="flask_apikeys"):
        assert [get_clients(client, secret).status_code for _ in range(3)] == [200] * 3
        assert quota_usage_of(app, key_id) is None  # the page shows the quota without a count
    warnings = [r for r in caplog.records if "quota storage" in r.getMessage()]
    assert len(warnings) == 1 and "failing open" in warnings[0].getMessage()


def test_an_unreachable_redis_can_fail_closed(app: Flask, client: FlaskClient) -> None:
    app.config.update(APIKEYS_QUOTA_STORAGE_URI=DOWN, APIKEYS_QUOTA_FAIL_OPEN=False)
    plain, _, _ = issue_key(app, None)
    secret, _, _ = issue_key(app, "1000/day")
    refused = get_clients(client, secret)
    assert refused.status_code == 429
    assert refused.json["error"] == "quota_exceeded"
    assert "cannot be counted right now" in refused.json["message"]
    assert refused.headers["Retry-After"] == "5" and refused.json["reset_at"] is None
    assert get_clients(client, plain).status_code == 200  # no quota, no storage needed


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
