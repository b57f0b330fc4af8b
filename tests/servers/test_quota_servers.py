"""A monthly quota hammered from two gunicorn instances (two workers each): exactly N served.

Once with the counters in PostgreSQL (the default), once in Redis. Every request runs
concurrently with others on both instances; the assertion is exact, not a bound. The
servers are killed at teardown: nothing here depends on a graceful stop.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa

from tests.conftest import bearer, reachable_redis_url
from tests.servers.conftest import Cluster

QUOTA = 50
REQUESTS = 150


def _issue_with_quota(cluster: Cluster) -> tuple[str, int]:
    """A key for alice (invoice.read) with a quota of QUOTA calls a month."""
    from example_app import apikeys, db
    from example_app.models import User

    app = cluster.app()
    with app.app_context():
        alice = db.session.scalar(sa.select(User).where(User.email == "alice@acme.test"))
        issued = apikeys.service.keys.issue(alice, "quota", ["invoice.read"])
        apikeys.service.quotas.set_quota(issued.key, f"{QUOTA}/month")
        result = issued.secret, issued.key.id
        db.session.remove()
        db.engine.dispose()
    return result


def _call(port: int, headers: dict[str, str]) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/v1/invoices", headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def _hammer(servers: Cluster, secret: str) -> list[tuple[int, Any]]:
    headers = bearer(secret)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(
            pool.map(lambda i: _call(servers.servers[i % 2].port, headers), range(REQUESTS))
        )


def _assert_exactly_the_quota_was_served(results: list[tuple[int, Any]]) -> None:
    statuses = [status for status, _ in results]
    assert statuses.count(200) == QUOTA, statuses
    refused = [body for status, body in results if status != 200]
    assert len(refused) == REQUESTS - QUOTA
    assert {body["error"] for body in refused} == {"quota_exceeded"}, refused[:3]


def test_a_monthly_quota_in_postgresql_serves_exactly_n_across_two_instances(
    cluster: Callable[..., Cluster],
) -> None:
    servers = cluster(APIKEYS_FAILED_AUTH_LIMIT="null")
    secret, key_id = _issue_with_quota(servers)
    _assert_exactly_the_quota_was_served(_hammer(servers, secret))
    engine = sa.create_engine(servers.database_url)
    try:
        with engine.connect() as conn:
            used = conn.execute(
                sa.text("SELECT used FROM api_key_quota_counters WHERE key_id = :k"), {"k": key_id}
            ).scalar_one()
    finally:
        engine.dispose()
    assert used == QUOTA


def test_a_monthly_quota_in_redis_serves_exactly_n_across_two_instances(
    cluster: Callable[..., Cluster],
) -> None:
    import redis

    prefix = f"quota-{uuid.uuid4().hex}"
    servers = cluster(
        APIKEYS_FAILED_AUTH_LIMIT="null",
        APIKEYS_QUOTA_STORAGE_URI=reachable_redis_url(),
        APIKEYS_RATELIMIT_KEY_PREFIX=prefix,
    )
    secret, key_id = _issue_with_quota(servers)
    _assert_exactly_the_quota_was_served(_hammer(servers, secret))
    server = redis.Redis.from_url(servers.redis_url)
    try:
        counters = list(server.scan_iter(f"{prefix}/quota/{key_id}/*"))
        assert len(counters) == 1
        assert int(server.get(counters[0]) or 0) == QUOTA
        server.delete(*counters)
    finally:
        server.close()
    engine = sa.create_engine(servers.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT count(*) FROM api_key_quota_counters")).scalar()
    finally:
        engine.dispose()
    assert rows == 0  # nothing counted in the database
