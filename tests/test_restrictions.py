"""Restrictions an admin puts on a key bind its owner; permissions that govern keys
are not a key's to hold (an admin's key is not an admin key)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_apikeys import RequestRefused
from tests.conftest import bearer


@pytest.fixture
def acme(app: Flask) -> Iterator[Any]:
    """An app context with Alice (admin of Acme), Bob (member) and the service."""
    from example_app import apikeys, db
    from example_app.models import User

    with app.app_context():

        class Acme:
            service = apikeys.service
            alice = db.session.scalar(sa.select(User).where(User.email == "alice@acme.test"))
            bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))

        yield Acme


def _events(acme: Any, key: Any) -> list[tuple[str, Any]]:
    return [(e.event, e.actor_id) for e in acme.service.queries.events(key)]


def test_an_owner_cannot_widen_or_clear_an_allowlist_an_admin_set(acme: Any) -> None:
    service, alice, bob = acme.service, acme.alice, acme.bob
    key = service.keys.issue(bob, "ci", ["client.read"], actor=bob).key
    service.restrictions.set_ip_allowlist(key, ["203.0.113.0/24"], actor=alice)
    assert service.restrictions.allowlist_binds_owner(key)
    for wider in (None, [], ["0.0.0.0/0"], ["203.0.113.0/24", "198.51.100.7"], ["::/0"]):
        with pytest.raises(RequestRefused, match="administrator"):
            service.restrictions.set_ip_allowlist(key, wider, actor=bob)
    assert key.ip_allowlist == ["203.0.113.0/24"]

    service.restrictions.set_ip_allowlist(key, ["203.0.113.8/29"], actor=bob)  # narrower: allowed
    assert key.ip_allowlist == ["203.0.113.8/29"]
    with pytest.raises(RequestRefused):  # and it still binds: no way back up
        service.restrictions.set_ip_allowlist(key, ["203.0.113.0/24"], actor=bob)
    service.restrictions.set_ip_allowlist(key, None, actor=alice)  # the admin may lift it
    assert key.ip_allowlist is None
    events = _events(acme, key)
    assert events.count(("ip_allowlist_changed", alice.id)) == 2
    assert events.count(("ip_allowlist_changed", bob.id)) == 1


def test_an_owner_may_change_an_allowlist_they_set_themselves(acme: Any) -> None:
    service, bob = acme.service, acme.bob
    key = service.keys.issue(bob, "ci", ["client.read"], actor=bob, ip_allowlist=["10.0.0.1"]).key
    assert not service.restrictions.allowlist_binds_owner(key)
    service.restrictions.set_ip_allowlist(key, ["10.0.0.0/8", "192.0.2.1"], actor=bob)
    service.restrictions.set_ip_allowlist(key, None, actor=bob)
    assert key.ip_allowlist is None


def test_an_operators_allowlist_binds_the_owner_too(acme: Any) -> None:
    service, bob = acme.service, acme.bob
    key = service.keys.issue(bob, "ci", ["client.read"], actor=bob).key
    service.restrictions.set_ip_allowlist(key, ["192.0.2.0/24"])  # the CLI: no actor
    with pytest.raises(RequestRefused):
        service.restrictions.set_ip_allowlist(key, None, actor=bob)


def test_a_rotation_keeps_who_set_the_restrictions(acme: Any) -> None:
    service, alice, bob = acme.service, acme.alice, acme.bob
    key = service.keys.issue(bob, "ci", ["client.read"], actor=bob).key
    service.restrictions.set_ip_allowlist(key, ["203.0.113.0/24"], actor=alice)
    service.restrictions.set_rate_limit(key, "10/minute", actor=alice)
    new = service.keys.rotate(key, actor=bob).key
    assert new.ip_allowlist == ["203.0.113.0/24"] and new.rate_limit == "10/minute"
    assert new.rate_limit_set_by_id == alice.id
    with pytest.raises(RequestRefused):
        service.restrictions.set_ip_allowlist(new, None, actor=bob)


def test_only_admins_change_rate_limits_and_who_did_is_recorded(acme: Any) -> None:
    service, alice, bob = acme.service, acme.alice, acme.bob
    key = service.keys.issue(bob, "ci", ["client.read"], actor=bob).key
    with pytest.raises(RequestRefused, match=r"api_key\.manage"):
        service.restrictions.set_rate_limit(key, "1000/second", actor=bob)
    service.restrictions.set_rate_limit(key, "5/minute", actor=alice)
    assert key.rate_limit_set_by_id == alice.id
    with pytest.raises(RequestRefused):
        service.restrictions.set_rate_limit(key, None, actor=bob)
    assert key.rate_limit == "5/minute"


def test_full_access_never_includes_the_permissions_that_govern_keys(app: Flask, acme: Any) -> None:
    service, alice = acme.service, acme.alice
    assert {"api_key.create", "api_key.manage"} <= service.context.permissions_of(alice, 1)
    secret = service.keys.issue(alice, "admin's key", full_access=True, actor=alice).secret
    scopes = set(app.test_client().get("/v1/me/permissions", headers=bearer(secret)).json["scopes"])
    assert scopes and not any(scope.startswith("api_key.") for scope in scopes)
    assert "invoice.write" in scopes
    assert not {"api_key.create", "api_key.manage"} & service.context.grantable_permissions(
        alice, 1
    )


def test_sensitive_permissions_cannot_be_chosen_unless_the_host_opts_in(app: Flask) -> None:
    from example_app import apikeys, db
    from example_app.models import Membership, User

    app.config["APIKEYS_PERMISSIONS"] = {
        **app.config["APIKEYS_PERMISSIONS"],
        "api_key.introspect": "Check other keys",
        "billing.admin": "Change the plan",
    }
    app.config["APIKEYS_SENSITIVE_PERMISSIONS"] = ["billing.admin"]
    apikeys.refresh(app)
    with app.app_context():
        alice = db.session.scalar(sa.select(User).where(User.email == "alice@acme.test"))
        membership = db.session.scalar(sa.select(Membership).where(Membership.user == alice))
        membership.permissions += " api_key.introspect billing.admin"
        db.session.commit()
        for scope in ("api_key.introspect", "billing.admin"):
            with pytest.raises(RequestRefused, match="cannot be put on a key"):
                apikeys.service.keys.issue(alice, "x", [scope, "invoice.read"], actor=alice)
        with pytest.raises(RequestRefused):  # not even registered for keys
            apikeys.service.keys.issue(alice, "x", ["api_key.manage"], actor=alice)

    app.config["APIKEYS_GRANTABLE_SENSITIVE_PERMISSIONS"] = ["api_key.introspect"]
    apikeys.refresh(app)
    with app.app_context():
        alice = db.session.scalar(sa.select(User).where(User.email == "alice@acme.test"))
        chosen = apikeys.service.keys.issue(alice, "gateway", ["api_key.introspect"], actor=alice)
        full = apikeys.service.keys.issue(alice, "full", full_access=True, actor=alice)
        secrets = chosen.secret, full.secret
    client = app.test_client()
    chosen_scopes = client.get("/v1/me/permissions", headers=bearer(secrets[0])).json["scopes"]
    full_scopes = client.get("/v1/me/permissions", headers=bearer(secrets[1])).json["scopes"]
    assert chosen_scopes == ["api_key.introspect"]
    assert "api_key.introspect" not in full_scopes and "billing.admin" not in full_scopes
