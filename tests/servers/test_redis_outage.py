"""Redis going away under load and coming back: rate limits and quotas fail open, so no
request gets a 5xx; each process warns once when the outage starts and once when it ends.

Two gunicorn instances (two workers each) count rate limits and quotas in a
``redis-server`` of the test's own, which the test stops for a few seconds and starts
again on the same port while four threads send requests. Bounded in count and time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.conftest import bearer
from tests.own_redis import start_redis, stop_redis
from tests.servers.conftest import Cluster
from tests.servers.test_scale_out import _issue


def test_a_redis_outage_under_load_answers_no_5xx_and_warns_once_per_outage(
    cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    redis, port = start_redis(tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        servers = cluster(
            APIKEYS_RATELIMIT_STORAGE_URI=url,
            APIKEYS_QUOTA_STORAGE_URI=url,
            APIKEYS_FAILED_AUTH_LIMIT="null",
        )
        secret, _ = _issue(servers, rate_limit="100000/minute", quota="1000000/month")
        headers = bearer(secret)
        statuses: Counter[int] = Counter()
        phases: Counter[tuple[str, int]] = Counter()
        phase = ["before"]
        lock = threading.Lock()
        stop = threading.Event()

        def hammer(index: int) -> None:
            server = servers.servers[index % 2]
            for _ in range(3000):  # bounded; stopped much earlier
                if stop.is_set():
                    return
                try:
                    status, _ = server.get("/v1/invoices", headers)
                except OSError:
                    status = 0
                with lock:
                    statuses[status] += 1
                    phases[(phase[0], status)] += 1

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        phase[0] = "down"
        stop_redis(redis)
        time.sleep(3)
        phase[0] = "back"
        redis, _ = start_redis(tmp_path, port)
        time.sleep(7)  # past the breaker's 5 s wait: every process asks Redis again
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert set(statuses) == {200}, statuses
        for name in ("before", "down", "back"):
            assert phases[(name, 200)] > 0, phases
        for server in servers.servers:
            log = server.log.read_text()
            assert "Traceback" not in log
            lines = log.splitlines()
            failed = sum("failed during" in line for line in lines)
            recovered = sum(line.endswith("answers again") for line in lines)
            # Each worker warns once per storage (rate limits, quotas) when the outage
            # starts and once when it ends: never once per request.
            assert 1 <= failed <= 4, log[-3000:]
            assert recovered == failed, log[-3000:]
    finally:
        stop_redis(redis)
