"""RFC 7662 introspection: the endpoint, and MCP servers that check keys through it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from tests.mcp.conftest import INTROSPECT, Keys, Proc, bearer, mcp_session, x_api_key

pytestmark = pytest.mark.servers  # starts real gunicorn and uvicorn servers

INACTIVE = {"active": False}


@pytest.fixture
def client(mcp_app: Any) -> Any:
    return mcp_app.test_client()


@pytest.fixture
def caller(keys: Keys) -> str:
    return keys.issue("alice@acme.test", [INTROSPECT])


@pytest.fixture
def configured(mcp_app: Any) -> Iterator[Any]:
    """Change the in-process app's settings for one test."""
    saved = dict(mcp_app.config)
    yield mcp_app.config
    mcp_app.config.clear()
    mcp_app.config.update(saved)


def introspect(client: Any, caller: str | None, token: str | None) -> Any:
    headers = bearer(caller) if caller else {}
    data = {} if token is None else {"token": token}
    return client.post("/oauth/introspect", data=data, headers=headers)


def test_off_by_default(client: Any, caller: str, configured: Any, keys: Keys) -> None:
    from flask_apikeys.web.config import DEFAULTS

    assert DEFAULTS["APIKEYS_INTROSPECTION"] is False
    configured["APIKEYS_INTROSPECTION"] = False
    assert introspect(client, caller, caller).status_code == 404


def test_an_active_key_is_described(client: Any, caller: str, keys: Keys, mcp_app: Any) -> None:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    secret = keys.issue("bob@acme.test", ["client.read", "invoice.read"], expires_at=expires)
    response = introspect(client, caller, secret)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    answer = response.get_json()
    assert answer["active"] is True
    assert answer["scope"] == "client.read invoice.read"
    assert answer["client_id"] == secret[: len(answer["client_id"])]
    assert answer["client_id"].startswith("fsk_") and len(answer["client_id"]) < len(secret)
    assert answer["username"] == "bob@acme.test"
    assert abs(answer["exp"] - expires.timestamp()) < 2
    assert abs(answer["iat"] - dt.datetime.now(dt.UTC).timestamp()) < 60
    from example_app import db
    from example_app.models import User

    with mcp_app.app_context():
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        assert answer["sub"] == str(bob.id)
    assert secret not in response.get_data(as_text=True)


def test_anything_unusable_is_just_inactive(
    client: Any, caller: str, keys: Keys, mcp_app: Any
) -> None:
    from example_app import apikeys, db
    from example_app.models import User

    revoked = keys.issue("bob@acme.test", ["client.read"])
    keys.revoke(revoked)
    expired = keys.issue("bob@acme.test", ["client.read"])
    limited = keys.issue("bob@acme.test", ["client.read"], ip_allowlist=["10.0.0.0/8"])
    orphan = keys.issue("carol@globex.test", ["client.read"])
    with mcp_app.app_context():
        key = apikeys.service.verifier.find_by_secret(expired)
        key.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        db.session.scalar(sa.select(User).where(User.email == "carol@globex.test")).active = False
        db.session.commit()
    valid = keys.issue("bob@acme.test", ["client.read"])
    typo = valid[:-1] + ("A" if valid[-1] != "A" else "B")
    try:
        for token in (
            revoked,
            expired,
            limited,
            orphan,
            typo,
            "fsk_" + "A" * 38,
            "nonsense",
            "x" * 600,
            "",
        ):
            response = introspect(client, caller, token)
            assert response.status_code == 200, token
            assert response.get_json() == INACTIVE, token
    finally:
        with mcp_app.app_context():
            db.session.scalar(
                sa.select(User).where(User.email == "carol@globex.test")
            ).active = True
            db.session.commit()
    assert introspect(client, caller, valid).get_json()["active"] is True


def test_the_caller_needs_its_own_key_with_the_permission(
    client: Any, keys: Keys, caller: str
) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])
    missing = introspect(client, None, secret)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer realm=")
    lacking = introspect(client, secret, secret)
    assert lacking.status_code == 403
    assert lacking.get_json()["missing_scopes"] == [INTROSPECT]
    assert "active" not in lacking.get_json()
    assert introspect(client, caller, None).status_code == 400
    assert client.get("/oauth/introspect", headers=bearer(caller)).status_code == 405


