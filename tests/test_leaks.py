"""Leaked keys: GitHub's signed reports revoke them at once; so does ``report-leak``.

GitHub is played for real: a key pair made here with ``cryptography``, its public key
served by a local HTTP server in GitHub's format, reports signed as GitHub signs them.
The e-mails go through a real SMTP server (tests/smtp.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys import generate_key, key_pattern
from tests.conftest import bearer

pytest.importorskip("cryptography", reason="the leaks extra is not installed")

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.docs_examples import example_app_example

ENDPOINT = "/security/github-secret-scanning"
FOUND_AT = "https://github.com/octo/app/blob/5e2b1f0/settings.py"
TYPE = "ledgerly_api_key"
DOC = Path(__file__).resolve().parent.parent / "docs" / "leaks.md"


@dataclass
class Signer:
    """A signing key as GitHub holds one: it signs raw bodies, ECDSA P-256 / SHA-256."""

    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def identifier(self) -> str:
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()

    def entry(self) -> dict[str, Any]:
        pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"key_identifier": self.identifier, "key": pem.decode(), "is_current": True}

    def headers(self, body: bytes, identifier: str | None = None) -> dict[str, str]:
        signature = self.private.sign(body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "Github-Public-Key-Identifier": identifier or self.identifier,
            "Github-Public-Key-Signature": base64.b64encode(signature).decode(),
        }


class GitHub:
    """GitHub's public keys endpoint on 127.0.0.1, counting the fetches it answers."""

    def __init__(self) -> None:
        self.signer = Signer()
        self.document: dict[str, Any] = {"public_keys": [self.signer.entry()]}
        self.status = 200
        self.hits = 0
        github = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                github.hits += 1
                body = json.dumps(github.document).encode() if github.status == 200 else b"no"
                self.send_response(github.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/meta/public_keys"

    def report(
        self, client: FlaskClient, body: bytes | list[dict[str, Any]], **headers: str
    ) -> Any:
        """POST *body* (bytes as they are, or matches as JSON) signed by GitHub's key."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return client.post(ENDPOINT, data=raw, headers={**self.signer.headers(raw), **headers})


@pytest.fixture
def github() -> Iterator[GitHub]:
    github = GitHub()
    thread = threading.Thread(target=github.server.serve_forever, daemon=True)
    thread.start()
    yield github
    github.server.shutdown()
    github.server.server_close()
    thread.join()


@pytest.fixture
def leak_app(app: Flask, github: GitHub) -> Flask:
    """The example app, fetching GitHub's keys from the local server (plain HTTP: opted in)."""
    app.config["APIKEYS_LEAK_PUBLIC_KEYS_URL"] = github.url
    app.config["APIKEYS_LEAK_ALLOW_HTTP"] = True
    return app


def match(token: str, url: str = FOUND_AT) -> dict[str, str]:
    return {"token": token, "type": TYPE, "url": url, "source": "content"}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def events(app: Flask) -> list[tuple[str, dict[str, Any] | None]]:
    from example_app import apikeys, db

    with app.app_context():
        Event = apikeys.models.APIKeyEvent
        rows = db.session.scalars(sa.select(Event).order_by(Event.id))
        return [(row.event, row.details) for row in rows]


def key_row(app: Flask, secret: str) -> Any:
    from example_app import apikeys, db

    with app.app_context():
        key = db.session.scalar(
            sa.select(apikeys.models.APIKey).where(
                apikeys.models.APIKey.key_hash == apikeys.service.hash(secret)
            )
        )
        db.session.expunge(key)
        return key


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


def test_unknown_identifiers_fetch_the_keys_at_most_once_per_interval(
    leak_app: Flask, client: FlaskClient, github: GitHub
) -> None:
    for _ in range(4):  # forged identifiers, one after another
        response = github.report(client, [], **Signer().headers(b"[]"))
        assert response.status_code == 403
        assert response.json["error"] == "unknown_key_identifier"
    assert github.hits == 1  # the first one fetched; the interval (60 s) holds the others
    assert github.report(client, []).status_code == 200  # GitHub's own key: from the cache
    assert github.hits == 1


def test_a_key_github_adds_later_is_fetched_when_a_report_names_it(
    leak_app: Flask, client: FlaskClient, make_key: Any, github: GitHub
) -> None:
    leak_app.config["APIKEYS_LEAK_KEYS_REFRESH_INTERVAL"] = 0
    bob = make_key("bob@acme.test", ["client.read"])
    assert github.report(client, []).status_code == 200
    old = github.signer
    github.signer = Signer()  # GitHub rotates its signing key
    github.document = {"public_keys": [github.signer.entry()]}

    response = github.report(client, [match(bob)])

    assert response.status_code == 200 and response.json[0]["label"] == "true_positive"
    assert github.hits == 2
    retired = old.headers(b"[]")
    assert client.post(ENDPOINT, data=b"[]", headers=retired).json["error"] == (
        "unknown_key_identifier"
    )


def test_keys_that_cannot_be_fetched_answer_503_without_a_fetch_per_request(
    leak_app: Flask, client: FlaskClient, github: GitHub
) -> None:
    github.status = 500
    for _ in range(2):
        response = github.report(client, [])
        assert response.status_code == 503
        assert response.json["error"] == "public_keys_unavailable"
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert github.hits == 1


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
    from flask_apikeys.views.leaks import create_leak_blueprint

    app = host.app
    CSRFProtect(app)
    app.config.update(
        APIKEYS_LEAK_PUBLIC_KEYS_URL=github.url,
        APIKEYS_LEAK_ALLOW_HTTP=True,
    )
    app.register_blueprint(create_leak_blueprint(), url_prefix="/security")
    secret = host.service.issue(host.ann, "deploy", ["doc.read"]).secret
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


def test_plain_http_keys_need_explicit_configuration(database_url: str) -> None:
    from example_app import create_app
    from flask_apikeys.leak_signatures import GitHubPublicKeys

    with pytest.raises(RuntimeError, match="APIKEYS_LEAK_ALLOW_HTTP"):
        create_app(
            {
                "SQLALCHEMY_DATABASE_URI": database_url,
                "APIKEYS_LEAK_PUBLIC_KEYS_URL": "http://127.0.0.1:9/keys",
            }
        )
    with pytest.raises(RuntimeError, match="https://"):
        GitHubPublicKeys("file:///etc/passwd", allow_http=True)
    assert GitHubPublicKeys("http://127.0.0.1:9/keys", allow_http=True).url.startswith("http:")


def test_without_cryptography_the_endpoint_says_what_to_install(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from example_app import create_app
    from flask_apikeys.views.leaks import create_leak_blueprint

    monkeypatch.setitem(sys.modules, "cryptography", None)  # import cryptography fails
    with pytest.raises(ImportError, match=re.escape("pip install 'flask-apikeys[leaks]'")):
        create_leak_blueprint()
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    assert not any(rule.rule == ENDPOINT for rule in app.url_map.iter_rules())


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
