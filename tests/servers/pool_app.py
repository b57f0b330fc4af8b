"""The example app plus one route that reports its process's connection pool.

Served by the server-model tests (``test_server_models.py``) under each WSGI server;
``GET /_test/pool`` touches no database, so it reads the pool as the load left it.
"""

from __future__ import annotations

import os

from flask import Flask

from example_app import create_app, db


def make_app() -> Flask:
    app = create_app()

    @app.get("/_test/pool")
    def pool() -> dict[str, int]:
        return {"pid": os.getpid(), "checked_out": db.engine.pool.checkedout()}  # type: ignore[attr-defined]

    return app


app = make_app()
