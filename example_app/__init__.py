"""A small multi-tenant invoicing app that shows every flask-apikeys feature.

Run it::

    flask --app example_app seed
    flask --app example_app run

``DATABASE_URL`` picks the database (default: SQLite in the instance folder); any
other setting, ``APIKEYS_*`` included, can come from ``FLASK_``-prefixed environment
variables, e.g. ``FLASK_APIKEYS_MAX_LIFETIME=365``.
"""

from __future__ import annotations

import hmac
import os
import secrets
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask_login import LoginManager
from flask_migrate import Migrate
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_apikeys import APIKeys

from . import hardening, leaks, notifications, plans
from .models import KEY_PERMISSIONS, Client, Membership, Organization, User, db

apikeys = APIKeys(db=db, user_model=User, organization_model=Organization)
login_manager = LoginManager()
login_manager.login_view = "web.login"
login_manager.login_message = "Sign in to manage your API keys."
# The schema's history (example_app/migrations): `flask --app example_app db upgrade`.
# Batch mode lets ALTERs work on SQLite, which rebuilds a table to change it.
migrate = Migrate(directory=str(Path(__file__).parent / "migrations"), render_as_batch=True)


@apikeys.permissions_query
def permissions_of(owner_id: Any, organization_id: Any) -> Any:
    """What a key's owner holds in the key's organization (the membership's words,
    ``User.permissions_in`` in SQL), read in the key check's own SELECT."""
    return (
        sa.select(Membership.permissions)
        .where(Membership.user_id == owner_id, Membership.organization_id == organization_id)
        .scalar_subquery()
    )


# A deactivated user's keys stop at once (User.is_active is a Python property of it).
apikeys.declare_permissions(owner_active=User.active)


@apikeys.organization_loader
def organizations_of(user: User) -> Iterable[Organization]:
    return [membership.organization for membership in user.memberships]


# Plans (example_app/plans.py): Free organizations get no keys, Team ones no custom scopes.
apikeys.creation_policy(plans.creation_policy)


@apikeys.resource_loader("client", label="Clients")
def clients_of(user: User, organization_id: int | None) -> Iterable[tuple[int, str]]:
    """The clients a key of *user* in *organization_id* may be limited to (docs/resources.md)."""
    if organization_id is None or not user.permissions_in(organization_id):
        return []
    query = (
        sa.select(Client.id, Client.name)
        .where(Client.organization_id == organization_id)
        .order_by(Client.name, Client.id)
    )
    return [(row.id, row.name) for row in db.session.execute(query)]


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The session's ``"<id>:<session token>"`` (``User.get_id``) while the token is
    current: signing out rotates it, so an older cookie names nobody."""
    pk, _, token = user_id.partition(":")
    if not (pk.isascii() and pk.isdigit() and len(pk) <= 18 and token):
        return None
    user = db.session.get(User, int(pk))
    if user is None or not user.active:
        return None
    if not hmac.compare_digest(user.session_token.encode(), token.encode()):
        return None
    return user


# On key-authenticated requests, current_user is the key's owner.
login_manager.request_loader(apikeys.load_user_from_request)


#: Engine options for a database server (PostgreSQL, MySQL), not for SQLite.
PRODUCTION_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True, "pool_recycle": 1800}


def _secret_key(app: Flask) -> str:
    """A stable secret for sessions, shared by every worker using this instance folder."""
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _sqlite_write_ahead_log(dbapi_connection: Any, _record: Any) -> None:
    """SQLite in WAL mode, as several workers need it: readers (the key check among
    them) never wait for the usage flusher's writes, and reads take no file lock."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA journal_mode=WAL")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    database_url = os.environ.get("DATABASE_URL") or (
        f"sqlite:///{Path(app.instance_path) / 'example.sqlite'}"
    )
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url,
        APIKEYS_PREFIX="fsk",
        APIKEYS_PERMISSIONS=KEY_PERMISSIONS,
        APIKEYS_BASE_TEMPLATE="base.html",
        APIKEYS_API_BASE_URL="/v1/me/permissions",
        APIKEYS_MCP_URL="/mcp",
        APIKEYS_MCP_SERVER_NAME="ledgerly",
        # Offboarding links here to take away a member's create permission (members.py).
        APIKEYS_MEMBER_PERMISSIONS_URL="/settings/members/{user_id}?org={organization_id}",
    )
    app.config.from_prefixed_env()
    app.config.update(config or {})
    if not str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite"):
        # A database server (docs/scaling.md): test a pooled connection before lending it
        # (a restarted server or a dropped idle connection is then one retry, not a 500),
        # and replace connections before a proxy or the server closes them as idle.
        # Options set in the config (FLASK_SQLALCHEMY_ENGINE_OPTIONS) win.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **PRODUCTION_ENGINE_OPTIONS,
            **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
        }
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app)
    if app.config.get("PROXY_FIX_X_FOR"):
        # Behind N trusted proxies (FLASK_PROXY_FIX_X_FOR=N), request.remote_addr is the
        # client's address: what the IP allowlist and the failed-auth throttle use.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=int(app.config["PROXY_FIX_X_FOR"])
        )

    db.init_app(app)
    with app.app_context():
        sa.event.listen(db.engine, "connect", _sqlite_write_ahead_log)
    apikeys.init_app(app)
    migrate.init_app(app, db)
    login_manager.init_app(app)

    from flask_apikeys.web.pages import create_blueprint

    from .api import api
    from .cli import register_cli
    from .mcp_server import mount_mcp
    from .members import members
    from .openapi import docs as openapi_docs
    from .web import web

    app.register_blueprint(api)
    app.register_blueprint(web)
    app.register_blueprint(create_blueprint(), url_prefix="/settings/api-keys")
    app.register_blueprint(openapi_docs)  # /openapi.json and Swagger UI at /docs
    app.register_blueprint(plans.plans)  # /plans, where "Upgrade" leads
    app.register_blueprint(members)  # a member's permissions, where offboarding links
    register_cli(app)
    mount_mcp(app)  # the MCP server at /mcp (docs/mcp.md)
    leaks.init_app(app)  # POST /security/github-secret-scanning; e-mails (docs/leaks.md)
    notifications.init_app(app)  # e-mail owners before their keys expire
    hardening.init_app(app)  # bad input is a 4xx; error pages; security headers
    return app


__all__ = ["Membership", "Organization", "User", "apikeys", "create_app", "db"]
