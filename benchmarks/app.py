"""The example app plus a bare route, for benchmarks only.

``gunicorn 'benchmarks.app:create_app()'`` serves the example app's protected routes
and ``GET /v1/ping``, an unauthenticated route of the same app that does nothing but
answer JSON: the baseline the protected route is compared with. ``GET /v1/ping/key``
is the same behind ``require_key``, to measure the key check without a view's work.
``GET /v1/ping/select1`` is the bare route plus one ``SELECT 1`` on the database, sent
as cheaply as the driver allows: the floor of any check that asks the database on
every request.
"""

from __future__ import annotations

import threading
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
    """``SELECT 1`` on a connection of this thread's own, in autocommit mode; on psycopg
    prepared once and sent through libpq, as the key lookup is."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __call__(self) -> None:
        run = getattr(self._local, "run", None)
        if run is None:
            run = self._local.run = self._connect()
        run()

    def _connect(self) -> Any:
        raw = db.engine.raw_connection()
        self._local.raw = raw  # kept checked out for the thread's lifetime
        connection = raw.driver_connection
        pgconn = getattr(connection, "pgconn", None)
        if pgconn is None:
            connection.isolation_level = None  # sqlite3: autocommit
            cursor = connection.cursor()
            return lambda: cursor.execute("SELECT 1").fetchall()
        connection.autocommit = True
        pgconn.prepare(b"benchmark_select_one", b"SELECT 1")
        return lambda: pgconn.exec_prepared(b"benchmark_select_one", None)
