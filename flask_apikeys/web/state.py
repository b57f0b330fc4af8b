"""An app's flask-apikeys state, as the web layer reads it.

The :class:`~flask_apikeys.APIKeys` extension (above this layer) keeps one per app in
``app.extensions["apikeys"]``; pages, the decorator and the endpoints reach it through
:func:`app_keys`, typed by :class:`AppKeys`, without importing the extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, cast

from flask import Flask, current_app

from ..service.facade import KeyService
from ..service.ratelimit import RateLimits
from ..service.requestlog import RequestLogBuffer
from ..service.usage import UsageBuffer

__all__ = ["AppKeys", "HotPath", "app_keys"]


@dataclass(frozen=True)
class HotPath:
    """An app's configuration as the per-request key check uses it."""

    service: KeyService
    rate_limits: RateLimits
    usage: UsageBuffer | None
    realm: str
    prefix: str
    bearer: bool
    header: str | None  # the environ key of the key header, e.g. ``HTTP_X_API_KEY``
    query_param: str | None
    rate_limit_headers: bool
    audit_expired_use: bool
    request_log: RequestLogBuffer | None = None


class AppKeys(Protocol):
    """What the web layer uses of the extension."""

    @property
    def service(self) -> KeyService: ...

    def hot_path(self, app: Flask) -> HotPath: ...

    def permission_vocabulary(self) -> dict[str, str]: ...

    def rate_limits(self, app: Flask | None = None) -> RateLimits: ...

    def usage_buffer(self, app: Flask | None = None) -> UsageBuffer | None: ...

    def request_log(self, app: Flask | None = None) -> RequestLogBuffer | None: ...


def app_keys(app: Flask | None = None) -> AppKeys:
    """The flask-apikeys state of *app* (default: the current app)."""
    extensions: dict[str, Any] = (app if app is not None else current_app).extensions
    try:
        return cast("AppKeys", extensions["apikeys"])
    except KeyError:
        raise RuntimeError(
            "flask-apikeys is not initialised on this app: call APIKeys(app) or init_app(app)."
        ) from None
