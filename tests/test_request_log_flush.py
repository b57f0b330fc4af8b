"""The request log off the request path: no statement while a request runs, the flush
(by the flusher thread, from two processes, after a fork, after a failure, with a full
buffer) writes the rows; retention by age and per key, ``flask apikeys
prune-requests``, and settings refused at startup.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys.service import flushing
from flask_apikeys.service.requestlog import RequestLogBuffer
from tests.conftest import bearer
from tests.request_log_helpers import (
    _key_id,
    _rows,
    quiet_app_fixture,  # noqa: F401 (the quiet_app fixture)
)
from tests.statements import lookups, recorded_statements, writes


def _ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)


# -- off the request path -------------------------------------------------------------------


def test_no_statement_on_the_request_path_the_flush_writes_the_rows(host: Any) -> None:
    """As tests/test_hot_path.py counts: a logged write costs the key lookup alone."""
    host.app.config.update(APIKEYS_USAGE_FLUSH_INTERVAL=0, APIKEYS_REQUEST_LOG_READ_SAMPLE=1)
    secret = host.service.keys.issue(host.ann, "x", ["doc.read", "doc.write"]).secret
    host.module.db.session.remove()
    with recorded_statements() as statements:
        assert host.client.post("/write", headers=bearer(secret)).status_code == 200
        assert host.client.get("/read", headers=bearer(secret)).status_code == 200
    assert writes(statements) == []
    assert [s for s in statements if "api_key_requests" in s] == []
    assert len(lookups(statements)) <= 2
    assert host.module.apikeys.request_log(host.app).pending == 2
    with recorded_statements() as statements:
        assert host.module.apikeys.flush_request_log(host.app) == 2
    assert any(s.lstrip().upper().startswith("INSERT INTO API_KEY_REQUESTS") for s in statements)
    rows = host.service.requests.recent_requests(host.service.verifier.find_by_secret(secret))
    assert [(r.method, r.path) for r in rows] == [("GET", "/read"), ("POST", "/write")]


def test_the_flusher_thread_writes_the_rows(app: Flask, client: FlaskClient, make_key: Any) -> None:
    app.config.update(APIKEYS_USAGE_FLUSH_INTERVAL=0.05, APIKEYS_REQUEST_LOG_READ_SAMPLE=1)
    secret = make_key("bob@acme.test", ["client.read"])
    with recorded_statements() as statements:
        for _ in range(3):
            assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    assert writes(statements) == []  # the request thread wrote nothing
    deadline = time.monotonic() + 10
    rows: list[Any] = []
    while time.monotonic() < deadline and len(rows) < 3:
        time.sleep(0.05)
        rows = _rows(app, secret)
    assert len(rows) == 3
    assert flushing._FLUSHER is not None and flushing._FLUSHER.is_alive()


def test_two_processes_write_their_own_rows(app: Flask, make_key: Any) -> None:
    from example_app import apikeys, db

    key_id = _key_id(app, make_key("bob@acme.test", ["client.read"]))
    with app.app_context():
        engine, table = db.engine, apikeys.models.APIKeyRequest.__table__
    first, second = (RequestLogBuffer(engine, table, interval=0) for _ in range(2))
    first.record(key_id, "POST", "/from-first", 201, "10.0.0.1", at=_ago(2))
    second.record(key_id, "DELETE", "/from-second", 204, "10.0.0.2", at=_ago(1))
    assert second.flush() == 1 and first.flush() == 1
    assert first.flush() == 0
    got = {(r.path, r.status, r.ip) for r in _rows(app)}
    assert got == {("/from-first", 201, "10.0.0.1"), ("/from-second", 204, "10.0.0.2")}


def test_a_forked_child_starts_with_an_empty_log(app: Flask) -> None:
    from example_app import apikeys, db

    with app.app_context():
        log = RequestLogBuffer(db.engine, apikeys.models.APIKeyRequest.__table__, interval=0)
    log.record(1, "POST", "/x", 200)
    flushing.after_fork_in_child()  # what os.register_at_fork runs in a child
    assert log.pending == 0
    assert log.flush() == 0


def test_a_failed_flush_keeps_the_rows_and_a_full_buffer_drops_the_oldest(
    app: Flask, make_key: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from example_app import apikeys, db

    key_id = _key_id(app, make_key("bob@acme.test", ["client.read"]))
    with app.app_context():
        table = apikeys.models.APIKeyRequest.__table__
        engine = db.engine
    broken_engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")  # no tables
    broken = RequestLogBuffer(broken_engine, table, interval=0, max_buffered=2)  # holds 4
    for n in range(3):
        broken.record(key_id, "POST", f"/{n}", 200, at=_ago(60 - n))
    with pytest.raises(sa.exc.OperationalError):
        broken.flush()
    assert broken.pending == 3
    for n in range(3, 6):
        broken.record(key_id, "POST", f"/{n}", 200, at=_ago(60 - n))
    assert broken.pending == 4
    with caplog.at_level(logging.WARNING, logger="flask_apikeys"):
        assert broken.flush_quietly() == 0  # never raises
    assert "could not write the request log" in caplog.text
    assert "dropped 2 requests" in caplog.text
    working = RequestLogBuffer(engine, table, interval=0)
    working.restore(broken.snapshot())
    assert working.flush() == 4
    assert [r.path for r in _rows(app)] == ["/2", "/3", "/4", "/5"]
    broken_engine.dispose()


# -- retention -------------------------------------------------------------------------------


def test_the_flusher_prunes_by_age_and_per_key(app: Flask, make_key: Any) -> None:
    from example_app import apikeys, db

    busy = _key_id(app, make_key("bob@acme.test", ["client.read"]))
    quiet = _key_id(app, make_key("bob@acme.test", ["client.read"]))
    with app.app_context():
        engine, table = db.engine, apikeys.models.APIKeyRequest.__table__
    now = dt.datetime.now(dt.UTC)
    log = RequestLogBuffer(
        engine, table, interval=0, retention=dt.timedelta(days=30), max_per_key=20
    )
    log.record(quiet, "POST", "/old", 200, at=now - dt.timedelta(days=31))
    log.record(quiet, "POST", "/recent", 200, at=now - dt.timedelta(days=29))
    for n in range(25):
        log.record(busy, "POST", f"/{n}", 200, at=now - dt.timedelta(minutes=25 - n))
    assert log.flush() == 27
    rows = _rows(app)
    assert [r.path for r in rows if r.key_id == quiet] == ["/recent"]
    assert [r.path for r in rows if r.key_id == busy] == [f"/{n}" for n in range(5, 25)]


def test_prune_requests_command(quiet_app: Flask, make_key: Any) -> None:
    from example_app import apikeys, db

    key_id = _key_id(quiet_app, make_key("bob@acme.test", ["client.read"]))
    with quiet_app.app_context():
        engine, table = db.engine, apikeys.models.APIKeyRequest.__table__
    now = dt.datetime.now(dt.UTC)
    log = RequestLogBuffer(engine, table, interval=0, retention=None, max_per_key=None)
    for n in range(10):
        log.record(key_id, "POST", f"/{n}", 200, at=now - dt.timedelta(days=10 - n, hours=-1))
    log.flush()
    runner = quiet_app.test_cli_runner()
    result = runner.invoke(args=["apikeys", "prune-requests", "--older-than", "5"])
    assert result.exit_code == 0, result.output
    assert "Deleted 5 logged requests." in result.stderr
    result = runner.invoke(args=["apikeys", "prune-requests", "--max-per-key", "2"])
    assert result.exit_code == 0, result.output
    assert [r.path for r in _rows(quiet_app)] == ["/8", "/9"]


def test_bad_settings_are_refused_at_startup(
    quiet_app: Flask, client: FlaskClient, make_key: Any
) -> None:
    from example_app import apikeys

    quiet_app.config["APIKEYS_REQUEST_LOG_READ_SAMPLE"] = 2
    with pytest.raises(RuntimeError, match="APIKEYS_REQUEST_LOG_READ_SAMPLE"):
        apikeys.hot_path(quiet_app)
    quiet_app.config.update(APIKEYS_REQUEST_LOG_READ_SAMPLE=1, APIKEYS_REQUEST_LOG=False)
    secret = make_key("bob@acme.test", ["client.read"])
    assert client.post("/v1/invoices", headers=bearer(secret), json={}).status_code == 403
    assert apikeys.request_log(quiet_app) is None
    assert apikeys.flush_request_log(quiet_app) == 0
    assert _rows(quiet_app) == []
