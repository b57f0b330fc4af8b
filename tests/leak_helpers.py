"""GitHub played for real, for tests/test_leaks*.py: a key pair made here with
``cryptography`` (:class:`Signer`), its public key served by a local HTTP server in
GitHub's format (:class:`GitHub` and the ``github`` fixture), reports signed as GitHub
signs them; the ``leak_app`` fixture, and what the tests read back (events, key rows).
Not a test module. It needs ``cryptography`` (the leaks extra): the modules that import
it skip first when it is missing, and import the fixtures they use by name, as
``github_fixture`` and ``leak_app_fixture`` (so that no test's argument shadows an
import).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

ENDPOINT = "/security/github-secret-scanning"
FOUND_AT = "https://github.com/octo/app/blob/5e2b1f0/settings.py"
TYPE = "ledgerly_api_key"


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


@pytest.fixture(name="github")
def github_fixture() -> Iterator[GitHub]:
    github = GitHub()
    thread = threading.Thread(target=github.server.serve_forever, daemon=True)
    thread.start()
    yield github
    github.server.shutdown()
    github.server.server_close()
    thread.join()


@pytest.fixture(name="leak_app")
def leak_app_fixture(app: Flask, github: GitHub) -> Flask:
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
                apikeys.models.APIKey.key_hash == apikeys.service.context.hash(secret)
            )
        )
        db.session.expunge(key)
        return key
