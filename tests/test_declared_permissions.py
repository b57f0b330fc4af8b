"""The owners' permissions declared as SQL (the example app's fast path) against the
Python loader (the simple path): the same answer for every user in every organization,
and a demotion or a deactivation refuses the very next request either way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys.keys.format import generate_key
from tests.conftest import bearer, python_permissions
from tests.statements import lookups, recorded_statements


def _python_loader(user: Any, organization_id: Any) -> set[str]:
    return set(user.permissions_in(organization_id))


@pytest.fixture
def everyone(app: Flask) -> Iterator[list[tuple[str, Any, str]]]:
    """(email, organization id, secret) for every seeded user in every organization (and
    none), each a full-access key written as a row; bob also belongs to Globex."""
    from example_app import apikeys, db
    from example_app.models import Membership, Organization, User

    made = []
    with app.app_context():
        globex = db.session.scalar(sa.select(Organization).where(Organization.name == "Globex"))
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        db.session.add(Membership(user_id=bob.id, organization_id=globex.id, permissions="x.y"))
        db.session.commit()
        organizations = [*db.session.scalars(sa.select(Organization.id)), None]
        context = apikeys.service.context
        for user in db.session.scalars(sa.select(User)).unique():
            for organization_id in organizations:
                for full_access in (True, False):
                    generated = generate_key(context.prefix)
                    db.session.add(
                        apikeys.models.APIKey(
                            name="every",
                            display_prefix=generated.display_prefix,
                            key_hash=context.hash(generated.secret),
                            scopes=[] if full_access else ["invoice.read", "client.write", "x.y"],
                            full_access=full_access,
                            owner_id=user.id,
                            organization_id=organization_id,
                        )
                    )
                    made.append((user.email, organization_id, generated.secret))
        db.session.commit()
    yield made


def test_declared_and_python_loaders_agree_for_every_user_and_organization(
    app: Flask, everyone: list[tuple[str, Any, str]]
) -> None:
    from example_app import apikeys, db
    from example_app.models import User

    with app.app_context():
        context = apikeys.service.context
        for user in db.session.scalars(sa.select(User)).unique():
            for organization_id in {org for _, org, _ in everyone}:
                declared = context.permissions_of(user, organization_id)  # the SQL, run alone
                assert declared == _python_loader(user, organization_id)
        declared_scopes = [apikeys.service.verifier.verify(s).scopes for _, _, s in everyone]
        db.session.remove()
    with python_permissions(apikeys, _python_loader), app.app_context():
        python_scopes = [apikeys.service.verifier.verify(s).scopes for _, _, s in everyone]
    assert declared_scopes == python_scopes
    assert any(declared_scopes) and not all(declared_scopes)  # some hold something, some not


def test_the_declared_permissions_are_read_in_the_lookups_select(
    client: FlaskClient, make_key: Any
) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    with recorded_statements() as statements:
        assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    (select,) = lookups(statements)
    assert "memberships.permissions" in select and "users.active" in select


@pytest.mark.parametrize("path", ["declared", "python"])
def test_a_demotion_or_a_deactivation_refuses_the_very_next_request(
    app: Flask, make_key: Any, path: str
) -> None:
    from example_app import apikeys, db
    from example_app.models import User

    client = app.test_client()
    demoted = make_key("bob@acme.test", ["client.read"])
    deactivated = make_key("alice@acme.test", ["client.read"])

    def bob_and_alice() -> tuple[int, int]:
        return (
            client.get("/v1/clients", headers=bearer(demoted)).status_code,
            client.get("/v1/clients", headers=bearer(deactivated)).status_code,
        )

    def change(email: str, **what: Any) -> None:
        with app.app_context():
            user = db.session.scalar(sa.select(User).where(User.email == email))
            if "permissions" in what:
                user.memberships[0].permissions = what["permissions"]
            if "active" in what:
                user.active = what["active"]
            db.session.commit()

    simple = python_permissions(apikeys, _python_loader) if path == "python" else nullcontext()
    with simple:
        assert bob_and_alice() == (200, 200)
        change("bob@acme.test", permissions="invoice.read")
        change("alice@acme.test", active=False)
        response = client.get("/v1/clients", headers=bearer(demoted))
        assert (response.status_code, response.json["error"]) == (403, "insufficient_scope")
        response = client.get("/v1/clients", headers=bearer(deactivated))
        assert (response.status_code, response.json["error"]) == (401, "inactive_user")
        change("bob@acme.test", permissions="client.read")
        change("alice@acme.test", active=True)
        assert bob_and_alice() == (200, 200)
