"""Key-authenticated requests against the example app: the error table of DESIGN §2."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_apikeys.db.models import utcnow
from tests.conftest import bearer


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    if status in (401, 403):
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="api"')


def test_a_scoped_key_works_with_either_header(client: FlaskClient, make_key: Any) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    for headers in (bearer(secret), {"X-API-Key": secret}, {"Authorization": f"bearer  {secret}"}):
        response = client.get("/v1/clients", headers=headers)
        assert response.status_code == 200
        assert {c["name"] for c in response.get_json()["clients"]} == {
            "Wayne Enterprises",
            "Stark Industries",
        }


def test_a_missing_scope_is_403_insufficient_scope(client: FlaskClient, make_key: Any) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    response = client.get("/v1/invoices", headers=bearer(secret))
    assert_error(response, 403, "insufficient_scope")
    assert response.get_json()["missing_scopes"] == ["invoice.read"]
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert 'scope="invoice.read"' in response.headers["WWW-Authenticate"]


def test_no_credentials_is_401_missing_api_key(client: FlaskClient) -> None:
    response = client.get("/v1/clients")
    assert_error(response, 401, "missing_api_key")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert_error(
        client.get("/v1/clients", headers={"Authorization": "Basic Ym9iOng="}),
        401,
        "missing_api_key",
    )


def test_one_changed_character_is_401_invalid_api_key(client: FlaskClient, make_key: Any) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    for position in (4, 20, len(secret) - 1):
        swapped = "A" if secret[position] != "A" else "B"
        typo = secret[:position] + swapped + secret[position + 1 :]
        response = client.get("/v1/clients", headers=bearer(typo))
        assert_error(response, 401, "invalid_api_key")
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_well_formed_unknown_key_is_invalid(client: FlaskClient) -> None:
    from flask_apikeys import generate_key

    assert_error(
        client.get("/v1/clients", headers=bearer(generate_key("fsk").secret)),
        401,
        "invalid_api_key",
    )


def test_two_different_keys_are_refused(client: FlaskClient, make_key: Any) -> None:
    a, b = make_key("bob@acme.test", ["client.read"]), make_key("bob@acme.test", ["client.read"])
    response = client.get("/v1/clients", headers={**bearer(a), "X-API-Key": b})
    assert_error(response, 401, "invalid_api_key")


def test_keys_in_the_query_string_are_ignored_by_default(
    client: FlaskClient, make_key: Any
) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    assert_error(client.get(f"/v1/clients?api_key={secret}"), 401, "missing_api_key")


def test_revocation_takes_effect_on_the_very_next_request(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    from example_app import apikeys

    secret = make_key("bob@acme.test", ["client.read"])
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    with app.app_context():
        key = apikeys.service.verifier.verify(secret).key
        apikeys.service.keys.revoke(key, reason="test")
    assert_error(client.get("/v1/clients", headers=bearer(secret)), 401, "revoked_api_key")


def test_an_expired_key_is_401_and_its_use_is_audited(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    from example_app import apikeys, db

    secret = make_key("bob@acme.test", ["client.read"])
    with app.app_context():
        key = apikeys.service.verifier.verify(secret).key
        key.expires_at = utcnow() - dt.timedelta(minutes=1)
        db.session.commit()
    response = client.get(
        "/v1/clients", headers=bearer(secret), environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )
    assert_error(response, 401, "expired_api_key")
    with app.app_context():
        key = apikeys.service.queries.get_by_display_prefix(secret[:12])
        latest = apikeys.service.queries.events(key)[0]
        assert (latest.event, latest.ip) == ("expired_use", "198.51.100.7")


def test_a_deactivated_owner_is_401_inactive_user(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    from example_app import db
    from example_app.models import User

    secret = make_key("bob@acme.test", ["client.read"])
    with app.app_context():
        db.session.scalar(sa.select(User).where(User.email == "bob@acme.test")).active = False
        db.session.commit()
    assert_error(client.get("/v1/clients", headers=bearer(secret)), 401, "inactive_user")


def test_taking_a_permission_away_turns_200_into_403(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "take", "bob@acme.test", "client.read"])
    assert result.exit_code == 0, result.output
    assert_error(client.get("/v1/clients", headers=bearer(secret)), 403, "insufficient_scope")


def test_bob_cannot_get_a_key_with_invoice_write(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=[
            "apikeys",
            "create",
            "--user",
            "bob@acme.test",
            "--name",
            "x",
            "--scope",
            "invoice.write",
        ]
    )
    assert result.exit_code == 1
    assert "invoice.write" in result.stderr
    assert result.stdout == ""


def test_a_globex_key_never_sees_acme_data(client: FlaskClient, make_key: Any) -> None:
    carol = make_key("carol@globex.test", ["invoice.read", "invoice.write", "client.read"])
    alice = make_key("alice@acme.test", ["client.read"])
    acme_clients = client.get("/v1/clients", headers=bearer(alice)).get_json()["clients"]
    invoices = client.get("/v1/invoices", headers=bearer(carol)).get_json()["invoices"]
    assert {i["client"]["name"] for i in invoices} <= {"Initech", "Umbrella Corp"}
    assert len(invoices) == 2
    clients = client.get("/v1/clients", headers=bearer(carol)).get_json()["clients"]
    assert {c["name"] for c in clients} == {"Initech", "Umbrella Corp"}
    # Carol cannot bill Acme's client: it looks exactly like a missing one.
    response = client.post(
        "/v1/invoices",
        json={"client_id": acme_clients[0]["id"], "amount_cents": 100},
        headers=bearer(carol),
    )
    assert response.status_code == 404
    assert "no client" in response.get_json()["message"]


def test_post_invoice_validates_its_body(client: FlaskClient, make_key: Any) -> None:
    secret = make_key("alice@acme.test", ["invoice.write", "client.read"])
    client_id = client.get("/v1/clients", headers=bearer(secret)).get_json()["clients"][0]["id"]
    for body in [
        None,
        [],
        {"client_id": "1", "amount_cents": 5},
        {"client_id": client_id, "amount_cents": -5},
        {"client_id": client_id, "amount_cents": 5, "currency": "€"},
    ]:
        response = client.post("/v1/invoices", json=body, headers=bearer(secret))
        assert response.status_code == 400, body
        assert response.get_json()["error"] == "invalid_request"
    response = client.post(
        "/v1/invoices", json={"client_id": client_id, "amount_cents": 1250}, headers=bearer(secret)
    )
    assert response.status_code == 201
    assert response.get_json()["invoice"]["amount_cents"] == 1250


def test_introspection_tells_a_key_what_it_can_do(client: FlaskClient, make_key: Any) -> None:
    secret = make_key("bob@acme.test", ["client.read", "invoice.read"], name="Reporting")
    body = client.get("/v1/me/permissions", headers=bearer(secret)).get_json()
    assert body["key"]["name"] == "Reporting"
    assert body["key"]["display_prefix"] == secret[:12]
    assert body["owner"] == {"email": "bob@acme.test"}
    assert body["organization"]["name"] == "Acme"
    assert body["scopes"] == ["client.read", "invoice.read"]
    assert secret not in str(body)


def test_flask_login_current_user_is_the_keys_owner(app: Flask, make_key: Any) -> None:
    from flask_login import current_user

    from flask_apikeys import current_key, require_key

    @app.get("/whoami")
    @require_key()
    def whoami() -> Any:
        return {"user": current_user.email, "key_owner": current_key.owner.email}

    secret = make_key("bob@acme.test", ["client.read"])
    body = app.test_client().get("/whoami", headers=bearer(secret)).get_json()
    assert body == {"user": "bob@acme.test", "key_owner": "bob@acme.test"}


def test_errors_can_be_re_rendered_by_the_host(app: Flask) -> None:
    from flask_apikeys import MissingAPIKey

    @app.errorhandler(MissingAPIKey)
    def custom(error: MissingAPIKey) -> Any:
        return {"problem": error.error}, 401

    assert app.test_client().get("/v1/clients").get_json() == {"problem": "missing_api_key"}


def test_options_requests_skip_authentication(client: FlaskClient) -> None:
    assert client.options("/v1/clients").status_code == 200


def test_the_database_holds_no_plaintext_key(app: Flask, make_key: Any) -> None:
    from example_app import db

    secrets = [make_key("bob@acme.test", ["client.read"]) for _ in range(3)]
    with app.app_context():
        dump = []
        for table in db.metadata.sorted_tables:
            dump += [str(row) for row in db.session.execute(sa.select(table)).all()]
        text = "\n".join(dump)
    for secret in secrets:
        assert secret not in text
        assert secret[12:] not in text  # not even the part after the display prefix
        assert secret[:12] in text  # the display prefix is stored on purpose


header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=600,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=header_values, header=st.sampled_from(["Authorization", "X-API-Key"]))
def test_no_header_value_gets_a_500(client: FlaskClient, value: str, header: str) -> None:
    response = client.get("/v1/invoices", headers={header: value})
    assert response.status_code == 401, (header, value)
    assert response.get_json()["error"] in {"missing_api_key", "invalid_api_key"}


@pytest.mark.parametrize(
    "value",
    [
        "Bearer",
        "Bearer ",
        "Bearer \t",
        "Bearer fsk_" + "x" * 100_000,
        "Bearer\x00fsk_abc",
        "Bearer fsk_" + "é" * 40,
        "Bearer  " + "\xff" * 20,
    ],
)
def test_hostile_authorization_headers_are_401(client: FlaskClient, value: str) -> None:
    response = client.get("/v1/invoices", headers={"Authorization": value})
    assert response.status_code == 401


@pytest.mark.parametrize(("proxies", "status"), [(1, 200), (0, 403)])
def test_the_example_trusts_x_forwarded_for_only_behind_configured_proxies(
    database_url: str, tmp_path: Any, proxies: int, status: int
) -> None:
    from example_app import apikeys, create_app, db
    from example_app.cli import seed_demo_data
    from example_app.models import User

    app = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "PROXY_FIX_X_FOR": proxies}
    )
    with app.app_context():
        db.create_all()
        seed_demo_data()
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        secret = apikeys.service.keys.issue(
            bob, "office only", ["client.read"], ip_allowlist=["203.0.113.0/24"]
        ).secret
    try:
        response = app.test_client().get(
            "/v1/clients",
            headers={**bearer(secret), "X-Forwarded-For": "203.0.113.5"},
            environ_base={"REMOTE_ADDR": "10.0.0.2"},
        )
        assert response.status_code == status
    finally:
        with app.app_context():
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
