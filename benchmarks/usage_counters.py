"""Where should per-request usage be counted? In-process buffer vs Redis counters.

    .venv/bin/python benchmarks/usage_counters.py [redis://127.0.0.1:6379/15]

Times, per verified request, what each design adds to the request itself:

* ``buffer``: :meth:`flask_apikeys.service.usage.UsageBuffer.record` (a dict update under a lock);
  the flusher thread writes every few seconds, off the request path;
* ``redis``: one pipelined round trip per request (``HINCRBY`` total, ``HINCRBY`` day,
  ``HSET`` last use), as a Redis design would need, plus a mover that still has to
  write the totals into the database.

Not collected by pytest.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time

import sqlalchemy as sa

sys.path.insert(0, ".")

from flask_apikeys.service.usage import UsageBuffer


def per_call(fn: object, n: int) -> float:
    call = fn  # type: ignore[assignment]
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            call()  # type: ignore[operator]
        runs.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/15"
    from example_app import apikeys

    models = apikeys.models
    buffer = UsageBuffer(
        sa.create_engine("sqlite://"),
        models.APIKey.__table__,
        models.APIKeyUsageDay.__table__,
        interval=0,
    )
    print(f"buffer.record: {per_call(lambda: buffer.record(42, '203.0.113.7'), 100_000):.2f} us")
    buffer.snapshot()  # drop the counts: there is no table to write them to

    import redis

    client = redis.Redis.from_url(url)
    today = dt.date.today().isoformat()

    def redis_record() -> None:
        pipe = client.pipeline(transaction=False)
        pipe.hincrby("bench:usage:total", "42", 1)
        pipe.hincrby(f"bench:usage:{today}", "42", 1)
        pipe.hset("bench:usage:last", "42", f"{time.time()} 203.0.113.7")
        pipe.execute()

    print(f"redis pipeline: {per_call(redis_record, 5_000):.2f} us")
    client.delete("bench:usage:total", f"bench:usage:{today}", "bench:usage:last")


if __name__ == "__main__":
    main()
