"""Leaked keys: GitHub's public keys, which sign its reports. They are fetched once,
then only when a report names an identifier not seen yet, at most once per interval;
a key GitHub adds later is fetched when named, a retired one is refused; keys that
cannot be fetched answer 503; plain HTTP needs explicit configuration; and without
``cryptography`` the endpoint says what to install. GitHub is played for real by
tests/leak_helpers.py.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

pytest.importorskip("cryptography", reason="the leaks extra is not installed")

from tests.leak_helpers import (
    ENDPOINT,
    GitHub,
    Signer,
    github_fixture,  # noqa: F401 (the github fixture)
    leak_app_fixture,  # noqa: F401 (the leak_app fixture)
    match,
)


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


def test_plain_http_keys_need_explicit_configuration(database_url: str) -> None:
    from example_app import create_app
    from flask_apikeys.service.leak_signatures import GitHubPublicKeys

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
    from flask_apikeys.web.leaks import create_leak_blueprint

    monkeypatch.setitem(sys.modules, "cryptography", None)  # import cryptography fails
    with pytest.raises(ImportError, match=re.escape("pip install 'flask-apikeys[leaks]'")):
        create_leak_blueprint()
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    assert not any(rule.rule == ENDPOINT for rule in app.url_map.iter_rules())
