"""The example app plus one route that reports its process's connection pool.

Served by the server-model tests (``test_server_models.py``) under each WSGI server;
``GET /_test/pool`` touches no database, so it reads the pool as the load left it.
``GET /_test/key`` is a key check and nothing else (test_dropped_connections.py).
"""

from __future__ import annotations

import os

from flask import Flask

from example_app import create_app, db
from flask_apikeys import current_key, require_key


def make_app() -> Flask:
    app = create_app()

    @app.get("/_test/pool")
    def pool() -> dict[str, int]:
        return {"pid": os.getpid(), "checked_out": db.engine.pool.checkedout()}  # type: ignore[attr-defined]

    @app.get("/_test/key")
    @require_key()
    def key_only() -> dict[str, str]:
        """The lookup is this request's only query."""
        return {"key": current_key.display_prefix}

    return app


app = make_app()
