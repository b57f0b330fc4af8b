"""Buffers written out by one background thread per process, off the request path.

What requests produce that must reach the database — usage counts
(:mod:`~flask_apikeys.usage`), the request log (:mod:`~flask_apikeys.requestlog`) — is
kept in memory by a :class:`BufferedWriter` and written later. One daemon thread per
process flushes each buffer when it is due: every ``interval`` seconds, sooner when
``max_buffered`` items are waiting. :func:`flush_all` writes every buffer of the
process at exit (``atexit``, and gunicorn's ``worker_exit`` hook if configured).

A flush that fails keeps what it took (the buffer puts it back) and the next one
retries. A process killed with SIGKILL loses what it had buffered: at most
``interval`` seconds or ``max_buffered`` items, whichever comes first. A forked child
starts with empty buffers: what was buffered before the fork is the parent's to write.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

__all__ = ["BufferedWriter", "flush_all"]

logger = logging.getLogger("flask_apikeys")

# Every live buffer of this process, for the flusher thread and for flush_all().
_BUFFERS: weakref.WeakSet[BufferedWriter] = weakref.WeakSet()
# Buffers holding unwritten items, held strongly so that nothing is lost with its app.
_DIRTY: set[BufferedWriter] = set()
_WATCHED_TABLES: weakref.WeakSet[sa.Table] = weakref.WeakSet()
_REGISTRY_LOCK = threading.Lock()
_FLUSHER: _Flusher | None = None


class BufferedWriter:
    """A per-process buffer that the flusher thread writes to *engine* when it is due.

    Subclasses keep their items under ``self._lock``, call :meth:`_recorded` after
    buffering one, and implement :meth:`_reset`, :attr:`pending`, :meth:`flush` and
    :meth:`discard`. *engine* is a SQLAlchemy engine or a callable returning one
    (resolved at the first flush); *tables* are the tables the buffer writes to.
    ``interval`` of ``0`` or ``None`` starts no flusher thread: call :meth:`flush`
    yourself (tests do), and the buffer is still flushed at exit.
    """

    #: What the buffer holds and what one item is, for log lines ("key usage", "uses").
    what = "buffered data"
    unit = "items"

    def __init__(
        self,
        engine: sa.Engine | Callable[[], sa.Engine],
        tables: tuple[sa.Table, ...],
        *,
        interval: float | None,
        max_buffered: int,
    ) -> None:
        self._engine = engine
        self.tables = tables
        self.interval = float(interval or 0)
        self.max_buffered = max(1, int(max_buffered))
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._reset()
        self._next_flush = time.monotonic() + self.interval
        self._failing_since: float | None = None
        with _REGISTRY_LOCK:
            _BUFFERS.add(self)
            for table in tables:
                if table not in _WATCHED_TABLES:
                    _WATCHED_TABLES.add(table)
                    sa.event.listen(table, "after_drop", _forget_dropped)

    # -- what subclasses provide -------------------------------------------------------

    def _reset(self) -> None:
        """Empty the buffer (called under ``self._lock``, or before it is shared)."""
        raise NotImplementedError

    @property
    def pending(self) -> int:
        """Items buffered and not yet written."""
        raise NotImplementedError

    def flush(self) -> int:
        """Write the buffer out; return how many items were written (raise on failure)."""
        raise NotImplementedError

    def discard(self) -> None:
        """Drop what is buffered (its tables are gone)."""
        with self._lock:
            self._reset()
            self._mark_clean()

    # -- bookkeeping for subclasses ------------------------------------------------------

    def _recorded(self, waiting: int) -> None:
        """Called after an item was buffered, with how many now wait: no I/O."""
        if waiting == 1:  # the first since the last flush
            _DIRTY.add(self)
            if self.interval > 0:
                _ensure_flusher()
        elif waiting >= self.max_buffered and _FLUSHER is not None:
            _FLUSHER.wake.set()

    def _mark_dirty(self) -> None:
        _DIRTY.add(self)

    def _mark_clean(self) -> None:
        _DIRTY.discard(self)

    # -- flushing --------------------------------------------------------------------------

    @property
    def engine(self) -> sa.Engine:
        if not isinstance(self._engine, sa.Engine):
            self._engine = self._engine()
        return self._engine

    def flush_quietly(self) -> int:
        """:meth:`flush`, logging instead of raising (for the timer and exit hooks)."""
        try:
            written = self.flush()
        except Exception:
            now = time.monotonic()
            if self._failing_since is None or now - self._failing_since > 60:
                logger.exception(
                    "flask-apikeys could not write %s (%d %s kept; will retry)",
                    self.what,
                    self.pending,
                    self.unit,
                )
                self._failing_since = now
            return 0
        if self._failing_since is not None:
            logger.info("flask-apikeys wrote %s again", self.what)
            self._failing_since = None
        return written

    def _due(self, now: float) -> bool:
        if self.interval <= 0:
            return False
        pending = self.pending
        return pending >= self.max_buffered or (pending > 0 and now >= self._next_flush)

    def close(self) -> None:
        """Flush what is buffered and stop taking part in the flusher thread."""
        self.flush_quietly()
        with _REGISTRY_LOCK:
            _BUFFERS.discard(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._reset()


def _forget_dropped(table: sa.Table, connection: sa.Connection, **kw: Any) -> None:
    """A table was dropped (tests tear down): what was buffered for it has nowhere to go."""
    engine = connection.engine
    for buffer in list(_BUFFERS):
        if not any(t is table for t in buffer.tables) or not isinstance(buffer._engine, sa.Engine):
            continue
        if buffer._engine is engine or buffer._engine.url == engine.url:
            buffer.discard()


def flush_all() -> int:
    """Flush every buffer of this process (at exit; also handy in tests and scripts)."""
    with _REGISTRY_LOCK:
        buffers = list(_BUFFERS)
    return sum(buffer.flush_quietly() for buffer in buffers)


class _Flusher(threading.Thread):
    """One daemon thread per process that flushes every buffer when it is due."""

    def __init__(self) -> None:
        super().__init__(name="flask-apikeys-flusher", daemon=True)
        self.wake = threading.Event()
        self.stopping = False

    def run(self) -> None:
        while not self.stopping:
            with _REGISTRY_LOCK:
                buffers = list(_BUFFERS)
            intervals = [b.interval for b in buffers if b.interval > 0]
            self.wake.wait(min(intervals, default=1.0) / 4 if intervals else 1.0)
            self.wake.clear()
            now = time.monotonic()
            for buffer in buffers:
                if buffer._due(now):
                    buffer._next_flush = now + buffer.interval
                    buffer.flush_quietly()


def _ensure_flusher() -> None:
    global _FLUSHER
    if _FLUSHER is not None and _FLUSHER.is_alive():
        return
    with _REGISTRY_LOCK:
        if _FLUSHER is None or not _FLUSHER.is_alive():
            _FLUSHER = _Flusher()
            _FLUSHER.start()


def after_fork_in_child() -> None:
    """A forked child starts with empty buffers: the parent writes what it buffered.

    The parent's flusher thread does not exist in the child (``threading`` marks it
    stopped after a fork), so the child's first buffered item starts its own.
    """
    global _REGISTRY_LOCK
    _REGISTRY_LOCK = threading.Lock()
    _DIRTY.clear()
    for buffer in list(_BUFFERS):
        buffer._after_fork()


def _stop_flusher() -> None:
    if _FLUSHER is not None:
        _FLUSHER.stopping = True
        _FLUSHER.wake.set()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=after_fork_in_child)
atexit.register(flush_all)
atexit.register(_stop_flusher)
