"""Several processes on several "hosts": revocation, exact usage, shared limits, no writes.

Two gunicorn instances with two workers each, one PostgreSQL, one Redis. Every loop is
bounded in count and time; no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa

from tests.conftest import bearer
from tests.servers.conftest import Cluster


def _issue(cluster: Cluster, **kwargs: Any) -> tuple[str, str]:
    """A key for alice (invoice.read), made in-process on the shared database."""
    from example_app import apikeys, db
    from example_app.models import User

    app = cluster.app()
    with app.app_context():
        alice = db.session.scalar(sa.select(User).where(User.email == "alice@acme.test"))
        issued = apikeys.service.keys.issue(alice, "servers", ["invoice.read"], **kwargs)
        result = issued.secret, issued.key.display_prefix
        db.session.remove()
        db.engine.dispose()
    return result


def _key_row(cluster: Cluster, display_prefix: str) -> Any:
    engine = sa.create_engine(cluster.database_url)
    try:
        with engine.connect() as conn:
            key = conn.execute(
                sa.text(
                    "SELECT id, usage_count, last_used_at FROM api_keys WHERE display_prefix = :p"
                ),
                {"p": display_prefix},
            ).one()
            days = conn.execute(
                sa.text("SELECT day, count FROM api_key_usage_days WHERE key_id = :k"),
                {"k": key.id},
            ).all()
        return key, {row.day: row.count for row in days}
    finally:
        engine.dispose()


def test_a_key_revoked_through_one_instance_is_refused_by_the_other_at_once(
    cluster: Callable[..., Cluster],
) -> None:
    from example_app import apikeys, db

    servers = cluster(APIKEYS_FAILED_AUTH_LIMIT="null")
    secret, prefix = _issue(servers)
    headers = bearer(secret)
    assert servers.a.get("/v1/invoices", headers)[0] == 200
    assert servers.b.get("/v1/invoices", headers)[0] == 200

    # Load on both instances while the key is revoked: each result is
    # (started, finished, status) on this process's monotonic clock.
    results: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    stop = threading.Event()
    revoked_at: list[float] = []

    def hammer(server_index: int) -> None:
        server = servers.servers[server_index]
        for _ in range(2000):  # bounded; stopped much earlier
            if stop.is_set():
                return
            started = time.monotonic()
            status, _ = server.get("/v1/invoices", headers)
            with lock:
                results.append((started, time.monotonic(), status))

    threads = [threading.Thread(target=hammer, args=(n % 2,)) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # let some requests through first
            with lock:
                if sum(1 for r in results if r[2] == 200) >= 20:
                    break
            time.sleep(0.01)
        app = servers.app()
        with app.app_context():
            key = apikeys.service.queries.get_by_display_prefix(prefix)
            assert apikeys.service.keys.revoke(key, reason="leaked")  # commits
            revoked_at.append(time.monotonic())
            db.session.remove()
            db.engine.dispose()
        # The very next request, on the other instance, is refused.
        status, _ = servers.b.get("/v1/invoices", headers)
        assert status == 401
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # then keep the load on for a while
            with lock:
                if sum(1 for r in results if r[0] > revoked_at[0]) >= 100:
                    break
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    before = [r for r in results if r[1] < revoked_at[0]]
    after = [r for r in results if r[0] > revoked_at[0]]
    assert any(status == 200 for _, _, status in before)
    assert len(after) >= 100
    assert {status for _, _, status in after} == {401}  # none served after the commit
    servers.stop()


def test_concurrent_requests_on_both_instances_are_counted_exactly(
    cluster: Callable[..., Cluster],
) -> None:
    servers = cluster(APIKEYS_USAGE_FLUSH_INTERVAL="0")  # counts reach the database at stop only
    secret, prefix = _issue(servers)
    headers = bearer(secret)
    n = 400
    first_day = dt.datetime.now(dt.UTC).date()

    def call(i: int) -> int:
        return servers.servers[i % 2].get("/v1/invoices", headers)[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(call, range(n)))
    assert statuses == [200] * n
    last_day = dt.datetime.now(dt.UTC).date()
    key, _ = _key_row(servers, prefix)
    assert key.usage_count == 0  # still buffered in the four workers

    servers.stop()  # SIGTERM to both masters: a graceful stop flushes every worker
    for server in servers.servers:
        assert server.process.returncode == 0, server.log.read_text()[-2000:]
    key, days = _key_row(servers, prefix)
    assert key.usage_count == n
    assert sum(days.values()) == n
    assert set(days) <= {first_day, last_day}
    if first_day == last_day:
        assert days == {first_day: n}
    assert key.last_used_at is not None


def test_a_per_key_limit_holds_across_both_instances(cluster: Callable[..., Cluster]) -> None:
    servers = cluster()
    limit = 12
    secret, _ = _issue(servers, rate_limit=f"{limit}/minute")
    headers = bearer(secret)
    started = time.monotonic()

    def call(i: int) -> tuple[int, dict[str, str]]:
        return servers.servers[i % 2].get("/v1/invoices", headers)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(call, range(4 * limit)))
    took = time.monotonic() - started
    served = [h for status, h in responses if status == 200]
    refused = [h for status, h in responses if status == 429]
    assert len(served) + len(refused) == 4 * limit
    assert len(served) <= limit
    if took < 60:  # a moving window: all of it fell in one minute
        assert len(served) == limit
    assert all(h["RateLimit-Limit"] == str(limit) for h in served + refused)
    assert all(int(h["Retry-After"]) >= 1 for h in refused)
    servers.stop()


def test_verified_requests_write_nothing_to_postgresql(cluster: Callable[..., Cluster]) -> None:
    """pg_stat_user_tables around a burst, with the usage flusher off."""
    servers = cluster(APIKEYS_USAGE_FLUSH_INTERVAL="0")
    secret, _ = _issue(servers)
    headers = bearer(secret)
    engine = sa.create_engine(servers.database_url)
    query = sa.text(
        "SELECT relname, COALESCE(idx_scan, 0) AS idx_scan, n_tup_ins, n_tup_upd, n_tup_del"
        " FROM pg_stat_user_tables WHERE schemaname = :schema"
    )

    def stats() -> dict[str, Any]:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            return {row.relname: row for row in conn.execute(query, {"schema": servers.schema})}

    try:
        before = stats()
        n = 200
        for i in range(n):
            assert servers.servers[i % 2].get("/v1/invoices", headers)[0] == 200
        # Backends report their statistics a little later: wait (bounded) until the
        # index scans of the burst show, which proves the counters are current.
        deadline = time.monotonic() + 30
        after = stats()
        while time.monotonic() < deadline:
            after = stats()
            if after["api_keys"].idx_scan - before["api_keys"].idx_scan >= n:
                break
            time.sleep(0.5)
        assert after["api_keys"].idx_scan - before["api_keys"].idx_scan >= n
        for table in ("api_keys", "api_key_usage_days", "api_key_events"):
            for column in ("n_tup_ins", "n_tup_upd", "n_tup_del"):
                delta = getattr(after[table], column) - getattr(before[table], column)
                assert delta == 0, (table, column, delta)
    finally:
        engine.dispose()
    servers.stop()
