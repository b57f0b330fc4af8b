"""Rate limits per key and failed-authentication throttling per client address.

Built on the ``limits`` library. The storage is ``memory://`` by default (each
process counts on its own, so with *n* workers a key gets up to *n* times its limit)
and ``redis://...`` when several processes or hosts must share one limit.

The default strategy is the **moving window**: a key with ``100/minute`` is never
served more than 100 requests in *any* 60 seconds, also across a window boundary.
It costs one list entry per request in the window, so very large limits
(``100000/day``) are cheaper as ``fixed-window`` (one counter, but up to twice the
limit around a boundary) or ``sliding-window-counter`` (two counters, approximate).

The failed-authentication throttle counts refused well-formed keys per client address.
Only refusals consult it: a key that is found and usable is served whatever its address
did, and costs no call to the storage unless it has a rate limit of its own. Over the
throttle's limit, refused keys get 429 instead of 401, without the audit row, log line
and signal of each refusal.

When the storage is unreachable, ``fail_open`` decides, for key limits and the
throttle alike: serve without a limit (default: an outage of Redis does not take the
API down; authentication still applies) or refuse what the limit would have decided
(limited keys, and refused keys get 429). One warning is logged when an outage starts
and one when it ends; meanwhile the storage is tried again every
``retry_after_failure`` seconds, so an outage does not add a timeout to every request.
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

from .outage import OutageBreaker

__all__ = ["Decision", "RateLimits", "parse_limits"]

logger = logging.getLogger("flask_apikeys")

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
        self.storage_options = dict(storage_options or {})
        if self.storage_uri.startswith(("redis://", "rediss://", "redis+")):
            self.storage_options.setdefault("socket_connect_timeout", 1)
            self.storage_options.setdefault("socket_timeout", 1)
        if self.default_limit:
            parse_limits(self.default_limit)  # fail at start-up, not on a request
        if self.failed_auth_limit:
            parse_limits(self.failed_auth_limit)
        self._lock = threading.Lock()
        self._limiter: Any = None
        self._pid = 0
        where = self.storage_uri.split("@")[-1]  # never the password
        self.breaker = OutageBreaker(
            f"rate-limit storage {where}", fail_open=fail_open, retry_after=retry_after_failure
        )

    @property
    def fail_open(self) -> bool:
        return self.breaker.fail_open

    @property
    def retry_after_failure(self) -> float:
        return self.breaker.retry_after

    @retry_after_failure.setter
    def retry_after_failure(self, seconds: float) -> None:
        self.breaker.retry_after = seconds

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
        if self.breaker.is_open:
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
        except Exception as error:
            self.breaker.failed("a key's rate limit", error)
            return self._unavailable()
        self.breaker.answered()
        return min(decisions, key=lambda d: d.remaining)

    # -- failed authentication per address -------------------------------------------------

    def record_failure(self, address: str | None) -> Decision | None:
        """Count one refused key from *address*; a refusing :class:`Decision` once the
        address is over the limit (or the storage is down and failing closed)."""
        if not self.failed_auth_limit or not address:
            return None
        if self.breaker.is_open:
            return self._unavailable()
        try:
            limiter = self.limiter
            ident = (self.key_prefix, "auth-fail", address)
            for item in parse_limits(self.failed_auth_limit):
                if not limiter.hit(item, *ident):
                    stats = limiter.get_window_stats(item, *ident)
                    reset = max(1, math.ceil(stats.reset_time - time.time()))
                    self.breaker.answered()
                    return Decision(False, item.amount, 0, reset)
        except Exception as error:
            self.breaker.failed("the failed-authentication throttle", error)
            return self._unavailable()
        self.breaker.answered()
        return None

    def reset(self) -> None:
        """Forget every count (tests; a ``memory://`` storage only forgets this process)."""
        try:
            self.limiter.storage.reset()
        except Exception as error:
            self.breaker.failed("a reset", error)
