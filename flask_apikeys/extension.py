"""The ``APIKeys`` Flask extension: configuration, loaders and the service."""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask, Response, current_app, has_app_context, request

from .db.schema import Models, build_models
from .service.facade import KeyService
from .service.pipeline import OwnerSQL
from .service.ratelimit import RateLimits
from .service.requestlog import RequestLogBuffer
from .service.resources import ResourceKind
from .service.usage import UsageBuffer
from .web import config as _config
from .web import signals
from .web.authenticate import RATE_LIMIT_ATTR, is_key_request, load_user_from_request
from .web.expiry_schedule import schedule_expiry_warnings
from .web.requestlog import log_key_requests, make_request_log
from .web.state import HotPath

__all__ = ["APIKeys"]

logger = logging.getLogger("flask_apikeys")

F = TypeVar("F", bound=Callable[..., Any])


class APIKeys:
    """API keys for a Flask app.

    ::

        db = SQLAlchemy(app)
        apikeys = APIKeys(app, db=db, user_model=User)

        @apikeys.permissions_loader
        def permissions(user, organization_id):
            return user.permissions

    The models are made when *db* and *user_model* are given (here or in
    :meth:`setup_models`), so that ``db.create_all()`` and Alembic see the tables.
    One instance serves any number of apps; per-app state lives in
    ``app.extensions["apikeys"]``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: Any = None,
        user_model: Any = None,
        organization_model: Any = None,
        key_mixins: tuple[type, ...] = (),
        table_prefix: str = "api_key",
        prefix: str | None = None,
        permissions: Mapping[str, str] | None = None,
    ) -> None:
        self.db = db
        self._models: Models | None = None
        self._prefix = prefix
        self._permissions_loader: Callable[[Any, Any], Iterable[str]] | None = None
        self._owner_sql = OwnerSQL()
        self._organization_loader: Callable[[Any], Iterable[Any]] | None = None
        self._creation_policy: Callable[[Any, Any], str | None] | None = None
        self._permission_vocabulary: dict[str, str] = dict(permissions or {})
        self._resource_kinds: dict[str, ResourceKind] = {}
        #: Per-app state (the service, usage buffer, rate limits), keyed by app.
        self._states: weakref.WeakKeyDictionary[Flask, HotPath] = weakref.WeakKeyDictionary()
        self._states_lock = threading.Lock()
        if db is not None and user_model is not None:
            self.setup_models(
                db,
                user_model,
                organization_model=organization_model,
                key_mixins=key_mixins,
                table_prefix=table_prefix,
            )
        if app is not None:
            self.init_app(app)

    # -- setup -------------------------------------------------------------------

    def setup_models(
        self,
        db: Any,
        user_model: Any,
        *,
        organization_model: Any = None,
        key_mixins: tuple[type, ...] = (),
        table_prefix: str = "api_key",
    ) -> Models:
        """Make the models on *db* (once), pointing at *user_model*."""
        if self._models is not None:
            raise RuntimeError("flask-apikeys models are already set up for this instance")
        self.db = db
        self._models = build_models(
            db,
            user_model,
            organization_model=organization_model,
            key_mixins=key_mixins,
            table_prefix=table_prefix,
        )
        return self._models

    def init_app(self, app: Flask) -> None:
        if "apikeys" in app.extensions:
            raise RuntimeError("flask-apikeys is already registered on this app")
        if self._models is None:
            raise RuntimeError(
                "flask-apikeys needs db= and user_model=: APIKeys(db=db, user_model=User)"
            )
        for name, value in _config.DEFAULTS.items():
            app.config.setdefault(name, value)
        if self._prefix is not None:
            app.config["APIKEYS_PREFIX"] = self._prefix
        app.extensions["apikeys"] = self
        app.after_request(_add_rate_limit_headers)
        log_key_requests(app)
        schedule_expiry_warnings(app)  # APIKEYS_EXPIRY_NOTIFY_INTERVAL; off by default
        from .cli import apikeys_cli

        if "apikeys" not in app.cli.commands:
            app.cli.add_command(apikeys_cli)

    # -- loaders and hooks, as decorators --------------------------------------------

    def permissions_loader(self, func: F) -> F:
        """Register ``func(user, organization_id) -> iterable of permission names``.

        Called per key-authenticated request with the owner, loaded in the key check's
        SELECT; what it reads beyond costs queries (the fast path declares them as SQL:
        :meth:`permissions_query`). ``organization_id`` is ``None`` for keys without one.
        """
        self._permissions_loader = func
        self._forget_apps()
        return func

    def declare_permissions(
        self,
        sql: Callable[[Any, Any], Any] | None = None,
        *,
        to_names: Callable[[Any], Iterable[str]] | None = None,
        owner_active: Any = None,
    ) -> None:
        """The fast path (docs/performance.md): users' permissions as SQL in the key check's
        SELECT. ``sql(owner_id, organization_id)``: a scalar expression correlated to the
        key; ``to_names(value)``: its value → names; *owner_active*: ``User.active``."""
        self._owner_sql = self._owner_sql.declared(sql, to_names, owner_active)
        self._forget_apps()

    def permissions_query(self, func: F | None = None, *, to_names: Any = None) -> Any:
        """``@apikeys.permissions_query`` (or ``(to_names=...)``): :meth:`declare_permissions`."""
        if func is None:
            return functools.partial(self.permissions_query, to_names=to_names)
        self.declare_permissions(func, to_names=to_names)
        return func

    def organization_loader(self, func: F) -> F:
        """Register ``func(user) -> iterable of organizations``, each with ``id`` and ``name``."""
        self._organization_loader = func
        self._forget_apps()
        return func

    def creation_policy(self, func: F) -> F:
        """Register ``func(user, organization_id) -> str | None``: a message refuses creation.

        A function taking a third argument, ``key``, also sees the key asked for (a
        :class:`~flask_apikeys.KeyDraft`, or ``None`` when a page asks whether the
        user may create keys at all); a :class:`~flask_apikeys.Refusal` adds a link.
        """
        self._creation_policy = func
        self._forget_apps()
        return func

    def resource_loader(self, kind: str, *, label: str | None = None) -> Callable[[F], F]:
        """Register ``func(user, organization_id) -> iterable of (id, label)`` (or of
        objects with ``id`` and ``name``): the resources of *kind* that *user* may limit
        a key to (docs/resources.md). *label* names them on the pages (``"Clients"``)."""

        def decorator(func: F) -> F:
            title = label or kind.replace("_", " ").capitalize() + "s"
            self._resource_kinds[kind] = ResourceKind(kind, title, func)
            self._forget_apps()
            return func

        return decorator

    def register_permissions(self, permissions: Mapping[str, str]) -> None:
        """Add to the permission vocabulary keys can hold: ``{"invoice.read": "Read invoices"}``."""
        self._permission_vocabulary.update(permissions)
        self._forget_apps()

    # -- what the rest of the package uses ---------------------------------------------

    @property
    def models(self) -> Models:
        if self._models is None:
            raise RuntimeError("flask-apikeys models are not set up")
        return self._models

    def permission_vocabulary(self) -> dict[str, str]:
        """Registered permissions and their descriptions (config, then registered)."""
        vocabulary = dict(current_app.config.get("APIKEYS_PERMISSIONS") or {})
        vocabulary.update(self._permission_vocabulary)
        return vocabulary

    @property
    def service(self) -> KeyService:
        """The :class:`KeyService` of the current app, over ``db.session``."""
        return self.hot_path(current_app._get_current_object()).service  # type: ignore[attr-defined]

    def hot_path(self, app: Flask) -> HotPath:
        """What the per-request key check needs of *app*, made from its configuration
        the first time it is asked for (the first request, usually) and kept.

        Change ``APIKEYS_*`` settings before the app serves; registering a loader or
        permissions afterwards makes it again.
        """
        hot = self._states.get(app)
        if hot is None:
            with self._states_lock:
                hot = self._states.get(app)
                if hot is None:
                    hot = self._states[app] = self._make_hot_path(app)
        return hot

    def _make_hot_path(self, app: Flask) -> HotPath:
        if self._permissions_loader is None and self._owner_sql.permissions is None:
            raise RuntimeError(
                "flask-apikeys needs a permissions loader: decorate a function with "
                "@apikeys.permissions_loader (or declare them: @apikeys.permissions_query)"
            )
        cfg = app.config
        with app.app_context():
            vocabulary = self.permission_vocabulary()
            engine = self.db.session.get_bind(mapper=sa.inspect(self.models.APIKey))
        service = KeyService(
            self.db.session,
            self.models,
            prefix=cfg["APIKEYS_PREFIX"],
            pepper=_config.as_pepper(cfg["APIKEYS_PEPPER"]),
            permissions=self._permissions_loader,
            owner_sql=self._owner_sql,
            organizations=self._organization_loader,
            create_permission=cfg["APIKEYS_CREATE_PERMISSION"],
            manage_permission=cfg["APIKEYS_MANAGE_PERMISSION"],
            known_permissions=vocabulary or None,
            max_lifetime=_config.as_lifetime(cfg["APIKEYS_MAX_LIFETIME"]),
            creation_policy=self._creation_policy,
            on_event=_send_signal,
            sensitive_permissions=tuple(cfg["APIKEYS_SENSITIVE_PERMISSIONS"] or ()),
            grantable_sensitive_permissions=tuple(
                cfg["APIKEYS_GRANTABLE_SENSITIVE_PERMISSIONS"] or ()
            ),
            describe_user=_user_describer(cfg["APIKEYS_USER_LOOKUP_FIELD"]),
        )
        service.resources.resource_kinds = dict(self._resource_kinds)
        service.quotas.configure_quotas(
            timezone=cfg["APIKEYS_QUOTA_TIMEZONE"],
            storage_uri=cfg["APIKEYS_QUOTA_STORAGE_URI"] or None,
            key_prefix=cfg["APIKEYS_RATELIMIT_KEY_PREFIX"],
            fail_open=bool(cfg["APIKEYS_QUOTA_FAIL_OPEN"]),
            storage_options=cfg["APIKEYS_QUOTA_STORAGE_OPTIONS"],
        )
        rate_limits = RateLimits(
            cfg["APIKEYS_RATELIMIT_STORAGE_URI"] or "memory://",
            strategy=cfg["APIKEYS_RATELIMIT_STRATEGY"],
            default_limit=cfg["APIKEYS_DEFAULT_RATE_LIMIT"],
            failed_auth_limit=cfg["APIKEYS_FAILED_AUTH_LIMIT"],
            key_prefix=cfg["APIKEYS_RATELIMIT_KEY_PREFIX"],
            fail_open=bool(cfg["APIKEYS_RATELIMIT_FAIL_OPEN"]),
            storage_options=cfg["APIKEYS_RATELIMIT_STORAGE_OPTIONS"],
        )
        usage = None
        if cfg["APIKEYS_USAGE_TRACKING"]:
            usage = UsageBuffer(
                engine,
                self.models.APIKey.__table__,
                self.models.APIKeyUsageDay.__table__,
                interval=_config.as_seconds(
                    cfg["APIKEYS_USAGE_FLUSH_INTERVAL"], "APIKEYS_USAGE_FLUSH_INTERVAL"
                ),
                max_buffered=int(cfg["APIKEYS_USAGE_MAX_BUFFERED"]),
                last_used_resolution=_config.as_seconds(
                    cfg["APIKEYS_LAST_USED_RESOLUTION"], "APIKEYS_LAST_USED_RESOLUTION"
                ),
            )
        return HotPath(
            service=service,
            rate_limits=rate_limits,
            usage=usage,
            realm=cfg["APIKEYS_REALM"],
            prefix=cfg["APIKEYS_PREFIX"],
            bearer=bool(cfg["APIKEYS_BEARER"]),
            header=_environ_key(cfg["APIKEYS_HEADER"]) if cfg["APIKEYS_HEADER"] else None,
            query_param=cfg["APIKEYS_QUERY_PARAM"] or None,
            rate_limit_headers=bool(cfg["APIKEYS_RATELIMIT_HEADERS"]),
            audit_expired_use=bool(cfg["APIKEYS_AUDIT_EXPIRED_USE"]),
            request_log=make_request_log(cfg, engine, self.models),
        )

    def refresh(self, app: Flask) -> None:
        """Read *app*'s ``APIKEYS_*`` settings again at its next request (e.g. a test
        that changes them after the app served)."""
        with self._states_lock:
            self._states.pop(app, None)

    def _forget_apps(self) -> None:
        """Make every app's hot path again at its next use (a loader changed)."""
        with self._states_lock:
            self._states.clear()

    # -- usage and rate limits -------------------------------------------------------------

    def rate_limits(self, app: Flask | None = None) -> RateLimits:
        """The app's :class:`~flask_apikeys.ratelimit.RateLimits` (made from its config)."""
        return self.hot_path(app or current_app._get_current_object()).rate_limits  # type: ignore[attr-defined]

    def usage_buffer(self, app: Flask | None = None) -> UsageBuffer | None:
        """The app's usage buffer; ``None`` when tracking is off."""
        return self.hot_path(app or current_app._get_current_object()).usage  # type: ignore[attr-defined]

    def flush_usage(self, app: Flask | None = None) -> int:
        """Write the app's buffered usage (and its request log) now; return how many
        uses were written."""
        usage = self.usage_buffer(app)
        log = self.request_log(app)
        if log is not None:
            log.flush_quietly()
        return usage.flush() if usage is not None else 0

    def request_log(self, app: Flask | None = None) -> RequestLogBuffer | None:
        """The app's request-log buffer; ``None`` when ``APIKEYS_REQUEST_LOG`` is off."""
        return self.hot_path(app or current_app._get_current_object()).request_log  # type: ignore[attr-defined]

    def flush_request_log(self, app: Flask | None = None) -> int:
        """Write the app's buffered request log now; return how many requests were written."""
        log = self.request_log(app)
        return log.flush() if log is not None else 0

    def openapi_security_schemes(self, app: Flask | None = None) -> dict[str, dict[str, Any]]:
        """``components.securitySchemes`` for the keys (see :mod:`flask_apikeys.openapi`)."""
        from .contrib.openapi import security_schemes

        return security_schemes(app)

    # Flask-Login integration, re-exported for convenience.
    load_user_from_request = staticmethod(load_user_from_request)
    is_key_request = staticmethod(is_key_request)


