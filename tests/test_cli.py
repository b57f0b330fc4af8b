"""``flask apikeys ...``: the key alone on stdout, one-line reasons on stderr."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys import KEY_PATTERN
from tests.conftest import bearer


def run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["apikeys", *args])


def create(app: Flask, *args: str) -> str:
    result = run(app, "create", *args)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and KEY_PATTERN.fullmatch(lines[-1])
    assert result.stdout == lines[-1] + "\n"  # the key alone
    return lines[-1]


def test_create_prints_a_working_key_alone_on_stdout(app: Flask, client: FlaskClient) -> None:
    secret = create(app, "--user", "bob@acme.test", "--name", "CI", "--scope", "client.read")
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    assert client.get("/v1/invoices", headers=bearer(secret)).status_code == 403


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--user", "nobody@acme.test", "--name", "x", "--scope", "client.read"], "No user"),
        (["--user", "bob@acme.test", "--name", "x", "--scope", "invoice.write"], "invoice.write"),
        (["--user", "bob@acme.test", "--name", "x", "--scope", "nope.read"], "Unknown permission"),
        (
            [
                "--user",
                "bob@acme.test",
                "--name",
                "x",
                "--scope",
                "client.read",
                "--expires",
                "2001-01-01",
            ],
            "after today",
        ),
        (
            [
                "--user",
                "bob@acme.test",
                "--name",
                "x",
                "--scope",
                "client.read",
                "--expires",
                "soon",
            ],
            "Unknown expiry",
        ),
        (["--user", "bob@acme.test", "--name", " ", "--scope", "client.read"], "name"),
        (["--user", "bob@acme.test", "--name", "x"], "at least one"),
        (
            ["--user", "bob@acme.test", "--name", "x", "--scope", "invoice.write"],
            "bob@acme.test does not hold 'invoice.write'.",
        ),
    ],
)
def test_refused_requests_exit_non_zero_with_one_line(
    app: Flask, args: list[str], reason: str
) -> None:
    result = run(app, "create", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert run(app, "list", "--json").stdout == ""  # nothing was written


def test_expiry_forms(app: Flask) -> None:
    for expires in ["30d", "90d", "1y", "2099-12-31", "never"]:
        create(
            app,
            "--user",
            "alice@acme.test",
            "--name",
            expires,
            "--scope",
            "client.read",
            "--expires",
            expires,
        )
    listing = run(app, "list", "--user", "alice@acme.test").stdout
    assert "2100-01-01 00:00 UTC" in listing  # valid through the given day
    assert listing.count("alice@acme.test") == 5


def test_list_shows_keys_without_secrets_and_filters(app: Flask) -> None:
    bob = create(app, "--user", "bob@acme.test", "--name", "Bob's", "--scope", "client.read")
    alice = create(app, "--user", "alice@acme.test", "--name", "Alice's", "--full-access")
    everything = run(app, "list").stdout
    assert bob[:12] in everything and alice[:12] in everything
    assert bob not in everything and alice not in everything
    only_bob = run(app, "list", "--user", "bob@acme.test").stdout
    assert bob[:12] in only_bob and alice[:12] not in only_bob
    assert "full access" in everything


def test_revoke_by_display_prefix(app: Flask, client: FlaskClient) -> None:
    secret = create(app, "--user", "bob@acme.test", "--name", "x", "--scope", "client.read")
    result = run(app, "revoke", secret[:12], "--reason", "leaked")
    assert result.exit_code == 0
    response = client.get("/v1/clients", headers=bearer(secret))
    assert response.get_json()["error"] == "revoked_api_key"
    assert run(app, "revoke", secret[:12]).exit_code == 0  # already revoked: says so
    unknown = run(app, "revoke", "fsk_00000000")
    assert unknown.exit_code == 1 and "No key" in unknown.stderr
    assert "revoked" in run(app, "list", "--status", "revoked").stdout


def test_rotate_prints_the_new_key_and_honours_the_grace(app: Flask, client: FlaskClient) -> None:
    old = create(app, "--user", "bob@acme.test", "--name", "x", "--scope", "client.read")
    result = run(app, "rotate", old[:12], "--grace", "1h")
    assert result.exit_code == 0
    new = result.stdout.strip()
    assert KEY_PATTERN.fullmatch(new) and new != old
    assert client.get("/v1/clients", headers=bearer(old)).status_code == 200
    assert client.get("/v1/clients", headers=bearer(new)).status_code == 200
    shown = run(app, "show", old[:12]).stdout
    assert "rotated" in shown and old not in shown


def test_revoke_user_offboards_everyone_s_keys(app: Flask, client: FlaskClient) -> None:
    keys = [
        create(app, "--user", "bob@acme.test", "--name", f"k{i}", "--scope", "client.read")
        for i in range(3)
    ]
    result = run(app, "revoke-user", "--user", "bob@acme.test", "--reason", "left")
    assert result.exit_code == 0 and "Revoked 3 keys" in result.stderr
    for secret in keys:
        assert client.get("/v1/clients", headers=bearer(secret)).status_code == 401


def test_the_real_flask_command_works_end_to_end(tmp_path: Path, database_url: str) -> None:
    """The commands exactly as the README shows them, in a subprocess."""
    env = {**os.environ, "DATABASE_URL": database_url, "FLASK_SECRET_KEY": "x"}
    flask = [sys.executable, "-m", "flask", "--app", "example_app"]

    def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*flask, *args], env=env, capture_output=True, text=True, check=check, timeout=120
        )

    sh("seed")
    sh("seed")  # idempotent
    created = sh(
        "apikeys", "create", "--user", "bob@acme.test", "--name", "CI", "--scope", "client.read"
    )
    assert KEY_PATTERN.fullmatch(created.stdout.strip().splitlines()[-1])
    refused = sh(
        "apikeys",
        "create",
        "--user",
        "bob@acme.test",
        "--name",
        "CI",
        "--scope",
        "invoice.write",
        check=False,
    )
    assert refused.returncode != 0 and refused.stdout == ""
    assert refused.stderr.strip().count("\n") == 0 and "invoice.write" in refused.stderr
    users = sh("users", "list").stdout
    assert users.count("acme.test") == 2 and users.count("globex.test") == 1


def test_changes_are_logged_with_the_actors_id_not_a_tuple(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    from example_app.models import User

    with app.app_context(), caplog.at_level(logging.INFO, logger="flask_apikeys"):
        service = app.extensions["apikeys"].service
        bob = (
            service.context.session.scalars(sa.select(User).where(User.email == "bob@acme.test"))
            .unique()
            .one()
        )
        issued = service.keys.issue(bob, "Logged", ["client.read"], actor=bob)
        service.keys.revoke(issued.key, actor=bob)
        prefix, bob_id = issued.key.display_prefix, bob.id
    lines = [r.getMessage() for r in caplog.records if r.name == "flask_apikeys"]
    assert f"API key {prefix} created by user {bob_id}" in lines
    assert f"API key {prefix} revoked by user {bob_id}" in lines
    assert not any("(" in line for line in lines if "by user" in line)
