"""Logs name keys by display prefix and never contain a secret."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import bearer


def test_no_secret_reaches_a_log_line(
    app: Flask, client: FlaskClient, make_key: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from example_app import apikeys

    caplog.set_level(logging.DEBUG)
    secret = make_key("bob@acme.test", ["client.read"])
    typo = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for headers in (bearer(secret), bearer(typo), {"X-API-Key": secret}):
        client.get("/v1/clients", headers=headers)
        client.get("/v1/invoices", headers=headers)
    runner = app.test_cli_runner()
    rotated = runner.invoke(args=["apikeys", "rotate", secret[:12], "--grace", "1h"]).stdout.strip()
    with app.app_context():
        apikeys.service.revoke(apikeys.service.get_by_display_prefix(secret[:12]))
    client.get("/v1/clients", headers=bearer(secret))

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "refused: revoked_api_key" in text and secret[:12] in text  # logs are useful...
    for value in (secret, typo, rotated):
        assert value[12:] not in text  # ...and never hold a secret
