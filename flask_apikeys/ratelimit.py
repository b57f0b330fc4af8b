"""Rate limits per key and failed-authentication throttling per client address.

Built on the ``limits`` library. The storage is ``memory://`` by default (each
process counts on its own, so with *n* workers a key gets up to *n* times its limit)
and ``redis://...`` when several processes or hosts must share one limit.

The default strategy is the **moving window**: a key with ``100/minute`` is never
served more than 100 requests in *any* 60 seconds, also across a window boundary.
It costs one list entry per request in the window, so very large limits
(``100000/day``) are cheaper as ``fixed-window`` (one counter, but up to twice the
limit around a boundary) or ``sliding-window-counter`` (two counters, approximate).

When the storage is unreachable, ``fail_open`` decides: serve the request without
a limit (default: an outage of Redis does not take the API down; authentication
still applies) or refuse it. After a failure the storage is left alone for
``retry_after_failure`` seconds, so an outage does not add a timeout to every request.

Layer 3: ``limits`` only, no Flask.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Decision", "RateLimits", "parse_limits"]

logger = logging.getLogger("flask_apikeys")

_MAX_LOCAL_FAILURES = 10_000  # addresses remembered before the expired ones are dropped
STRATEGIES = ("moving-window", "fixed-window", "sliding-window-counter")


@functools.lru_cache(maxsize=1024)
def parse_limits(text: str) -> tuple[Any, ...]:
    """The ``limits`` items of ``"100/minute"`` or ``"10/second;1000/hour"`` (cached)."""
    from limits import parse_many

    return tuple(parse_many(text))


@dataclass(frozen=True)
class Decision:
    """Whether a request may proceed, with what the ``RateLimit-*`` headers say."""

    allowed: bool
    limit: int
    remaining: int
    #: Seconds until the window has room again (``RateLimit-Reset``, ``Retry-After``).
    reset_after: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(max(0, self.reset_after)),
        }


class RateLimits:
    """Per-key limits and the failed-authentication throttle of one app.

    *default_limit* applies to keys without their own ``rate_limit`` (``None``: no
    limit); *failed_auth_limit* is how many refused keys one address may present
    (``None``: no throttle). Identifiers in the storage are ``<key_prefix>/key/<id>``
    and ``<key_prefix>/auth-fail/<address>``.
    """

    def __init__(
        self,
        storage_uri: str = "memory://",
        *,
        strategy: str = "moving-window",
        default_limit: str | None = None,
        failed_auth_limit: str | None = None,
        key_prefix: str = "apikeys",
        fail_open: bool = True,
        retry_after_failure: float = 5.0,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise RuntimeError(
                f"APIKEYS_RATELIMIT_STRATEGY must be one of {', '.join(STRATEGIES)}, "
                f"not {strategy!r}"
            )
        self.storage_uri = storage_uri or "memory://"
        self.strategy = strategy
        self.default_limit = default_limit or None
        self.failed_auth_limit = failed_auth_limit or None
        self.key_prefix = key_prefix
        self.fail_open = fail_open
        self.retry_after_failure = retry_after_failure
        self.storage_options = dict(storage_options or {})
        if self.storage_uri.startswith(("redis://", "rediss://", "redis+")):
            self.storage_options.setdefault("socket_connect_timeout", 1)
            self.storage_options.setdefault("socket_timeout", 1)
        if self.default_limit:
            parse_limits(self.default_limit)  # fail at start-up, not on a request
        if self.failed_auth_limit:
            parse_limits(self.failed_auth_limit)
        self._lock = threading.Lock()
        # memory:// only: until when each address that failed here may still be
        # blocked, so that the addresses that never failed skip the limiter.
        self._local_failures: dict[str, float] | None = (
            {} if self.storage_uri.startswith("memory://") else None
        )
        self._failure_window = (
            max(item.get_expiry() for item in parse_limits(self.failed_auth_limit))
            if self.failed_auth_limit
            else 0
        )
        self._limiter: Any = None
        self._pid = 0
        self._down_until = 0.0

    # -- the limiter, made once per process (a forked worker makes its own) --------------

    @property
    def limiter(self) -> Any:
        pid = os.getpid()
        if self._limiter is None or self._pid != pid:
            with self._lock:
                if self._limiter is None or self._pid != pid:
                    from limits import strategies
                    from limits.storage import storage_from_string

                    storage = storage_from_string(self.storage_uri, **self.storage_options)
                    cls: Any = {
                        "moving-window": strategies.MovingWindowRateLimiter,
                        "fixed-window": strategies.FixedWindowRateLimiter,
                        "sliding-window-counter": strategies.SlidingWindowCounterRateLimiter,
                    }[self.strategy]
                    self._limiter = cls(storage)
                    self._pid = pid
        return self._limiter

    def _storage_down(self) -> bool:
        return self._down_until > time.monotonic()

    def _failed(self, what: str) -> None:
        if not self._storage_down():
            logger.warning(
                "flask-apikeys rate-limit storage %s failed during %s; failing %s for %ss",
                self.storage_uri.split("@")[-1],
                what,
                "open" if self.fail_open else "closed",
                self.retry_after_failure,
                exc_info=True,
            )
        self._down_until = time.monotonic() + self.retry_after_failure

    def _unavailable(self) -> Decision | None:
        if self.fail_open:
            return None
        return Decision(False, 0, 0, math.ceil(self.retry_after_failure))

    # -- per-key limits --------------------------------------------------------------------

    def limit_for(self, key_limit: str | None) -> str | None:
        return key_limit or self.default_limit

    def hit_key(self, key_id: int, key_limit: str | None) -> Decision | None:
        """Count one request of key *key_id*; ``None`` when no limit applies (or fail-open)."""
        text = self.limit_for(key_limit)
        if not text:
            return None
        if self._storage_down():
            return self._unavailable()
        try:
            limiter = self.limiter
            ident = (self.key_prefix, "key", str(key_id))
            decisions = []
            for item in parse_limits(text):
                allowed = limiter.hit(item, *ident)
                stats = limiter.get_window_stats(item, *ident)
                reset = math.ceil(stats.reset_time - time.time())
                if not allowed:  # the first limit that refuses decides, at least 1 s
                    return Decision(False, item.amount, 0, max(1, reset))
                decisions.append(Decision(True, item.amount, stats.remaining, max(0, reset)))
        except Exception:
            self._failed("a key's rate limit")
            return self._unavailable()
        return min(decisions, key=lambda d: d.remaining)

    # -- failed authentication per address -------------------------------------------------

    def address_blocked(self, address: str | None) -> Decision | None:
        """Whether *address* has presented too many refused keys; ``None`` when not."""
        if not self.failed_auth_limit or not address:
            return None
        local = self._local_failures
        if local is not None:
            until = local.get(address)
            if until is None:
                return None
            if until < time.monotonic():
                local.pop(address, None)
                return None
        if self._storage_down():
            return None  # the throttle is a cost saver: never refuse valid keys for it
        try:
            limiter = self.limiter
            for item in parse_limits(self.failed_auth_limit):
                ident = (self.key_prefix, "auth-fail", address)
                if not limiter.test(item, *ident):
                    stats = limiter.get_window_stats(item, *ident)
                    reset = max(1, math.ceil(stats.reset_time - time.time()))
                    return Decision(False, item.amount, 0, reset)
        except Exception:
            self._failed("the failed-authentication throttle")
        return None

    def record_failure(self, address: str | None) -> None:
        """Count one refused key from *address*."""
        if not self.failed_auth_limit or not address or self._storage_down():
            return
        local = self._local_failures
        if local is not None:
            now = time.monotonic()
            if len(local) >= _MAX_LOCAL_FAILURES:
                for stale in [a for a, until in local.items() if until < now]:
                    local.pop(stale, None)
            local[address] = now + self._failure_window + 1
        try:
            limiter = self.limiter
            for item in parse_limits(self.failed_auth_limit):
                limiter.hit(item, self.key_prefix, "auth-fail", address)
        except Exception:
            self._failed("the failed-authentication throttle")

    def reset(self) -> None:
        """Forget every count (tests; a ``memory://`` storage only forgets this process)."""
        if self._local_failures is not None:
            self._local_failures.clear()
        try:
            self.limiter.storage.reset()
        except Exception:
            self._failed("a reset")
