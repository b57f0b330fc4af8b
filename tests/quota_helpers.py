"""What the quota tests share: a settable clock, a key of Bob's with a quota, a call."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import bearer

DOWN = "redis://127.0.0.1:9/0"  # nothing listens on the discard port


class Clock:
    """The service's clock, set by the test."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.now = dt.datetime.now(dt.UTC)

    def set(self, moment: dt.datetime) -> None:
        self.now = moment
        self.app.extensions["apikeys"].hot_path(self.app).service.context.clock = lambda: self.now


def issue_key(app: Flask, quota: str | None, *, refill: str | None = None, **kwargs: Any) -> Any:
    """A key of Bob's (client.read) with *quota*; returns (secret, key id, display prefix)."""
    from example_app import apikeys, db
    from example_app.models import User

    with app.app_context():
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        issued = apikeys.service.keys.issue(bob, "quota test", ["client.read"], **kwargs)
        if quota is not None:
            apikeys.service.quotas.set_quota(issued.key, quota, refill=refill)
        return issued.secret, issued.key.id, issued.key.display_prefix


def quota_usage_of(app: Flask, key_id: int) -> Any:
    from example_app import apikeys

    with app.app_context():
        service = apikeys.service
        return service.quotas.quota_usage(service.queries.get_key(key_id))


def get_clients(client: FlaskClient, secret: str) -> Any:
    return client.get("/v1/clients", headers=bearer(secret))
