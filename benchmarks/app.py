"""The example app plus a bare route, for benchmarks only.

``gunicorn 'benchmarks.app:create_app()'`` serves the example app's protected routes
and ``GET /v1/ping``, an unauthenticated route of the same app that does nothing but
answer JSON: the baseline the protected route is compared with. ``GET /v1/ping/key``
is the same behind ``require_key``, to measure the key check without a view's work.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

from example_app import create_app as create_example_app
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

    return app
