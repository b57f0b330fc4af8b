"""Usage counts and last-used times: buffered per process, flushed with atomic increments."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys import parse_key
from flask_apikeys.service import flushing
from flask_apikeys.service.flushing import after_fork_in_child
from flask_apikeys.service.usage import UsageBuffer, flush_all
from tests.conftest import bearer
from tests.statements import recorded_statements, writes

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _models() -> Any:
    from example_app import apikeys

    return apikeys.models


def _key(app: Flask, secret: str) -> Any:
    from example_app import apikeys, db

    with app.app_context():
        key = apikeys.service.queries.get_by_display_prefix(parse_key(secret).display_prefix)
        db.session.expunge(key)
        return key


def _buffer(app: Flask, **kwargs: Any) -> UsageBuffer:
    from example_app import db

    models = _models()
    with app.app_context():
        engine = db.engine
    kwargs.setdefault("interval", 0)
    return UsageBuffer(engine, models.APIKey.__table__, models.APIKeyUsageDay.__table__, **kwargs)


def _days(app: Flask, key_id: int) -> dict[dt.date, int]:
    from example_app import db

    usage = _models().APIKeyUsageDay
    with app.app_context():
        rows = db.session.execute(
            sa.select(usage.day, usage.count).where(usage.key_id == key_id)
        ).all()
        return {day: count for day, count in rows}


@pytest.fixture
def quiet_app(app: Flask) -> Flask:
    """The example app with the flusher thread off: tests flush by hand."""
    app.config["APIKEYS_USAGE_FLUSH_INTERVAL"] = 0
    return app


def test_verified_requests_write_nothing_until_the_flush(
    quiet_app: Flask, client: FlaskClient, make_key: Any
) -> None:
    from example_app import apikeys

    secret = make_key("bob@acme.test", ["client.read"])
    with recorded_statements() as statements:
        for _ in range(5):
            assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    assert statements  # the recorder sees the requests' reads
    assert writes(statements) == []
    assert _key(quiet_app, secret).usage_count == 0

    with recorded_statements() as statements:
        assert apikeys.flush_usage(quiet_app) == 5
    assert any(s.lstrip().upper().startswith("UPDATE") for s in statements)
    key = _key(quiet_app, secret)
    assert key.usage_count == 5
    assert key.last_used_ip == "127.0.0.1"
    assert key.last_used_at is not None
    assert _days(quiet_app, key.id) == {key.last_used_at.date(): 5}
    assert apikeys.flush_usage(quiet_app) == 0  # nothing left


def test_refused_and_rate_limited_requests_are_not_counted(
    quiet_app: Flask, client: FlaskClient, make_key: Any
) -> None:
    from example_app import apikeys

    secret = make_key("bob@acme.test", ["client.read"], rate_limit="2/minute")
    statuses = [client.get("/v1/clients", headers=bearer(secret)).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    typo = secret[:-1] + ("x" if secret[-1] != "x" else "y")  # never the key itself
    assert client.get("/v1/clients", headers=bearer(typo)).status_code == 401
    assert apikeys.flush_usage(quiet_app) == 2
    assert _key(quiet_app, secret).usage_count == 2


def test_two_processes_flushing_into_one_database_add_up(quiet_app: Flask, make_key: Any) -> None:
    key_id = _key(quiet_app, make_key("bob@acme.test", ["client.read"])).id
    first, second = _buffer(quiet_app), _buffer(quiet_app)
    for n in range(7):
        first.record(key_id, "10.0.0.1", T0 + dt.timedelta(seconds=n))
    for n in range(5):
        second.record(key_id, "10.0.0.2", T0 + dt.timedelta(days=1, seconds=n))
    assert second.flush() == 5
    assert first.flush() == 7
    first.record(key_id, "10.0.0.1", T0)
    assert first.flush() == 1
    from example_app import apikeys, db

    with quiet_app.app_context():
        key = db.session.get(apikeys.models.APIKey, key_id)
        assert key.usage_count == 13
        # The later flush of an older time did not move last use backwards.
        assert key.last_used_at == T0 + dt.timedelta(days=1, seconds=4)
        assert key.last_used_ip == "10.0.0.2"
    assert _days(quiet_app, key_id) == {T0.date(): 8, T0.date() + dt.timedelta(days=1): 5}


def test_last_used_moves_only_by_the_resolution(quiet_app: Flask, make_key: Any) -> None:
    from example_app import apikeys, db

    key_id = _key(quiet_app, make_key("bob@acme.test", ["client.read"])).id
    buffer = _buffer(quiet_app, last_used_resolution=60)

    def last_used() -> tuple[dt.datetime, str]:
        with quiet_app.app_context():
            key = db.session.get(apikeys.models.APIKey, key_id)
            return key.last_used_at, key.last_used_ip

    buffer.record(key_id, "10.0.0.1", T0)
    buffer.flush()
    assert last_used() == (T0, "10.0.0.1")
    buffer.record(key_id, "10.0.0.2", T0 + dt.timedelta(seconds=30))
    buffer.flush()
    assert last_used() == (T0, "10.0.0.1")  # within the resolution: not written
    buffer.record(key_id, "10.0.0.3", T0 + dt.timedelta(seconds=61))
    buffer.flush()
    assert last_used() == (T0 + dt.timedelta(seconds=61), "10.0.0.3")


def test_concurrent_recording_loses_nothing(quiet_app: Flask, make_key: Any) -> None:
    key_id = _key(quiet_app, make_key("bob@acme.test", ["client.read"])).id
    buffer = _buffer(quiet_app)
    threads, per_thread = 8, 500
    flushed: list[int] = []

    def work() -> None:
        for _ in range(per_thread):
            buffer.record(key_id, "10.0.0.1")

    def flusher() -> None:
        for _ in range(20):
            flushed.append(buffer.flush())

    workers = [threading.Thread(target=work) for _ in range(threads)]
    workers.append(threading.Thread(target=flusher))
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)
    flushed.append(buffer.flush())
    assert sum(flushed) == threads * per_thread
    from example_app import apikeys, db

    with quiet_app.app_context():
        assert db.session.get(apikeys.models.APIKey, key_id).usage_count == threads * per_thread


def test_a_failed_flush_keeps_the_usage_for_the_next_one(
    quiet_app: Flask, make_key: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    key_id = _key(quiet_app, make_key("bob@acme.test", ["client.read"])).id
    models = _models()
    broken = UsageBuffer(
        sa.create_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}"),  # no tables there
        models.APIKey.__table__,
        models.APIKeyUsageDay.__table__,
        interval=0,
    )
    for _ in range(3):
        broken.record(key_id, "10.0.0.1", T0)
    with pytest.raises(sa.exc.OperationalError):
        broken.flush()
    assert broken.pending == 3
    with caplog.at_level(logging.ERROR, logger="flask_apikeys"):
        assert broken.flush_quietly() == 0  # the timer and exit hooks never raise
    assert "could not write key usage" in caplog.text
    assert broken.pending == 3
    broken.record(key_id, "10.0.0.1", T0)
    # The database comes back (here: the buffer's usage moves to the real one).
    working = _buffer(quiet_app)
    working.restore(broken.snapshot())
    assert working.flush() == 4
    broken.engine.dispose()


def test_the_flusher_thread_writes_when_max_buffered_is_reached(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    from example_app import apikeys, db

    app.config.update(APIKEYS_USAGE_FLUSH_INTERVAL=3600, APIKEYS_USAGE_MAX_BUFFERED=4)
    secret = make_key("bob@acme.test", ["client.read"])
    for _ in range(4):
        assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    key_id = _key(app, secret).id
    deadline = time.monotonic() + 10
    count = 0
    while time.monotonic() < deadline:
        with app.app_context():
            count = db.session.execute(
                sa.select(apikeys.models.APIKey.usage_count).where(
                    apikeys.models.APIKey.id == key_id
                )
            ).scalar_one()
        if count == 4:
            break
        time.sleep(0.05)
    assert count == 4


def test_flush_all_writes_every_buffer_of_the_process(
    quiet_app: Flask, client: FlaskClient, make_key: Any
) -> None:
    secret = make_key("bob@acme.test", ["client.read"])
    for _ in range(3):
        client.get("/v1/clients", headers=bearer(secret))
    flush_all()
    assert _key(quiet_app, secret).usage_count == 3


def test_a_forked_child_starts_with_an_empty_buffer(quiet_app: Flask, make_key: Any) -> None:
    key_id = _key(quiet_app, make_key("bob@acme.test", ["client.read"])).id
    buffer = _buffer(quiet_app)
    buffer.record(key_id, "10.0.0.1")
    flusher = flushing._FLUSHER
    try:
        after_fork_in_child()  # what os.register_at_fork runs in a child
    finally:
        flushing._FLUSHER = flusher  # this process is not a child: keep its flusher
    assert buffer.pending == 0
    assert buffer.flush() == 0


def test_tracking_can_be_turned_off(quiet_app: Flask, client: FlaskClient, make_key: Any) -> None:
    from example_app import apikeys

    quiet_app.config["APIKEYS_USAGE_TRACKING"] = False
    secret = make_key("bob@acme.test", ["client.read"])
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    assert apikeys.usage_buffer(quiet_app) is None
    assert apikeys.flush_usage(quiet_app) == 0