def test_the_permission_name_is_configurable(client: Any, keys: Keys, configured: Any) -> None:
    configured["APIKEYS_INTROSPECTION_PERMISSION"] = "client.read"
    gateway = keys.issue("bob@acme.test", ["client.read"])
    assert introspect(client, gateway, gateway).get_json()["active"] is True


def test_introspection_is_rate_limited_per_caller(client: Any, keys: Keys, configured: Any) -> None:
    configured["APIKEYS_INTROSPECTION_RATE_LIMIT"] = "2/minute"
    caller = keys.issue("alice@acme.test", [INTROSPECT])
    other = keys.issue("alice@acme.test", [INTROSPECT])
    assert [introspect(client, caller, other).status_code for _ in range(3)] == [200, 200, 429]
    refused = introspect(client, caller, other)
    assert refused.get_json()["error"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert introspect(client, other, caller).status_code == 200  # another caller: its own count


# -- MCP servers that know nothing of the database ---------------------------------------


def names_and_whoami(url: str, headers: dict[str, str]) -> tuple[list[str], Any]:
    async def run() -> tuple[list[str], Any]:
        async with mcp_session(url, headers) as session:
            names = sorted(t.name for t in (await session.list_tools()).tools)
            return names, await session.call_tool("whoami", {})

    return anyio.run(run)


def test_a_separate_server_checks_keys_through_introspection(
    introspecting_server: Proc, keys: Keys
) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])
    headers = [bearer] if introspecting_server.name == "sdk" else [bearer, x_api_key]
    for make in headers:
        names, whoami = names_and_whoami(introspecting_server.url, make(secret))
        assert not whoami.is_error, whoami
        me = whoami.structured_content
        assert secret.startswith(me["client_id"]) and me["scopes"] == ["client.read"]
        assert me["subject"]
        if introspecting_server.name == "ours":
            assert names == ["whoami"]  # write_something needs invoice.write


def test_a_key_revoked_mid_session_is_refused_by_the_introspecting_server(
    introspecting_server: Proc, keys: Keys
) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])
    statuses: list[int] = []
    outcomes: list[str] = []

    async def run() -> None:
        async with mcp_session(introspecting_server.url, bearer(secret), statuses=statuses) as s:
            outcomes.append("served" if not (await s.call_tool("whoami", {})).is_error else "x")
            keys.revoke(secret)
            try:
                await s.call_tool("whoami", {})
            except Exception as exc:
                outcomes.append(f"refused: {exc!r}")

    anyio.run(run)
    assert outcomes[0] == "served" and outcomes[1].startswith("refused"), outcomes
    assert statuses[-1] == 401


def test_the_introspecting_server_refuses_no_key_and_bad_keys_without_oauth_hints(
    introspecting_server: Proc, keys: Keys
) -> None:
    for headers in (
        {},
        bearer("fsk_nonsense"),
        bearer(keys.issue("bob@acme.test", ["client.read"]) + "x"),
    ):
        status, response_headers, _ = introspecting_server.post(headers=headers)
        assert status == 401, headers
        assert response_headers["www-authenticate"].startswith("Bearer")
        assert "resource_metadata" not in response_headers["www-authenticate"]
    assert (
        introspecting_server.post("/.well-known/oauth-protected-resource", method="GET")[0] == 404
    )


# The SDK's own path has one set of required scopes for the whole server: no tool scopes.
@pytest.mark.parametrize("introspecting_server", ["ours"], indirect=True)
def test_the_scope_error_of_the_introspecting_server_names_the_scope(
    introspecting_server: Proc, keys: Keys
) -> None:
    secret = keys.issue("bob@acme.test", ["client.read"])

    async def run() -> Any:
        async with mcp_session(introspecting_server.url, x_api_key(secret)) as session:
            return await session.call_tool("write_something", {})

    result = anyio.run(run)
    assert result.is_error and "invoice.write" in result.content[0].text


def test_json_is_what_the_endpoint_speaks(client: Any, caller: str) -> None:
    response = introspect(client, caller, "nonsense")
    assert response.mimetype == "application/json"
    assert json.loads(response.get_data()) == INACTIVE
