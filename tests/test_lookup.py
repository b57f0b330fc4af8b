"""The hot-path lookup: objects reused only while their rows are unchanged."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys import parse_key
from tests.conftest import bearer
from tests.statements import lookups, recorded_statements


def _engine(app: Flask) -> sa.Engine:
    from example_app import db

    with app.app_context():
        return db.engine


def test_each_request_is_one_select_and_a_change_is_seen_at_once(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    from example_app import apikeys, db
    from example_app.models import User

    secret = make_key("bob@acme.test", ["client.read"])
    with recorded_statements() as statements:
        for _ in range(5):
            assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    found = lookups(statements)
    if _engine(app).dialect.name == "sqlite":
        assert len(found) == 1  # the first request; then SQLite's data version is unchanged
    else:
        assert len(found) == 5  # one per request, the first one included

    # A demotion (a membership row, loaded with the owner) is seen on the next request.
    with app.app_context():
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        bob.memberships[0].permissions = "invoice.read"
        db.session.commit()
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 403

    # So is a revocation, committed elsewhere.
    with app.app_context():
        key = apikeys.service.get_by_display_prefix(parse_key(secret).display_prefix)
        apikeys.service.revoke(key)
    response = client.get("/v1/clients", headers=bearer(secret))
    assert response.status_code == 401
    assert response.json["error"] == "revoked_api_key"


def test_the_key_and_owner_belong_to_the_requests_session(app: Flask, make_key: Any) -> None:
    """A view may change current_key.key through the service: it must be persisted."""
    from example_app import apikeys, db
    from flask_apikeys import current_key, require_key

    @app.post("/v1/test-revoke-self")
    @require_key()
    def revoke_self() -> Any:
        assert current_key.key in db.session
        assert current_key.owner in db.session
        apikeys.service.revoke(current_key.key, reason="self")
        return {"ok": True}

    client = app.test_client()
    secret = make_key("bob@acme.test", ["client.read"])
    for _ in range(2):  # the second request reuses the objects of the first
        assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    assert client.post("/v1/test-revoke-self", headers=bearer(secret)).status_code == 200
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 401
    with app.app_context():
        key = apikeys.service.get_by_display_prefix(parse_key(secret).display_prefix)
        assert key.revoked_reason == "self"


def test_the_plain_orm_lookup_can_be_chosen(app: Flask, client: FlaskClient, make_key: Any) -> None:
    app.config["APIKEYS_FAST_LOOKUP"] = False
    secret = make_key("bob@acme.test", ["client.read"])
    with recorded_statements() as statements:
        for _ in range(3):
            assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    assert len(lookups(statements)) == 3


def test_everything_loaded_with_a_reused_owner_is_attached(app: Flask, make_key: Any) -> None:
    """A view may lazy-load from the owner's eagerly loaded objects on every request."""
    from example_app import db
    from flask_apikeys import current_key, require_key

    @app.get("/v1/test-memberships")
    @require_key()
    def memberships() -> Any:
        membership = current_key.owner.memberships[0]
        assert membership in db.session
        return {"user": membership.user.email, "org": membership.organization.name}

    client = app.test_client()
    secret = make_key("bob@acme.test", ["client.read"])
    for _ in range(3):  # the later requests reuse the objects of the first
        response = client.get("/v1/test-memberships", headers=bearer(secret))
        assert response.status_code == 200, response.text
        assert response.json == {"user": "bob@acme.test", "org": "Acme"}


def test_a_view_that_needs_only_the_scopes_never_opens_a_session(app: Flask, make_key: Any) -> None:
    """Reused objects stay detached until a view asks for ``.key`` or ``.owner``."""
    from example_app import db
    from flask_apikeys import current_key, require_key

    @app.get("/v1/test-scopes-only")
    @require_key(scope="client.read")
    def scopes_only() -> Any:
        opened = db.session.registry.has()
        return {"scopes": sorted(current_key.scopes), "id": current_key.id, "opened": opened}

    @app.get("/v1/test-owner")
    @require_key(scope="client.read")
    def owner() -> Any:
        email = current_key.owner.email
        return {"email": email, "attached": current_key.owner in db.session}

    client = app.test_client()
    secret = make_key("bob@acme.test", ["client.read"])
    client.get("/v1/test-scopes-only", headers=bearer(secret))  # the first one loads
    for _ in range(2):
        response = client.get("/v1/test-scopes-only", headers=bearer(secret))
        assert response.status_code == 200
        assert response.json["scopes"] == ["client.read"]
        assert response.json["opened"] is False
    response = client.get("/v1/test-owner", headers=bearer(secret))
    assert response.json == {"email": "bob@acme.test", "attached": True}


def test_a_permissions_loader_that_lazy_loads_still_works(app: Flask, make_key: Any) -> None:
    """A loader reading a relationship not loaded with the owner gets attached objects."""
    from sqlalchemy.orm import relationship

    from example_app import apikeys
    from example_app.models import Organization, User

    mapper = sa.inspect(User)
    if "test_lazy_organizations" not in mapper.relationships:
        mapper.add_property(
            "test_lazy_organizations",
            relationship(Organization, secondary="memberships", lazy="select", viewonly=True),
        )
    original = apikeys._permissions_loader
    assert original is not None
    seen: list[set[str]] = []

    def lazy_loader(user: Any, organization_id: Any) -> Any:
        seen.append({org.name for org in user.test_lazy_organizations})  # a lazy load
        return original(user, organization_id)

    apikeys.permissions_loader(lazy_loader)
    try:
        client = app.test_client()
        secret = make_key("bob@acme.test", ["client.read"])
        statuses = [client.get("/v1/clients", headers=bearer(secret)).status_code for _ in range(3)]
    finally:
        apikeys.permissions_loader(original)
    assert statuses == [200, 200, 200]
    assert seen and all(names == {"Acme"} for names in seen)
