"""The one outage breaker both storages use: one warning when an outage starts and one
when it ends, whatever the number of threads failing at once; no waiting on a storage
that just failed."""

from __future__ import annotations

import logging
import threading

import pytest

from flask_apikeys.service.outage import OutageBreaker
from flask_apikeys.service.quotas import QuotaCounter
from flask_apikeys.service.ratelimit import RateLimits

pytestmark = pytest.mark.backend_independent


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_an_outage_of_many_threads_is_one_warning_then_one_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    breaker = OutageBreaker("quota storage", retry_after=60)
    start = threading.Barrier(8)

    def fail() -> None:
        start.wait()
        for _ in range(50):
            breaker.failed("counting a call", ConnectionError("refused"))

    with caplog.at_level(logging.WARNING, logger="flask_apikeys"):
        threads = [threading.Thread(target=fail) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert breaker.is_open and breaker.in_outage
        breaker.answered()
        breaker.answered()
    said = _warnings(caplog)
    assert len(said) == 2
    assert said[0].startswith("flask-apikeys quota storage failed during counting a call")
    assert "ConnectionError: refused" in said[0] and "failing open" in said[0]
    assert said[1] == "flask-apikeys quota storage answers again"
    assert not breaker.in_outage


def test_the_breaker_waits_before_trying_again_and_says_closed_when_failing_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waiting = OutageBreaker("x", fail_open=False, retry_after=60)
    eager = OutageBreaker("y", retry_after=0)
    with caplog.at_level(logging.WARNING, logger="flask_apikeys"):
        waiting.failed("a hit", OSError("down"))
        eager.failed("a hit", OSError("down"))
    assert waiting.is_open  # no request waits on it for a minute
    assert not eager.is_open  # tried again on the next request
    assert "failing closed" in _warnings(caplog)[0]


def test_both_storages_share_the_breaker() -> None:
    limits = RateLimits("memory://", fail_open=False, retry_after_failure=7)
    counter = QuotaCounter(store=None, fail_open=True, retry_after_failure=3)  # type: ignore[arg-type]
    assert isinstance(limits.breaker, OutageBreaker) and isinstance(counter.breaker, OutageBreaker)
    assert (limits.fail_open, limits.retry_after_failure) == (False, 7)
    assert (counter.fail_open, counter.retry_after_failure) == (True, 3)
    counter.retry_after_failure = 0
    assert counter.breaker.retry_after == 0
