"""The example app plus a bare route, for benchmarks only.

``gunicorn 'benchmarks.app:create_app()'`` serves the example app's protected routes
and ``GET /v1/ping``, an unauthenticated route of the same app that does nothing but
answer JSON: the baseline the protected route is compared with. ``GET /v1/ping/key``
is the same behind ``require_key``, to measure the key check without a view's work.
``GET /v1/ping/select1`` is the bare route plus one ``SELECT 1`` on a pooled connection
through SQLAlchemy: the floor of any check that asks the database on every request
through public APIs. ``GET /v1/ping/peer`` is the bare route behind the usual way of
other Flask extensions and tutorials (Flask-HTTPAuth's ``verify_token``: the key by its
hash through the ORM, then ``key.owner``), to compare with.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from flask_httpauth import HTTPTokenAuth

from example_app import apikeys, db
from example_app import create_app as create_example_app
from flask_apikeys import require_key
from flask_apikeys.db.models import utcnow
from flask_apikeys.keys.format import hash_secret


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = create_example_app(config)

    @app.get("/v1/ping")
    def ping() -> ResponseReturnValue:
        return jsonify(ok=True)

    @app.get("/v1/ping/key")
    @require_key(scope="invoice.read")
    def ping_with_key() -> ResponseReturnValue:
        """The bare route behind a key: the ratio then measures the key check alone."""
        return jsonify(ok=True)

    peer = _peer_style_auth()

    @app.get("/v1/ping/peer")
    @peer.login_required
    def ping_with_peer_style_key() -> ResponseReturnValue:
        """The bare route behind the peers' style of key check, for comparison."""
        return jsonify(ok=True)

    select_one = _SelectOne()

    @app.get("/v1/ping/select1")
    def ping_with_select_one() -> ResponseReturnValue:
        """The bare route plus one round trip to the database and nothing else."""
        select_one()
        return jsonify(ok=True)

    return app


class _SelectOne:
    """``SELECT 1`` on a connection borrowed from the app's pool and given back, in
    autocommit mode: one round trip through SQLAlchemy's public API, as the key lookup
    makes it, and nothing else."""

    def __init__(self) -> None:
        self._engine: Any = None

    def __call__(self) -> None:
        if self._engine is None:
            self._engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        with self._engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1").all()


def _peer_style_auth() -> HTTPTokenAuth:
    """Flask-HTTPAuth's token auth as its documentation and most tutorials write it: the
    key by its hash through the ORM session, then its owner (a lazy load)."""
    auth = HTTPTokenAuth(scheme="Bearer")

    @auth.verify_token
    def verify_token(token: str) -> Any:
        APIKey = apikeys.models.APIKey
        key = db.session.scalar(sa.select(APIKey).where(APIKey.key_hash == hash_secret(token)))
        if key is None or key.status_at(utcnow()) != "active":
            return None
        if "invoice.read" not in key.scopes:
            return None
        owner = key.owner
        return owner if owner.is_active else None

    return auth
