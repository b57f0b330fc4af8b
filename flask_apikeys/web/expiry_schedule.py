"""Sending expiry warnings: the ``key_expiring`` signal, once, from cron or a timer.

:func:`notify_expiring` claims and sends every warning due now (the
``flask apikeys notify-expiring`` command calls it; see :mod:`flask_apikeys.expiry` for
why a warning is never sent twice). With ``APIKEYS_EXPIRY_NOTIFY_INTERVAL`` set before
``init_app``, each process also runs it every so many seconds on a daemon thread of its
own, started by its first request (so a forked worker starts its own) and stopped at
exit: several workers and hosts may run it at once, each warning still goes out once.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import math
import os
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, current_app

from ..db.models import APIKeyMixin, utcnow
from ..service.expiry import ExpiryWarning
from . import signals
from .config import as_seconds
from .state import app_keys

__all__ = [
    "expiring_soon",
    "notify_expiring",
    "schedule_expiry_warnings",
    "stop_expiry_warnings",
    "warning_days",
]

logger = logging.getLogger("flask_apikeys")

_THREADS: weakref.WeakKeyDictionary[Flask, _Notifier] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_JOIN_TIMEOUT = 10.0


def warning_days(config: Mapping[str, Any]) -> tuple[int, ...]:
    """``APIKEYS_EXPIRY_WARNING_DAYS`` as whole days, furthest first (``()``: none)."""
    value = config.get("APIKEYS_EXPIRY_WARNING_DAYS")
    if value is None or value == "":
        return ()
    if isinstance(value, str):  # "7, 1" from an environment variable
        items: Iterable[Any] = value.replace(",", " ").split()
    elif isinstance(value, Iterable):
        items = value
    else:
        items = [value]
    days: set[int] = set()
    for item in items:
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise RuntimeError(
                "APIKEYS_EXPIRY_WARNING_DAYS must be whole numbers of days, e.g. [7, 1]"
            )
        days.add(item)
    return tuple(sorted(days, reverse=True))


def notify_expiring(app: Flask | None = None) -> list[ExpiryWarning]:
    """Send ``key_expiring`` for every warning due now; return them. Needs an app context."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    thresholds = warning_days(app.config)
    service = app_keys(app).service

    def send(warning: ExpiryWarning) -> None:
        logger.info(
            "API key %s expires %s: warning its owner (%d-day notice)",
            warning.key.display_prefix,
            warning.expires_at.isoformat(),
            warning.days,
        )
        signals.key_expiring.send(
            app, key=warning.key, days=warning.days, expires_at=warning.expires_at
        )

    warnings: list[ExpiryWarning] = service.expiry.warn_expiring(thresholds, send)
    return warnings


def expiring_soon(keys: Iterable[APIKeyMixin], now: dt.datetime | None = None) -> dict[int, int]:
    """``{key id: whole days left}`` for the usable keys of *keys* expiring within the
    furthest warning threshold: what the key list marks. Needs an app context."""
    days = warning_days(current_app.config)
    if not days:
        return {}
    now = now or utcnow()
    horizon = now + dt.timedelta(days=days[0])
    soon: dict[int, int] = {}
    for key in keys:
        expires_at = key.expires_at
        if key.revoked_at is None and expires_at is not None and now < expires_at <= horizon:
            soon[key.id] = math.ceil((expires_at - now) / dt.timedelta(days=1))
    return soon


def schedule_expiry_warnings(app: Flask) -> None:
    """Run :func:`notify_expiring` every ``APIKEYS_EXPIRY_NOTIFY_INTERVAL`` seconds in
    each process serving *app*, from its first request on (nothing when it is 0)."""
    interval = as_seconds(
        app.config.get("APIKEYS_EXPIRY_NOTIFY_INTERVAL"), "APIKEYS_EXPIRY_NOTIFY_INTERVAL"
    )
    if interval > 0:
        app.before_request(_ensure_running)


def _ensure_running() -> None:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    thread = _THREADS.get(app)
    if thread is not None and thread.is_alive():
        return
    with _LOCK:
        thread = _THREADS.get(app)
        if thread is None or not thread.is_alive():
            interval = as_seconds(
                app.config.get("APIKEYS_EXPIRY_NOTIFY_INTERVAL"), "APIKEYS_EXPIRY_NOTIFY_INTERVAL"
            )
            thread = _THREADS[app] = _Notifier(app, interval)
            thread.start()


def stop_expiry_warnings(app: Flask | None = None) -> None:
    """Stop the timer of *app* (of every app when ``None``), letting a run in progress end."""
    with _LOCK:
        threads = [_THREADS.pop(app, None)] if app is not None else list(_THREADS.values())
        if app is None:
            _THREADS.clear()
    for thread in threads:
        if thread is not None:
            thread.stop()


class _Notifier(threading.Thread):
    """Runs :func:`notify_expiring` for one app now, then every *interval* seconds."""

    def __init__(self, app: Flask, interval: float) -> None:
        super().__init__(name="flask-apikeys-expiry-warnings", daemon=True)
        self._app = weakref.ref(app)  # the thread does not keep the app alive
        self.interval = interval
        self.stopping = threading.Event()
        self.runs = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            app = self._app()
            if app is None:
                return
            try:
                with app.app_context():
                    notify_expiring(app)
            except Exception:
                logger.exception("flask-apikeys could not send expiry warnings (will retry)")
            self.runs += 1
            del app
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        if self is not threading.current_thread():
            self.join(_JOIN_TIMEOUT)


def _forget_after_fork() -> None:
    """A forked child has none of its parent's threads: its first request starts one."""
    global _LOCK
    _LOCK = threading.Lock()
    _THREADS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(stop_expiry_warnings)
