"""The ``APIKeys`` Flask extension: configuration, loaders and the service."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context

from . import config as _config
from . import signals
from .auth import is_key_request, load_user_from_request
from .models import Models, build_models
from .service import KeyService, VerifiedKey

__all__ = ["APIKeys"]

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
        self._organization_loader: Callable[[Any], Iterable[Any]] | None = None
        self._creation_policy: Callable[[Any, Any], str | None] | None = None
        self._permission_vocabulary: dict[str, str] = dict(permissions or {})
        #: Called with each verified key before the view runs; may raise an APIKeyError.
        self._request_checks: list[Callable[[VerifiedKey], None]] = []
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
        from .cli import apikeys_cli

        if "apikeys" not in app.cli.commands:
            app.cli.add_command(apikeys_cli)

    # -- loaders and hooks, as decorators --------------------------------------------

    def permissions_loader(self, func: F) -> F:
        """Register ``func(user, organization_id) -> iterable of permission names``.

        Called on every key-authenticated request, so make it cheap (one query or
        a cached lookup). ``organization_id`` is ``None`` for keys without one.
        """
        self._permissions_loader = func
        return func

    def organization_loader(self, func: F) -> F:
        """Register ``func(user) -> iterable of organizations``, each with ``id`` and ``name``."""
        self._organization_loader = func
        return func

    def creation_policy(self, func: F) -> F:
        """Register ``func(user, organization_id) -> str | None``: a message refuses creation."""
        self._creation_policy = func
        return func

    def register_permissions(self, permissions: Mapping[str, str]) -> None:
        """Add to the permission vocabulary keys can hold: ``{"invoice.read": "Read invoices"}``."""
        self._permission_vocabulary.update(permissions)

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
        """The :class:`KeyService` for the current app, over ``db.session``."""
        if self._permissions_loader is None:
            raise RuntimeError(
                "flask-apikeys needs a permissions loader: decorate a function "
                "with @apikeys.permissions_loader"
            )
        cfg = current_app.config
        vocabulary = self.permission_vocabulary()
        return KeyService(
            self.db.session,
            self.models,
            prefix=cfg["APIKEYS_PREFIX"],
            pepper=_config.as_pepper(cfg["APIKEYS_PEPPER"]),
            permissions=self._permissions_loader,
            organizations=self._organization_loader,
            create_permission=cfg["APIKEYS_CREATE_PERMISSION"],
            manage_permission=cfg["APIKEYS_MANAGE_PERMISSION"],
            known_permissions=vocabulary or None,
            max_lifetime=_config.as_lifetime(cfg["APIKEYS_MAX_LIFETIME"]),
            creation_policy=self._creation_policy,
            on_event=_send_signal,
        )

    # Flask-Login integration, re-exported for convenience.
    load_user_from_request = staticmethod(load_user_from_request)
    is_key_request = staticmethod(is_key_request)


def _send_signal(event: str, key: Any, **data: Any) -> None:
    if has_app_context():
        sender = current_app._get_current_object()  # type: ignore[attr-defined]
        signals.BY_EVENT[event].send(sender, key=key, **data)
