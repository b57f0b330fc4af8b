"""One breaker for the storages the hot path asks (rate limits, quotas): when a storage
fails, requests stop waiting on it for a while and are served (fail open) or refused
(fail closed); one warning is logged when an outage starts and one when it ends."""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["OutageBreaker"]

logger = logging.getLogger("flask_apikeys")


class OutageBreaker:
    """The outage state of one storage, named *what* in the log (never a password).

    After a failure the storage is left alone for *retry_after* seconds, so an outage
    does not add a timeout to every request; then the next request tries it again.
    Safe to share between threads.
    """

    def __init__(self, what: str, *, fail_open: bool = True, retry_after: float = 5.0) -> None:
        self.what = what
        self.fail_open = fail_open
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._outage = False

    @property
    def is_open(self) -> bool:
        """Whether requests should not ask the storage now (an outage, within its wait)."""
        return self._down_until > time.monotonic()

    @property
    def in_outage(self) -> bool:
        """Whether the last answer of the storage was a failure."""
        return self._outage

    def failed(self, during: str, error: BaseException) -> None:
        """Record a failure *during* some operation: warn once per outage."""
        with self._lock:
            self._down_until = time.monotonic() + self.retry_after
            if self._outage:
                return
            self._outage = True
        logger.warning(
            "flask-apikeys %s failed during %s (%s: %s); failing %s until it answers "
            "again (retried every %ss)",
            self.what,
            during,
            type(error).__name__,
            str(error)[:200],
            "open" if self.fail_open else "closed",
            self.retry_after,
        )

    def answered(self) -> None:
        """Record an answer: say once that an outage ended."""
        if not self._outage:
            return
        with self._lock:
            if not self._outage:
                return
            self._outage = False
        logger.warning("flask-apikeys %s answers again", self.what)
