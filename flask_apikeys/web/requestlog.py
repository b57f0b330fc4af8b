"""The request log in a Flask app: the buffer its settings describe, and the hook
that hands it each key-authenticated request with the status sent.

The buffer is :mod:`~flask_apikeys.service.requestlog`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, request, request_finished

from ..db.schema import Models
from ..service.requestlog import REFUSALS, RequestLogBuffer
from . import config as _config
from .authenticate import get_current_key, refused_key_id
from .state import app_keys

__all__ = ["log_key_requests", "make_request_log"]


def make_request_log(
    cfg: Mapping[str, Any], engine: sa.Engine, models: Models
) -> RequestLogBuffer | None:
    """The app's request-log buffer, from its ``APIKEYS_*`` settings (``None``: off).

    It flushes with the usage counters: same interval, same bound, same thread.
    """
    if not cfg["APIKEYS_REQUEST_LOG"] or models.APIKeyRequest is None:
        return None
    days = _config.as_count(
        cfg["APIKEYS_REQUEST_LOG_RETENTION_DAYS"], "APIKEYS_REQUEST_LOG_RETENTION_DAYS"
    )
    return RequestLogBuffer(
        engine,
        models.APIKeyRequest.__table__,
        read_sample=_config.as_fraction(
            cfg["APIKEYS_REQUEST_LOG_READ_SAMPLE"], "APIKEYS_REQUEST_LOG_READ_SAMPLE"
        ),
        retention=dt.timedelta(days=days) if days else None,
        max_per_key=_config.as_count(
            cfg["APIKEYS_REQUEST_LOG_MAX_PER_KEY"], "APIKEYS_REQUEST_LOG_MAX_PER_KEY"
        ),
        interval=_config.as_seconds(
            cfg["APIKEYS_USAGE_FLUSH_INTERVAL"], "APIKEYS_USAGE_FLUSH_INTERVAL"
        ),
        max_buffered=int(cfg["APIKEYS_USAGE_MAX_BUFFERED"]),
    )


def log_key_requests(app: Flask) -> None:
    """Log *app*'s key-authenticated requests.

    ``request_finished`` is sent after every ``after_request`` hook, also for the 500
    page of an unhandled error (unless the app propagates exceptions: debug, testing),
    so the status logged is the one sent. Refusals (401, 403, 429) are logged whatever
    the method, a bounded number per key between two flushes (see
    :meth:`~flask_apikeys.service.requestlog.RequestLogBuffer.refusal_kept`).
    """
    request_finished.connect(_log_key_request, app)


def _log_key_request(sender: Flask, response: Response, **extra: Any) -> None:
    verified = get_current_key()
    # A key found and then refused (revoked, expired, its allowlist, rate limit or
    # quota) is logged too: its owner wants to see those calls most.
    key_id = verified.id if verified is not None else refused_key_id()
    if key_id is None:
        return
    log = app_keys(sender).hot_path(sender).request_log
    if log is None:
        return
    method, status = request.method, response.status_code
    if log.sampled(method) if status not in REFUSALS else log.refusal_kept(key_id):
        log.add(
            key_id,
            method,
            request.script_root + request.path,  # never the query string
            status,
            request.remote_addr,
        )
