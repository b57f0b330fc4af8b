"""Leaked keys on the command line: ``flask apikeys report-leak`` revokes the keys it
reads on stdin, e-mails once, never prints a key, and refuses bad input without
revoking anything.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys import generate_key
from tests.conftest import bearer

pytest.importorskip("cryptography", reason="the leaks extra is not installed")

from tests.leak_helpers import events, key_row

# -- the command line -----------------------------------------------------------------


def report_leak(app: Flask, stdin: str, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["apikeys", "report-leak", *args], input=stdin)


def test_report_leak_revokes_keys_from_stdin_and_never_prints_them(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    pytest.importorskip("aiosmtpd")
    from tests.smtp import smtp_server

    bob = make_key("bob@acme.test", ["client.read"])
    unknown = generate_key("fsk")
    stdin = f"{bob}\n\n{unknown.secret}\nnot a key at all\n"
    with smtp_server() as (address, messages):
        app.config["MAIL_SERVER"] = address
        result = report_leak(
            app, stdin, "--url", "https://chat.example/m/1", "--reason", "pasted in the chat"
        )
        again = report_leak(app, f"  {bob}  \n")

    prefix = key_row(app, bob).display_prefix
    assert result.exit_code == 3, result.output
    assert result.stdout.splitlines() == [
        f"{prefix}\ttrue_positive\trevoked",
        f"{unknown.display_prefix}\tfalse_positive\tnot a key of this app",
        "line 4\tfalse_positive\tnot a key of this app",
    ]
    assert again.exit_code == 0, again.output
    assert again.stdout == f"{prefix}\ttrue_positive\talready revoked\n"
    for output in (result.stdout + result.stderr, again.stdout + again.stderr):
        assert bob not in output and unknown.secret not in output
    assert key_row(app, bob).revoked_reason == "pasted in the chat at https://chat.example/m/1"
    assert client.get("/v1/clients", headers=bearer(bob)).status_code == 401
    assert events(app)[-1] == ("leaked", {"url": "https://chat.example/m/1"})
    assert len(messages) == 1 and prefix in messages[0]["Subject"]


@pytest.mark.parametrize(
    ("args", "stdin", "error"),
    [
        ((), "\n  \n", "No keys on stdin"),
        (("--reason", "x" * 201), "{bob}\n", "at most 200 characters"),
        (("--url", "https://x.test/\x07"), "{bob}\n", "printable URL"),
    ],
)
def test_report_leak_refuses_without_revoking(
    app: Flask, make_key: Any, args: tuple[str, ...], stdin: str, error: str
) -> None:
    bob = make_key("bob@acme.test", ["client.read"])
    result = report_leak(app, stdin.format(bob=bob), *args)
    assert result.exit_code in (1, 2), result.output
    assert error in result.stderr
    assert key_row(app, bob).revoked_at is None
