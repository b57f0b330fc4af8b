"""Logs name keys by display prefix and never contain a secret."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
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
        apikeys.service.keys.revoke(apikeys.service.queries.get_by_display_prefix(secret[:12]))
    client.get("/v1/clients", headers=bearer(secret))

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "refused: revoked_api_key" in text and secret[:12] in text  # logs are useful...
    for value in (secret, typo, rotated):
        assert value[12:] not in text  # ...and never hold a secret


# -- the MCP SDK and the app's logging (issue #21) ---------------------------------------
# The SDK's MCPServer(...) runs logging.basicConfig() with a Rich handler: in a process
# whose root logger had no handler yet (a gunicorn worker, the CLI), every log line of the
# app, and gunicorn's tracebacks, came out in Rich's format. And each MCP request logged
# "Terminating session: None" at INFO.

NOISY = "mcp.server.streamable_http"
FLASK_LINE = re.compile(r"^\[[^\]]+\] WARNING in test_logging: the app's own line$")


@contextlib.contextmanager
def bare_root_logger() -> Iterator[logging.Logger]:
    """The root logger as in a process that configured no logging: no handler (pytest's
    own, which it adds for each phase of a test, are put back afterwards, and anything
    added meanwhile is removed)."""
    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    root, noisy = logging.getLogger(), logging.getLogger(NOISY)
    saved, level, noisy_level = root.handlers[:], root.level, noisy.level
    mcp_level = logging.getLogger("mcp").level
    for handler in saved:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    noisy.setLevel(logging.NOTSET)  # as in a fresh process
    try:
        yield root
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
        noisy.setLevel(noisy_level)
        logging.getLogger("mcp").setLevel(mcp_level)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _mcp_app(database_url: str) -> tuple[Flask, str]:
    from example_app import apikeys, create_app, db
    from example_app.cli import seed_demo_data
    from example_app.models import User

    app = create_app(
        {"TESTING": True, "SECRET_KEY": "test-secret", "SQLALCHEMY_DATABASE_URI": database_url}
    )
    with app.app_context():
        db.create_all()
        seed_demo_data()
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        secret = apikeys.service.keys.issue(bob, scopes=["client.read"], name="mcp").secret
        db.session.remove()
    return app, secret


def _list_tools(app: Flask, secret: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = app.test_client().post(
        "/mcp",
        json=body,
        headers={**bearer(secret), "Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 200, response.data[:300]
    assert response.get_json()["result"]["tools"]


def _dispose(app: Flask) -> None:
    from example_app import db

    with app.app_context():
        app.extensions["apikeys"].flush_usage(app)
        db.session.remove()
        db.engine.dispose()


def test_the_sdk_alone_would_configure_the_root_logger() -> None:
    """Why create_server exists: if this fails, the SDK stopped doing it."""
    pytest.importorskip("rich")
    from mcp.server.mcpserver import MCPServer

    with bare_root_logger() as root:
        MCPServer("plain")
        assert [type(h).__name__ for h in root.handlers] == ["RichHandler"]


def test_building_and_mounting_the_mcp_server_leaves_the_app_logging_alone(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("rich")  # what the SDK would switch the format to
    from flask_apikeys.contrib.mcp import create_server

    with bare_root_logger() as root:
        create_server("bare")
        app, secret = _mcp_app(database_url)  # builds MCPKeys(create_server(...)), mounts it
        try:
            _list_tools(app, secret)  # starts the mounted server in this process
            assert root.handlers == []
            assert root.level == logging.WARNING
            capsys.readouterr()
            app.logger.warning("the app's own line")
            lines = capsys.readouterr().err.splitlines()
            assert len(lines) == 1 and FLASK_LINE.match(lines[0]), lines  # Flask's, once
        finally:
            _dispose(app)


def test_an_mcp_request_logs_no_info_line_unless_the_host_asks(database_url: str) -> None:
    records = Records()
    with bare_root_logger() as root:
        root.addHandler(records)
        root.setLevel(logging.INFO)  # the host shows INFO lines
        app, secret = _mcp_app(database_url)
        try:
            _list_tools(app, secret)
            _list_tools(app, secret)
            assert not logging.getLogger(NOISY).isEnabledFor(logging.INFO)
            time.sleep(0.2)  # the transport closes after the answer, on the server's loop
            assert [r.getMessage() for r in records.records if r.name == NOISY] == []
        finally:
            _dispose(app)

        logging.getLogger(NOISY).setLevel(logging.NOTSET)  # another process, fresh
        logging.getLogger("mcp").setLevel(logging.INFO)  # whose host asks for the SDK's lines
        app, secret = _mcp_app(database_url)
        try:
            _list_tools(app, secret)
            assert logging.getLogger(NOISY).isEnabledFor(logging.INFO)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(r.name == NOISY for r in records.records):
                time.sleep(0.05)
            assert any("Terminating session" in r.getMessage() for r in records.records)
        finally:
            _dispose(app)
