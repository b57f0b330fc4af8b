"""Quota counters in Redis (``APIKEYS_QUOTA_STORAGE_URI = "redis://..."``).

One Redis key per key and period, ``<prefix>/quota/<key id>/<period start>``, counted
by a Lua script that Redis runs atomically: it adds one only while the count is below
the limit, and the key expires an hour after its period ends (a total without refill
never expires: give Redis persistence, or count totals in the database). A call costs
one round trip (``EVALSHA``); a page of keys costs one ``MGET``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Collection
from typing import Any

from .quota_rules import Period

__all__ = ["RedisQuotaStore"]

#: KEYS[1]: the counter; ARGV[1]: the limit; ARGV[2]: seconds it lives (or "": for ever).
_SPEND = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then
  return -1
end
used = redis.call('INCR', KEYS[1])
if used == 1 and ARGV[2] ~= '' then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return used
"""
_KEEP_AFTER_PERIOD = dt.timedelta(hours=1)  # hosts whose clocks lag still find the counter
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class RedisQuotaStore:
    """Counters in the Redis at *url* (``redis://``, ``rediss://`` or ``unix://``).

    *options* go to ``redis.Redis.from_url``; connect and socket timeouts default to
    one second, so an outage costs a request little before the counter fails over.
    """

    def __init__(
        self, url: str, *, key_prefix: str = "apikeys", options: dict[str, Any] | None = None
    ) -> None:
        if not url.startswith(REDIS_SCHEMES):
            raise RuntimeError(
                "APIKEYS_QUOTA_STORAGE_URI must be a redis://, rediss:// or unix:// URL "
                "(or None for the database)"
            )
        self.url = url
        self.key_prefix = key_prefix
        self.options = {"socket_connect_timeout": 1, "socket_timeout": 1, **(options or {})}
        self._lock = threading.Lock()
        self._client: Any = None
        self._script: Any = None

    @property
    def client(self) -> Any:
        """The Redis client, made at first use (its pool reconnects after a fork)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import redis

                    client = redis.Redis.from_url(self.url, **self.options)
                    self._script = client.register_script(_SPEND)
                    self._client = client
        return self._client

    def counter_key(self, counter_id: int, period: Period) -> str:
        return f"{self.key_prefix}/quota/{counter_id}/{int(period.start.timestamp())}"

    def spend(self, counter_id: int, period: Period, limit: int, now: dt.datetime) -> int | None:
        client = self.client
        expire = ""  # counted from now, not a moment: the hosts' and Redis' clocks may differ
        if period.end is not None:
            expire = str(max(1, int((period.end + _KEEP_AFTER_PERIOD - now).total_seconds())))
        key = self.counter_key(counter_id, period)
        used = int(self._script(keys=[key], args=[limit, expire], client=client))
        return None if used < 0 else used

    def used(self, wanted: Collection[tuple[int, Period]]) -> dict[tuple[int, dt.datetime], int]:
        if not wanted:
            return {}
        pairs = list(wanted)
        values = self.client.mget([self.counter_key(c, p) for c, p in pairs])
        return {
            (counter_id, period.start): int(value)
            for (counter_id, period), value in zip(pairs, values, strict=True)
            if value is not None
        }

    def reset(self, counter_id: int, period: Period) -> None:
        """Forget one counter (tests, or an operator's correction)."""
        self.client.delete(self.counter_key(counter_id, period))
