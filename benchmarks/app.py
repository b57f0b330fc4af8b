"""The example app plus a bare route, for benchmarks only.

``gunicorn 'benchmarks.app:create_app()'`` serves the example app's protected routes
and ``GET /v1/ping``, an unauthenticated route of the same app that does nothing but
answer JSON: the baseline the protected route is compared with. ``GET /v1/ping/key``
is the same behind ``require_key``, to measure the key check without a view's work.
``GET /v1/ping/select1`` is the bare route plus one ``SELECT 1`` on a pooled connection
through SQLAlchemy: the floor of any check that asks the database on every request
through public APIs.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

from example_app import create_app as create_example_app
from example_app import db
from flask_apikeys import require_key


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