def _environ_key(header: str) -> str:
    """Where a WSGI server puts request header *header* in the environ."""
    name = header.upper().replace("-", "_")
    return name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"


def _add_rate_limit_headers(response: Response) -> Response:
    decision = getattr(request, RATE_LIMIT_ATTR, None)
    if decision is not None:
        for name, value in decision.headers().items():
            response.headers.setdefault(name, value)
    return response


def _identity(user: Any) -> str:
    """A user's primary key as text (``1``, not the identity tuple ``(1,)``)."""
    identity = sa.inspect(user).identity or ()
    return ", ".join(str(part) for part in identity)


def _user_describer(field: str) -> Callable[[Any], str]:
    """Name a user by the CLI's lookup field (``email``) in messages for operators."""

    def describe(user: Any) -> str:
        return str(getattr(user, field, None) or f"User {_identity(user)}")

    return describe


def _send_signal(event: str, key: Any, **data: Any) -> None:
    actor = data.get("actor")
    if event == "leaked":  # reported by a scanner (or an operator), not done by anyone
        by = f"reported at {data['url']!r}" if data.get("url") else "reported"
    else:
        by = "by an operator" if actor is None else f"by user {_identity(actor)}"
    logger.info("API key %s %s %s", key.display_prefix, event, by)
    if has_app_context():
        sender = current_app._get_current_object()  # type: ignore[attr-defined]
        signals.BY_EVENT[event].send(sender, key=key, **data)
