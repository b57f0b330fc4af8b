"""Shared fixtures.

The database comes from ``TEST_DATABASE_URL`` (default: a SQLite file per test).
With PostgreSQL, each test process works in a schema of its own, so several runs can
share one server. Under ``CI``, a configured service that cannot be reached fails the
run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings

import tests.statements  # noqa: F401  (counts statements at the driver, from the first connection)

# Timing deadlines make property tests flaky on a busy 2-core machine; what they check
# does not depend on speed.
settings.register_profile("apikeys", deadline=None)
settings.load_profile("apikeys")

# Werkzeug's default password hash (scrypt) takes about half a second, and every ``app``
# fixture seeds three users. The example app reads PASSWORD_HASH_METHOD (unset outside
# the tests: scrypt); every app the tests create, here or in a ``flask`` subprocess,
# hashes with one round of PBKDF2 instead. What is checked does not depend on the method.
os.environ.setdefault("FLASK_PASSWORD_HASH_METHOD", "pbkdf2:sha256:1")

IN_CI = bool(os.environ.get("CI"))
DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


def service_unavailable(what: str, reason: str) -> None:
    """Skip on a bare machine; fail under CI, where every service must be there."""
    message = f"{what} unavailable: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)


def _normalise(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


# With pytest-xdist (scripts/test runs ``-n 2 --dist loadgroup``), the tests of one group
# run one after another on one worker, while the other worker runs the rest:
# - "redis": every test that talks to Redis, the servers' clusters included. One of them
#   counts Redis' commands (INFO total_commands_processed): no other test may use Redis
#   meanwhile.
# - "servers", "browser": real servers under load, and Chromium, one test at a time.
# - each MCP module starts its servers once, on one worker.
# - "packaging": one ``python -m build`` in the checkout at a time.
# The groups go by node id (pytest-xdist's own xdist_group marks are lost on pytest 9,
# whose node ids can no longer be rewritten), through the scheduler below.
_XDIST_GROUPS = {
    "tests/servers/test_scale_out.py": "redis",
    "tests/test_ratelimit.py": "redis",
    "tests/servers/": "servers",
    "tests/browser/": "browser",
    "tests/mcp/": "",  # "" = the module
    "tests/test_packaging.py": "packaging",
}


def xdist_group(nodeid: str) -> str | None:
    """The group of the test *nodeid*, or None when it may run beside any other."""
    path = nodeid.split("::", 1)[0]
    for prefix, group in _XDIST_GROUPS.items():
        if path.startswith(prefix):
            return group or path
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid) or nodeid

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that talks to Redis must be in the "redis" group (see above)."""
    for item in items:
        uses_redis = item.get_closest_marker("redis") or "redis_url" in getattr(
            item, "fixturenames", ()
        )
        if uses_redis and xdist_group(item.nodeid) != "redis":
            raise pytest.UsageError(
                f"{item.nodeid} uses Redis: add its module to _XDIST_GROUPS as 'redis' in "
                "tests/conftest.py"
            )


@pytest.fixture(autouse=True)
def _push_request_context() -> Iterator[None]:
    """Replace pytest-flask's fixture of this name, which keeps one request context
    pushed for the whole test: every client request would then share one ``g``, so
    Flask-Login's cached user would leak from one request (or client) to the next.
    Real requests never share ``g``; neither do these tests."""
    yield


@contextmanager
def _fresh_schema(url: str) -> Iterator[str]:
    """A URL whose connections live in a new PostgreSQL schema, dropped afterwards."""
    schema = f"apikeys_test_{uuid.uuid4().hex[:12]}"
    try:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # any connection failure
        service_unavailable("PostgreSQL", str(exc).splitlines()[0])
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _configured_postgres() -> str:
    url = _normalise(DATABASE_URL or os.environ.get("TEST_POSTGRES_URL", ""))
    if not url.startswith("postgresql"):
        service_unavailable("PostgreSQL", "set TEST_DATABASE_URL=postgresql://...")
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL with a schema of its own for the whole test session."""
    with _fresh_schema(_configured_postgres()) as url:
        yield url


@pytest.fixture
def database_url(tmp_path: Any) -> Iterator[str]:
    """The database for one test: a fresh PostgreSQL schema when configured, else SQLite."""
    if DATABASE_URL.startswith("postgres"):
        with _fresh_schema(_configured_postgres()) as url:
            yield url
    elif DATABASE_URL:
        yield DATABASE_URL
    else:
        yield f"sqlite:///{tmp_path / 'test.sqlite'}"


@pytest.fixture
def redis_url() -> str:
    return reachable_redis_url()


def reachable_redis_url() -> str:
    """``TEST_REDIS_URL`` (or the local default) once it answers a PING."""
    url = REDIS_URL or "redis://127.0.0.1:6379/15"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        if not REDIS_URL and not IN_CI:
            pytest.skip(f"Redis unavailable: {exc}")
        service_unavailable("Redis", str(exc))
    return url


@pytest.fixture
def app(database_url: str, tmp_path: Any) -> Iterator[Flask]:
    """The example app on a fresh database, seeded with the demo data."""
    from example_app import create_app, db
    from example_app.cli import seed_demo_data

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": database_url,
        }
    )
    app.instance_path = str(tmp_path)
    with app.app_context():
        db.create_all()
        seed_demo_data()
    yield app
    with app.app_context():
        # Write what the app buffered now, while its engine is open: a flush after the
        # engine is disposed would open a connection nobody closes.
        app.extensions["apikeys"].flush_usage(app)
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_key(app: Flask) -> Any:
    """``make_key("bob@acme.test", ["client.read"], **issue_kwargs) -> secret``."""
    from example_app import apikeys, db
    from example_app.models import User

    def make(email: str, scopes: list[str] | None = None, **kwargs: Any) -> str:
        with app.app_context():
            user = db.session.scalar(sa.select(User).where(User.email == email))
            kwargs.setdefault("name", "test key")
            issued = apikeys.service.issue(user, scopes=scopes or [], **kwargs)
            return issued.secret

    return make


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def host(database_url: str) -> Iterator[Any]:
    """The minimal host of tests/hostapp.py, inside an app context, with two accounts."""
    from tests import hostapp

    app = hostapp.create_app(database_url)
    with app.app_context():
        hostapp.db.create_all()
        ann = hostapp.Account(email="ann@example.test")
        ben = hostapp.Account(email="ben@example.test")
        hostapp.db.session.add_all([ann, ben])
        hostapp.db.session.commit()
        hostapp.PERMISSIONS.clear()
        hostapp.PERMISSIONS.update(
            {
                "ann@example.test": {"api_key.create", "doc.read", "doc.write"},
                "ben@example.test": {"api_key.create", "doc.read"},
            }
        )
        yield HostFixture(app, hostapp, ann, ben)
        hostapp.apikeys.flush_usage(app)  # before the engine goes
        hostapp.db.session.remove()
        hostapp.db.drop_all()
        hostapp.db.engine.dispose()


class HostFixture:
    def __init__(self, app: Flask, module: Any, ann: Any, ben: Any) -> None:
        self.app, self.module, self.ann, self.ben = app, module, ann, ben
        self.client = app.test_client()

    @property
    def service(self) -> Any:
        return self.module.apikeys.service

    @property
    def permissions(self) -> dict[str, set[str]]:
        return self.module.PERMISSIONS  # type: ignore[no-any-return]
