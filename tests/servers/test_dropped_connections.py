"""PostgreSQL dropping the servers' connections under load: the key lookup, a read,
retries once on a fresh connection and SQLAlchemy recycles the pool's other ones, so
once a connection has failed, no request gets a 5xx.

Two gunicorn instances (two workers each, without ``pool_pre_ping``) while four threads
send requests; the test terminates every backend of their ``application_name`` in this
database a few times. A route whose only query is the lookup never fails; a view's own
query in flight when its backend goes may (the host's query, not the lookup), but every
request started after that is served. Bounded in count and time.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa

from tests.conftest import bearer
from tests.servers.conftest import Cluster
from tests.servers.test_scale_out import _issue

KILLS = 3
#: How long a terminated backend may take to go (the signal is asynchronous).
GRACE = 0.5


def test_backends_terminated_under_load_answer_no_5xx_afterwards(
    cluster: Callable[..., Cluster],
) -> None:
    name = f"apikeys-dropped-{uuid.uuid4().hex[:12]}"
    options = {"pool_pre_ping": False, "connect_args": {"application_name": name}}
    servers = cluster(
        app="tests.servers.pool_app:app",
        SQLALCHEMY_ENGINE_OPTIONS=json.dumps(options),
        APIKEYS_FAILED_AUTH_LIMIT="null",
    )
    secret, _ = _issue(servers)
    headers = bearer(secret)
    #: (started, finished, status, path) on this process's monotonic clock
    results: list[tuple[float, float, int, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def hammer(index: int) -> None:
        server = servers.servers[index % 2]
        for n in range(5000):  # bounded; stopped much earlier
            if stop.is_set():
                return
            path = "/_test/key" if n % 2 else "/v1/invoices"
            started = time.monotonic()
            try:
                status, _ = server.get(path, headers)
            except OSError:
                status = 0
            with lock:
                results.append((started, time.monotonic(), status, path))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    admin = sa.create_engine(servers.database_url.split("?", 1)[0])
    kills: list[tuple[float, float, int]] = []
    try:
        for thread in threads:
            thread.start()
        for _ in range(KILLS):
            time.sleep(1.5)
            with admin.connect() as conn:
                started = time.monotonic()
                count = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = :name AND datname = current_database()"
                    ),
                    {"name": name},
                ).scalar_one()
                kills.append((started, time.monotonic() + GRACE, count))
        time.sleep(1.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        admin.dispose()
    assert all(count >= 1 for _, _, count in kills), kills

    def during_a_kill(started: float, finished: float) -> bool:
        return any(started < end and finished > begin for begin, end, _ in kills)

    failed = [result for result in results if result[2] != 200]
    assert all(path == "/v1/invoices" for *_, path in failed), failed
    assert all(during_a_kill(s, f) for s, f, _, _ in failed), (failed, kills)
    assert len(failed) <= 4 * KILLS  # at most the views in flight at each kill
    for _, end, _ in kills:  # and both routes kept being served after each
        served = {path for s, _, status, path in results if s > end and status == 200}
        assert served == {"/_test/key", "/v1/invoices"}
