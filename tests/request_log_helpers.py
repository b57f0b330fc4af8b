"""What tests/test_request_log*.py read back from the request log (its rows, a key's
id), and the ``quiet_app`` fixture: every read logged, no flusher thread. Not a test
module: the modules that use the fixture import it by name, as ``quiet_app_fixture``
(so that no test's argument shadows an import).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask


def _rows(app: Flask, secret: str | None = None) -> list[Any]:
    """Every logged request (of *secret*'s key), oldest first, detached."""
    from example_app import apikeys, db

    Request = apikeys.models.APIKeyRequest
    with app.app_context():
        stmt = sa.select(Request).order_by(Request.id)
        if secret is not None:
            stmt = stmt.where(Request.key_id == apikeys.service.verifier.find_by_secret(secret).id)
        rows = list(db.session.scalars(stmt))
        db.session.expunge_all()
        return rows


def _key_id(app: Flask, secret: str) -> int:
    from example_app import apikeys

    with app.app_context():
        return int(apikeys.service.verifier.find_by_secret(secret).id)


@pytest.fixture(name="quiet_app")
def quiet_app_fixture(app: Flask) -> Flask:
    """The example app with every read logged and no flusher thread: tests flush."""
    app.config.update(APIKEYS_USAGE_FLUSH_INTERVAL=0, APIKEYS_REQUEST_LOG_READ_SAMPLE=1)
    return app
