"""docs/architecture.md: its examples run as written, on the example app."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_apikeys import RequestRefused
from tests.docs_examples import run_example


def _user(email: str) -> Any:
    from example_app import db
    from example_app.models import User

    return db.session.scalars(sa.select(User).where(User.email == email)).unique().one()


def test_the_parts_example_issues_sets_a_quota_revokes_and_lists(app: Flask) -> None:
    with app.test_request_context():
        apikeys = app.extensions["apikeys"]
        bob, alice = _user("bob@acme.test"), _user("alice@acme.test")
        namespace = run_example(
            "architecture.md", "parts", {"apikeys": apikeys, "user": bob, "admin": alice}
        )
        key = namespace["issued"].key
        assert key.quota_limit == 5000 and key.revoked_reason == "left the team"
        assert namespace["issued"].secret.startswith(apikeys.service.context.prefix)
        events = [e.event for e in reversed(apikeys.service.queries.events(key))]
        assert events == ["created", "quota_changed", "quota_changed", "revoked"]


def test_the_extension_point_example_refuses_what_it_says(app: Flask) -> None:
    with app.test_request_context():
        apikeys = app.extensions["apikeys"]
        checks = apikeys.service.context.extensions.check_new_key
        before = list(checks)
        run_example("architecture.md", "extension-point", {"apikeys": apikeys})
        try:
            bob = _user("bob@acme.test")
            with pytest.raises(RequestRefused, match="must not mention secrets"):
                apikeys.service.keys.issue(bob, "Secret sauce", ["client.read"])
            assert apikeys.service.keys.issue(bob, "Sauce", ["client.read"]).key.id
        finally:
            checks[:] = before
