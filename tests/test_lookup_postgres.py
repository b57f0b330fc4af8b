"""The PostgreSQL lookup on the wire: one prepared statement, one execution per request.

These tests run on PostgreSQL in both passes of the suite (they fail under ``CI`` when it
is missing) and read libpq's own protocol trace of the lookup's connection, so they see
exactly what the server is sent.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import _configured_postgres, _fresh_schema, bearer

LOOKUP = "flask_apikeys_key_lookup"


def _example_app(url: str, **config: Any) -> Flask:
    from example_app import create_app, db
    from example_app.cli import seed_demo_data

    app = create_app({"TESTING": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": url, **config})
    with app.app_context():
        db.create_all()
        seed_demo_data()
    return app


@pytest.fixture
def pg_url() -> Iterator[str]:
    with _fresh_schema(_configured_postgres()) as url:
        yield url


@pytest.fixture
def pg_app(pg_url: str) -> Iterator[Flask]:
    app = _example_app(pg_url)
    yield app
    _dispose(app)


def _dispose(app: Flask) -> None:
    from example_app import db

    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def _key(app: Flask) -> str:
    import sqlalchemy as sa

    from example_app import apikeys, db
    from example_app.models import User

    with app.app_context():
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        return apikeys.service.issue(bob, name="wire", scopes=["client.read"]).secret


def _lookup_pgconn(app: Flask) -> Any:
    """libpq's connection of the lookup, for this thread (the test client's)."""
    from example_app import apikeys

    with app.app_context():
        lookup = apikeys.service.key_lookup
    return lookup._local.conn.connection.dbapi_connection.pgconn


def _traced(app: Flask, client: FlaskClient, secret: str, requests: int) -> list[str]:
    """The frontend messages the lookup's connection sends during *requests* requests."""
    from psycopg import pq

    pgconn = _lookup_pgconn(app)
    with tempfile.TemporaryFile("w+b") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            statuses = [
                client.get("/v1/clients", headers=bearer(secret)).status_code
                for _ in range(requests)
            ]
        finally:
            pgconn.untrace()
        trace.seek(0)
        lines = trace.read().decode().splitlines()
    assert statuses == [200] * requests
    return [line for line in lines if line.startswith("F\t")]


def _message(line: str) -> str:
    return line.split("\t")[2]


def test_the_lookup_is_prepared_once_and_executed_once_per_request(pg_app: Flask) -> None:
    client = pg_app.test_client()
    secret = _key(pg_app)
    for _ in range(2):  # the first loads through the ORM, the second opens the connection
        assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200

    sent = _traced(pg_app, client, secret, 3)

    # Three executions of the statement prepared by the first request: no Parse (the
    # statement is not sent again), no BEGIN or ROLLBACK, nothing else.
    assert [_message(line) for line in sent] == ["Bind", "Describe", "Execute", "Sync"] * 3
    binds = [line for line in sent if _message(line) == "Bind"]
    assert all(f'"{LOOKUP}"' in line for line in binds)
    assert all(secret not in line for line in sent)  # the hash is sent, never the secret


def test_prepare_threshold_none_is_respected(pg_url: str) -> None:
    """Behind PgBouncer's transaction pooling nothing may be prepared: psycopg's
    ``prepare_threshold=None`` turns the lookup's prepared statement off too."""
    app = _example_app(
        pg_url, SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"prepare_threshold": None}}
    )
    try:
        client = app.test_client()
        secret = _key(app)
        for _ in range(2):
            assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
        sent = _traced(app, client, secret, 2)
    finally:
        _dispose(app)
    assert [_message(line) for line in sent] == ["Parse", "Bind", "Describe", "Execute", "Sync"] * 2
    assert all(LOOKUP not in line for line in sent)


@pytest.mark.parametrize("sabotage", ["DEALLOCATE ALL", "terminate"])
def test_a_lost_statement_or_connection_is_recovered(pg_app: Flask, sabotage: str) -> None:
    """A pooler's DISCARD, a server restart or a killed backend: the next request still
    gets its answer, on a fresh connection, and a revocation is still seen."""
    from example_app import apikeys, db
    from flask_apikeys import parse_key

    client = pg_app.test_client()
    secret = _key(pg_app)
    for _ in range(2):
        assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    pgconn = _lookup_pgconn(pg_app)
    if sabotage == "terminate":
        with pg_app.app_context():
            db.session.execute(
                db.text("SELECT pg_terminate_backend(:pid)"), {"pid": pgconn.backend_pid}
            )
            db.session.commit()
    else:
        assert pgconn.exec_(sabotage.encode()).status == 1  # COMMAND_OK

    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    assert _lookup_pgconn(pg_app) is not pgconn  # a fresh connection took over

    with pg_app.app_context():
        apikeys.service.revoke(
            apikeys.service.get_by_display_prefix(parse_key(secret).display_prefix)
        )
    response = client.get("/v1/clients", headers=bearer(secret))
    assert (response.status_code, response.json["error"]) == (401, "revoked_api_key")


def test_under_gevent_the_lookup_waits_as_psycopg_does(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gevent's workers: psycopg waits for the server cooperatively; a blocking libpq
    call would stall every greenlet of the worker, so the lookup uses psycopg's cursor."""
    import types

    from example_app import apikeys
    from flask_apikeys.lookup import _PreparedSelect

    monkey = types.SimpleNamespace(is_module_patched=lambda name: name == "select")
    monkeypatch.setitem(sys.modules, "gevent.monkey", monkey)
    app = _example_app(pg_url)
    try:
        client = app.test_client()
        secret = _key(app)
        for _ in range(3):
            assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
        with app.app_context():
            select = apikeys.service.key_lookup._local.select
    finally:
        _dispose(app)
    assert select is not None and not isinstance(select, _PreparedSelect)
