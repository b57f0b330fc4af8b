"""Leaked keys: GitHub's signed reports revoke them at once. This module covers the
reports themselves: a signed one revokes our keys, answers GitHub's feedback and e-mails
the owner and the admins once; unsigned, forged, malformed or huge ones change nothing;
neither a signed-in browser nor a host's CSRF protection stands in the way; and the
docs (the regex to register, the example). Fetching GitHub's public keys is in
tests/test_leaks_public_keys.py, ``report-leak`` in tests/test_leaks_cli.py. GitHub
is played for real (tests/leak_helpers.py); the e-mails go through a real SMTP server
(tests/smtp.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys import generate_key, key_pattern
from tests.conftest import bearer

pytest.importorskip("cryptography", reason="the leaks extra is not installed")

from tests.docs_examples import example_app_example
from tests.leak_helpers import (
    ENDPOINT,
    FOUND_AT,
    TYPE,
    GitHub,
    Signer,
    events,
    github_fixture,  # noqa: F401 (the github fixture)
    key_row,
    leak_app_fixture,  # noqa: F401 (the leak_app fixture)
    match,
    sha256,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "leaks.md"


# -- the endpoint ---------------------------------------------------------------------


def test_a_signed_report_revokes_our_key_at_once_and_answers_githubs_feedback(
    leak_app: Flask, client: FlaskClient, make_key: Any, github: GitHub
) -> None:
    bob = make_key("bob@acme.test", ["client.read"])
    carol = make_key("carol@globex.test", ["client.read"])
    unknown = generate_key("fsk").secret  # our format, but no key of ours
    foreign = generate_key("ghp").secret
    assert client.get("/v1/clients", headers=bearer(bob)).status_code == 200

    response = github.report(client, [match(bob), match(unknown), match(foreign, url="")])

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json == [
        {"token_hash": sha256(bob), "token_type": TYPE, "label": "true_positive"},
        {"token_hash": sha256(unknown), "token_type": TYPE, "label": "false_positive"},
        {"token_hash": sha256(foreign), "token_type": TYPE, "label": "false_positive"},
    ]
    refused = client.get("/v1/clients", headers=bearer(bob))
    assert refused.status_code == 401 and refused.json["error"] == "revoked_api_key"
    assert client.get("/v1/clients", headers=bearer(carol)).status_code == 200
    key = key_row(leak_app, bob)
    assert key.revoked_reason == f"leaked: found by GitHub secret scanning at {FOUND_AT}"
    assert key.revoked_by_id is None
    assert events(leak_app)[-2:] == [
        ("revoked", {"reason": key.revoked_reason}),
        ("leaked", {"url": FOUND_AT, "source": "content", "type": TYPE}),
    ]
    assert github.hits == 1


def test_the_owner_and_the_admins_are_emailed_once_even_when_github_sends_it_again(
    leak_app: Flask, client: FlaskClient, make_key: Any, github: GitHub
) -> None:
    pytest.importorskip("aiosmtpd")
    from tests.smtp import smtp_server

    bob = make_key("bob@acme.test", ["client.read"])
    body = json.dumps([match(bob)]).encode()
    headers = github.signer.headers(body)
    with smtp_server() as (address, messages):
        leak_app.config["MAIL_SERVER"] = address
        first = client.post(ENDPOINT, data=body, headers=headers)
        assert first.status_code == 200, first.text
        after_first = events(leak_app)
        again = client.post(ENDPOINT, data=body, headers=headers)  # GitHub retries

    assert again.status_code == 200 and again.json == first.json
    assert again.json[0]["label"] == "true_positive"
    assert events(leak_app) == after_first  # nothing new written ...
    assert len(messages) == 1  # ... nor sent
    message = messages[0]
    recipients = {address.strip() for address in message["To"].split(",")}
    assert recipients == {"bob@acme.test", "alice@acme.test"}  # the owner, Acme's admin
    prefix = key_row(leak_app, bob).display_prefix
    assert prefix in message["Subject"]
    text = message.get_payload(decode=True).decode()
    assert FOUND_AT in text and prefix in text
    assert bob not in message.as_string()


def test_a_report_not_signed_by_github_changes_nothing(
    leak_app: Flask, client: FlaskClient, make_key: Any, github: GitHub
) -> None:
    bob = make_key("bob@acme.test", ["client.read"])
    body = json.dumps([match(bob)]).encode()
    genuine = github.signer.headers(body)
    other = json.dumps([match(generate_key("fsk").secret)]).encode()
    without_signature = {k: v for k, v in genuine.items() if "Signature" not in k}
    without_identifier = {k: v for k, v in genuine.items() if "Identifier" not in k}
    # The first four are refused before any fetch; the last three need GitHub's keys.
    cases = [
        ("no signature", without_signature, 400, "missing_signature"),
        ("no identifier", without_identifier, 400, "missing_signature"),
        (
            "garbage identifier",
            {**genuine, "Github-Public-Key-Identifier": "../../etc/passwd"},
            403,
            "unknown_key_identifier",
        ),
        (
            "not base64",
            {**genuine, "Github-Public-Key-Signature": "not*base64!"},
            403,
            "invalid_signature",
        ),
        (  # someone else's signature, naming GitHub's key
            "forged",
            Signer().headers(body, identifier=github.signer.identifier),
            403,
            "invalid_signature",
        ),
        # a genuine signature, replayed over another report
        ("other body", github.signer.headers(other), 403, "invalid_signature"),
        ("unknown identifier", Signer().headers(body), 403, "unknown_key_identifier"),
    ]
    before = events(leak_app)
    for number, (tamper, headers, status, code) in enumerate(cases):
        response = client.post(ENDPOINT, data=body, headers=headers)
        assert response.status_code == status, (tamper, response.text)
        assert response.json["error"] == code and response.json["message"], tamper
        assert github.hits == (0 if number < 4 else 1), tamper
    assert client.get("/v1/clients", headers=bearer(bob)).status_code == 200
    assert events(leak_app) == before


MALFORMED: list[tuple[Callable[[str], str | bytes], str]] = [
    (lambda s: json.dumps(match(s)), "must be a JSON array"),
    (lambda s: json.dumps([match(s), 7]), "Match 2 is not an object"),
    (lambda s: json.dumps([{"token": 5, "type": TYPE}]), "'token' must be a string"),
    (lambda s: json.dumps([{"token": s}]), "'type' must be a string"),
    (lambda s: json.dumps([{"token": "", "type": TYPE}]), "'token' is empty"),
    (lambda s: json.dumps([match(s), match(s + "\x00")]), "'token' contains control"),
    (lambda s: json.dumps([match(s, url=FOUND_AT + "\x00")]), "'url' contains control"),
    (lambda s: '[{"token": "' + s + '\x00", "type": "t"}]', "not valid JSON"),  # a raw NUL
    (lambda s: json.dumps([match(s)]) + "\x00", "not valid JSON"),
    (lambda s: b'[{"token": "' + s.encode() + b'", "type": "\xff"}]', "not UTF-8"),
    (lambda s: "[" * 100_000, "not valid JSON"),
    (
        lambda s: json.dumps([match(s, url="https://x.test/" + "a" * 3000)]),
        "'url' is longer than 2048 characters",
    ),
]


def test_a_malformed_report_is_refused_whole(
    leak_app: Flask, client: FlaskClient, make_key: Any, github: GitHub
) -> None:
    bob = make_key("bob@acme.test", ["client.read"])
    before = events(leak_app)
    for make_body, message in MALFORMED:
        body = make_body(bob)
        response = github.report(client, body if isinstance(body, bytes) else body.encode())
        assert response.status_code == 400, (message, response.text)
        assert response.json["error"] == "invalid_report"
        assert message in response.json["message"], response.json["message"]
    assert client.get("/v1/clients", headers=bearer(bob)).status_code == 200
    assert events(leak_app) == before


def test_an_empty_report_gets_an_empty_answer(leak_app: Flask, client: FlaskClient, github: GitHub):
    response = github.report(client, [])
    assert response.status_code == 200 and response.json == []


def test_a_huge_report_is_refused_before_anything_is_fetched(
    leak_app: Flask, client: FlaskClient, github: GitHub
) -> None:
    body = b"[" + b" " * leak_app.config["APIKEYS_LEAK_MAX_REPORT_BYTES"] + b"]"
    response = github.report(client, body)
    assert response.status_code == 413
    assert response.json["error"] == "report_too_large"
    assert github.hits == 0


def test_a_signed_in_browser_is_no_authority(
    leak_app: Flask, make_key: Any, github: GitHub
) -> None:
    from tests.pages.conftest import Browser

    alice = Browser(leak_app.test_client())
    alice.login("alice@acme.test")  # an admin of bob's organization, signed in
    bob = make_key("bob@acme.test", ["client.read"])
    body = json.dumps([match(bob)]).encode()

    unsigned = alice.client.post(ENDPOINT, data=body, content_type="application/json")
    forged = alice.client.post(ENDPOINT, data=body, headers=Signer().headers(body))

    assert unsigned.status_code == 400 and unsigned.json["error"] == "missing_signature"
    assert forged.status_code == 403
    assert alice.client.get("/v1/clients", headers=bearer(bob)).status_code == 200


def test_a_host_with_csrf_protection_gets_the_reports_and_the_signal(
    host: Any, github: GitHub
) -> None:
    from flask_wtf.csrf import CSRFProtect

    from flask_apikeys.signals import key_leaked
    from flask_apikeys.web.leaks import create_leak_blueprint

    app = host.app
    CSRFProtect(app)
    app.config.update(
        APIKEYS_LEAK_PUBLIC_KEYS_URL=github.url,
        APIKEYS_LEAK_ALLOW_HTTP=True,
    )
    app.register_blueprint(create_leak_blueprint(), url_prefix="/security")
    secret = host.service.keys.issue(host.ann, "deploy", ["doc.read"]).secret
    told: list[dict[str, Any]] = []

    def receiver(sender: Flask, **data: Any) -> None:
        told.append(data)

    with key_leaked.connected_to(receiver, sender=app):
        response = github.report(host.client, [match(secret)])

    assert response.status_code == 200, response.text  # no CSRF token asked for
    assert response.json[0]["label"] == "true_positive"
    assert host.client.get("/any", headers=bearer(secret)).status_code == 401
    assert len(told) == 1
    data = told[0]
    assert data["key"].display_prefix == secret[:12]
    assert (data["url"], data["source"], data["token_type"], data["actor"]) == (
        FOUND_AT,
        "content",
        TYPE,
        None,
    )


# -- the documentation ----------------------------------------------------------------


def test_the_documented_regex_is_the_one_of_the_code() -> None:
    text = DOC.read_text()
    pattern = key_pattern("fsk").pattern
    assert f"```text\n{pattern}\n```" in text  # the one to register
    assert f"regex = '''{pattern}'''" in text  # the gitleaks rule


def test_the_leaks_example_runs(database_url: str) -> None:
    namespace: dict[str, Any] = {}
    try:
        with example_app_example("leaks.md", "leaks", database_url, namespace):
            pass  # the example asserts what it shows
    finally:
        server = namespace.get("server")
        if server is not None:
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
