"""Organization policies: maximum lifetime, idle expiry, the permissions keys may hold.

Setting a policy (audited), what creation refuses, and what every request sees. The
policy page, the command line and the docs are in test_policy_admin.py.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify
from flask.testing import FlaskClient

from flask_apikeys import RequestRefused, current_key, require_key
from flask_apikeys.db.models import utcnow
from flask_apikeys.service.validation import parse_expiry
from tests.conftest import bearer
from tests.pages.conftest import Browser
from tests.policy_helpers import key_service, org_id_of, set_rules, user_named
from tests.statements import lookups, recorded_statements, version_checks, writes

# -- setting a policy -------------------------------------------------------------------


def test_an_admin_sets_a_policy_and_each_change_is_an_organization_event(app: Flask) -> None:
    with app.app_context():
        service, acme = key_service(), org_id_of("Acme")
        alice = user_named("alice@acme.test")
        policy = service.policies.set_policy(
            acme,
            max_lifetime_days=90,
            idle_expiry_days="30",
            allowed_permissions=["invoice.read", "client.read", "client.read"],
            actor=alice,
            ip="203.0.113.9",
        )
        assert policy is not None
        assert policy.rules() == {
            "max_lifetime_days": 90,
            "idle_expiry_days": 30,
            "allowed_permissions": ["client.read", "invoice.read"],
        }
        assert policy.updated_by_id == alice.id
        # The same rules again change nothing and write nothing.
        service.policies.set_policy(acme, max_lifetime_days=90, actor=alice)
        (event,) = service.policies.policy_events(acme)
        assert (event.event, event.key_id, event.organization_id) == ("policy_changed", None, acme)
        assert (event.actor_id, event.ip) == (alice.id, "203.0.113.9")
        assert event.details["before"] == {
            "max_lifetime_days": None,
            "idle_expiry_days": None,
            "allowed_permissions": None,
        }
        assert event.details["after"] == policy.rules()
        # Lifting one rule keeps the others; lifting every rule removes the policy.
        service.policies.set_policy(acme, idle_expiry_days=None)
        assert service.policies.policy_of(acme).rules()["max_lifetime_days"] == 90
        assert service.policies.policy_of(acme).idle_expiry_days is None
        assert (
            service.policies.set_policy(acme, max_lifetime_days=None, allowed_permissions=None)
            is None
        )
        assert service.policies.policy_of(acme) is None
        latest = service.policies.policy_events(acme)[0]
        assert latest.actor_id is None  # an operator
        assert latest.details["after"] == dict.fromkeys(latest.details["after"])


def test_only_admins_of_the_organization_may_set_its_policy(app: Flask) -> None:
    with app.app_context():
        service, acme = key_service(), org_id_of("Acme")
        for email in ("bob@acme.test", "carol@globex.test"):  # a member; another org's admin
            with pytest.raises(RequestRefused, match=r"api_key\.manage"):
                service.policies.set_policy(acme, max_lifetime_days=30, actor=user_named(email))
        assert service.policies.policy_of(acme) is None
        assert service.policies.policy_events(acme) == []


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"max_lifetime_days": 0}, "between 1 and 3650"),
        ({"max_lifetime_days": 3651}, "between 1 and 3650"),
        ({"idle_expiry_days": "soon"}, "number of days"),
        ({"idle_expiry_days": True}, "number of days"),
        ({"allowed_permissions": []}, "at least one permission"),
        ({"allowed_permissions": ["nope.read"]}, "Unknown permission"),
        ({"allowed_permissions": ["api_key.manage"]}, "governs API keys"),
        ({"allowed_permissions": [""]}, "must be names"),
    ],
)
def test_bad_rules_are_refused_with_a_message_and_nothing_is_written(
    app: Flask, rules: dict[str, Any], message: str
) -> None:
    with app.app_context():
        service, acme = key_service(), org_id_of("Acme")
        with pytest.raises(RequestRefused, match=message):
            service.policies.set_policy(acme, **rules)
        assert service.policies.policy_of(acme) is None
        assert service.policies.policy_events(acme) == []


def test_an_unknown_organization_is_refused(app: Flask) -> None:
    with app.app_context():
        service = key_service()
        for org in ("", "not-an-id"):
            with pytest.raises(RequestRefused, match="organization"):
                service.policies.set_policy(org, max_lifetime_days=30)
        if service.session.get_bind().dialect.name == "postgresql":  # SQLite: no FK checks
            with pytest.raises(RequestRefused, match="no organization"):
                service.policies.set_policy(987654, max_lifetime_days=30)
            assert service.policies.policy_events(987654) == []


# -- creation ---------------------------------------------------------------------------


def test_creation_refuses_longer_lifetimes_and_disallowed_permissions(
    app: Flask, make_key: Any
) -> None:
    set_rules(app, max_lifetime_days=30, allowed_permissions=["client.read"])
    for expires_at in (None, parse_expiry("90d")):
        with pytest.raises(RequestRefused, match="must expire within 30 days"):
            make_key("bob@acme.test", ["client.read"], expires_at=expires_at)
    with pytest.raises(RequestRefused, match=r"does not allow keys to hold 'invoice\.read'"):
        make_key("bob@acme.test", ["client.read", "invoice.read"], expires_at=parse_expiry("30d"))
    assert make_key("bob@acme.test", ["client.read"], expires_at=parse_expiry("30d"))
    # Another organization's policy binds nobody in Acme, and the reverse.
    assert make_key("carol@globex.test", ["invoice.read"], expires_at=None)


def test_the_global_maximum_still_applies_when_shorter(app: Flask, make_key: Any) -> None:
    app.config["APIKEYS_MAX_LIFETIME"] = 20
    app.extensions["apikeys"].refresh(app)
    set_rules(app, max_lifetime_days=60)
    with app.app_context():
        assert key_service().policies.lifetime_limit(org_id_of("Acme")) == dt.timedelta(days=20)
    with pytest.raises(RequestRefused, match="within 20 days"):
        make_key("bob@acme.test", ["client.read"], expires_at=parse_expiry("30d"))


def test_a_rotation_keeps_the_lifetime_within_todays_maximum(app: Flask, make_key: Any) -> None:
    make_key("bob@acme.test", ["client.read"], name="forever", expires_at=None)
    set_rules(app, max_lifetime_days=30)
    with app.app_context():
        service = key_service()
        (old,) = service.queries.list_keys(owner=user_named("bob@acme.test"))
        assert [
            k.display_prefix for k in service.policies.keys_outliving_policy(org_id_of("Acme"))
        ] == [old.display_prefix]
        before = utcnow()
        new = service.keys.rotate(old).key
        assert new.expires_at is not None
        assert before + dt.timedelta(days=30) <= new.expires_at <= utcnow() + dt.timedelta(days=30)
        assert service.policies.keys_outliving_policy(org_id_of("Acme")) == []


# -- every request ----------------------------------------------------------------------


def test_narrowing_the_permissions_takes_effect_on_existing_keys_at_once(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    secret = make_key("bob@acme.test", ["invoice.read", "client.read"])
    assert client.get("/v1/invoices", headers=bearer(secret)).status_code == 200
    set_rules(app, allowed_permissions=["client.read"])
    refused = client.get("/v1/invoices", headers=bearer(secret))
    assert refused.status_code == 403
    assert refused.json["error"] == "insufficient_scope"
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    scopes = client.get("/v1/me/permissions", headers=bearer(secret)).json["scopes"]
    assert scopes == ["client.read"]
    set_rules(app, allowed_permissions=None)
    assert client.get("/v1/invoices", headers=bearer(secret)).status_code == 200


def test_full_access_keys_are_cut_to_the_allowed_permissions_too(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    secret = make_key("alice@acme.test", full_access=True)
    set_rules(app, allowed_permissions=["invoice.read"])
    scopes = client.get("/v1/me/permissions", headers=bearer(secret)).json["scopes"]
    assert scopes == ["invoice.read"]


def _last_used(app: Flask, secret: str, last_used: dt.datetime | None, created: Any) -> None:
    from example_app import db

    with app.app_context():
        key = key_service().verifier.find_by_secret(secret)
        table = type(key).__table__
        db.session.execute(
            sa.update(table)
            .where(table.c.id == key.id)
            .values(last_used_at=last_used, created_at=created)
        )
        db.session.commit()


def test_keys_unused_for_the_idle_expiry_stop_working_with_an_audited_reason(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    now = utcnow()
    idle, never_used, recent = (make_key("bob@acme.test", ["client.read"]) for _ in range(3))
    _last_used(app, idle, now - dt.timedelta(days=31), now - dt.timedelta(days=200))
    _last_used(app, never_used, None, now - dt.timedelta(days=30, minutes=1))
    _last_used(app, recent, now - dt.timedelta(days=29), now - dt.timedelta(days=200))
    for secret in (idle, never_used, recent):  # no policy yet: all work
        assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    app.extensions["apikeys"].flush_usage(app)
    _last_used(app, idle, now - dt.timedelta(days=31), now - dt.timedelta(days=200))
    _last_used(app, never_used, None, now - dt.timedelta(days=30, minutes=1))
    set_rules(app, idle_expiry_days=30)
    for secret in (idle, never_used):
        response = client.get("/v1/clients", headers=bearer(secret))
        assert response.status_code == 401
        assert response.json["error"] == "expired_api_key"
        assert "not used for 30 days" in response.json["message"]
        assert "Bearer" in response.headers["WWW-Authenticate"]
    assert client.get("/v1/clients", headers=bearer(recent)).status_code == 200
    with app.app_context():
        key = key_service().verifier.find_by_secret(idle)
        events = [(e.event, e.details) for e in key_service().queries.events(key)]
    assert ("expired_use", {"reason": "idle"}) in events
    # Lifting the rule lets the key work again: idleness is the policy's, not the key's.
    set_rules(app, idle_expiry_days=None)
    assert client.get("/v1/clients", headers=bearer(idle)).status_code == 200


def test_the_pages_show_a_key_past_the_idle_expiry_as_expired(
    app: Flask, alice: Browser, bob: Browser, make_key: Any
) -> None:
    now = utcnow()
    idle, recent = (make_key("bob@acme.test", ["client.read"]) for _ in range(2))
    _last_used(app, idle, now - dt.timedelta(days=31), now - dt.timedelta(days=200))
    _last_used(app, recent, now - dt.timedelta(days=2), now - dt.timedelta(days=200))
    with app.app_context():
        idle_id = key_service().verifier.find_by_secret(idle).id
    assert "Unused for" not in bob.get(f"/{idle_id}").text  # no policy: an active key
    set_rules(app, idle_expiry_days=30)
    # (The lists show working keys by default: an idle one is among every status.)
    pages = [bob.get("/?status=all"), bob.get(f"/{idle_id}"), alice.get("/organization?status=all")]
    for page in pages:
        assert page.status_code == 200
        badge = 'ak-badge-expired" title="Unused for 30 days">Expired</span>'
        assert page.text.count(badge) == 1, page.request.path
    # The organization page's status filter agrees with the badge.
    with app.app_context():
        recent_prefix = key_service().verifier.find_by_secret(recent).display_prefix
        idle_prefix = key_service().verifier.find_by_secret(idle).display_prefix
    active = alice.get("/organization?status=active").text
    expired = alice.get("/organization?status=expired").text
    assert recent_prefix in active and idle_prefix not in active
    assert idle_prefix in expired and recent_prefix not in expired
    globex = make_key("carol@globex.test", ["client.read"])  # no policy there
    _last_used(app, globex, now - dt.timedelta(days=90), now - dt.timedelta(days=200))
    with app.app_context():  # ... and so does the service, for every organization at once
        globex_id = key_service().verifier.find_by_secret(globex).id
        active_ids = {k.id for k in key_service().queries.list_keys(status="active")}
        expired_ids = {k.id for k in key_service().queries.list_keys(status="expired")}
    assert idle_id in expired_ids and idle_id not in active_ids
    assert globex_id in active_ids and globex_id not in expired_ids
    # ... and so does the command line, in its status column and in `show`.
    cli = app.test_cli_runner()
    rows = cli.invoke(args=["apikeys", "list", "--json", "--status", "expired"]).stdout
    listed = [json.loads(row) for row in rows.splitlines()]
    assert {row["display_prefix"]: row["status"] for row in listed}[idle_prefix] == "expired"
    shown = cli.invoke(args=["apikeys", "show", idle_prefix]).stdout.splitlines()
    assert "Status:       expired" in shown


def _probe(app: Flask) -> None:
    @app.get("/_probe")
    @require_key()
    def probe() -> Any:
        return jsonify(scopes=sorted(current_key.scopes))


@pytest.mark.parametrize("with_policy", [False, True])
def test_a_request_still_costs_one_select_with_or_without_a_policy(
    app: Flask, make_key: Any, with_policy: bool
) -> None:
    from example_app import db

    _probe(app)
    client = app.test_client()
    secret = make_key("bob@acme.test", ["invoice.read", "client.read"])
    if with_policy:
        set_rules(app, idle_expiry_days=30, allowed_permissions=["client.read"])
    with app.app_context():
        engine = db.engine
        db.session.remove()
    with recorded_statements() as statements:
        for _ in range(3):
            response = client.get("/_probe", headers=bearer(secret))
            assert response.status_code == 200
            assert response.json["scopes"] == (
                ["client.read"] if with_policy else ["client.read", "invoice.read"]
            )
    assert writes(statements) == []
    found = lookups(statements)
    assert all("api_key_policies" in s for s in found)  # joined into the one SELECT
    checks = version_checks(statements)
    assert [s for s in statements if s not in found and s not in checks] == []
    assert len(found) == (1 if engine.dialect.name == "sqlite" else 3), statements
