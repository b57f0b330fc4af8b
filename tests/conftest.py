"""Shared fixtures.

The database comes from ``TEST_DATABASE_URL`` (default: a SQLite file per test).
With PostgreSQL, each test process works in a schema of its own, so several runs can
share one server. Under ``CI``, a configured service that cannot be reached fails the
run instead of skipping.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings
from jinja2.bccache import Bucket, BytecodeCache

import tests.statements  # noqa: F401  (counts statements at the driver, from the first connection)
from tests.pages.conftest import Browser
from tests.xdist_groups import GroupScheduling, longest_first, xdist_group

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


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` by tests/xdist_groups.py's groups (see there why)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    return GroupScheduling(config, log)


# One Redis server serves every test run on the machine (each with a database number of
# its own). Each test keeps its keys under a prefix of its own, and a test that reads the
# server's own counters (INFO) starts a redis-server of its own (tests/own_redis.py):
# no test depends on what other clients do. Still, a run's "redis" group holds an
# exclusive lock (flock on a file named after the server) from its first test to its
# last, so that runs side by side (scripts/test runs the lowest-versions pass beside the
# PostgreSQL pass) take turns with Redis and the load of its multi-server tests.
_redis_lock: IO[str] | None = None


def _redis_lock_path() -> Path:
    url = urlsplit(REDIS_URL or "redis://127.0.0.1:6379/15")
    name = f"flask-apikeys-tests-redis-{url.hostname}-{url.port or 6379}.lock"
    return Path(tempfile.gettempdir()) / name


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    global _redis_lock
    if _redis_lock is None and xdist_group(item.nodeid) == "redis":
        import fcntl

        _redis_lock = _redis_lock_path().open("a")
        fcntl.flock(_redis_lock, fcntl.LOCK_EX)
    yield
    if _redis_lock is not None and (nextitem is None or xdist_group(nextitem.nodeid) != "redis"):
        _redis_lock.close()  # releases the lock
        _redis_lock = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backend_independent: touches no database, or only a SQLite file of its own, so it "
        "runs the same whatever TEST_DATABASE_URL says (scripts/test runs it in the SQLite "
        "pass only)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that talks to Redis must be in the "redis" group (see above). Under
    ``--dist loadgroup``, the longest work first. With ``TEST_SKIP_BACKEND_INDEPENDENT``
    (scripts/test's PostgreSQL pass), backend-independent tests skip, with the reason."""
    for item in items:
        uses_redis = item.get_closest_marker("redis") or "redis_url" in getattr(
            item, "fixturenames", ()
        )
        if uses_redis and xdist_group(item.nodeid) != "redis":
            raise pytest.UsageError(
                f"{item.nodeid} uses Redis: add its module to _GROUPS as 'redis' in "
                "tests/xdist_groups.py"
            )
    if os.environ.get("TEST_SKIP_BACKEND_INDEPENDENT"):
        skip = pytest.mark.skip(
            reason="backend-independent: the same test runs in scripts/test's SQLite pass "
            "(TEST_SKIP_BACKEND_INDEPENDENT is set)"
        )
        for item in items:
            if item.get_closest_marker("backend_independent"):
                item.add_marker(skip)
    if os.environ.get("PYTEST_XDIST_WORKER") and config.getoption("dist", None) == "loadgroup":
        longest_first(items)


# Browsers signed in as the example's people (tests/pages/conftest.py's Browser): ``bob``
# drives the test's own ``client``; the others have clients of their own.
@pytest.fixture
def browser(client: FlaskClient) -> Browser:
    return Browser(client)


@pytest.fixture
def bob(browser: Browser) -> Browser:
    browser.login("bob@acme.test")
    return browser


@pytest.fixture
def alice(app: Flask) -> Browser:
    signed_in = Browser(app.test_client())
    signed_in.login("alice@acme.test")
    return signed_in


@pytest.fixture
def carol(app: Flask) -> Browser:
    signed_in = Browser(app.test_client())
    signed_in.login("carol@globex.test")
    return signed_in


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


# A fresh PostgreSQL schema (dropped with everything in it) or a SQLite file under
# tmp_path: nothing to drop table by table at teardown. A database TEST_DATABASE_URL
# names otherwise outlives the test.
_DISPOSABLE = not DATABASE_URL or DATABASE_URL.startswith("postgres")


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


class _CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates, kept for the whole test process.

    Every test makes a new app, and each app's Jinja environment would compile every
    template it renders again: a third of the CPU of the page tests. Jinja compiles a
    template again when its source changed (the bucket checks a checksum); the key also
    holds what else shapes the compiled code, in case an environment is set up otherwise.
    """

    def __init__(self) -> None:
        self.code: dict[tuple[Any, ...], bytes] = {}

    @staticmethod
    def _key(bucket: Bucket) -> tuple[Any, ...]:
        env = bucket.environment
        return (
            bucket.key,
            env.block_start_string,
            env.block_end_string,
            env.variable_start_string,
            env.variable_end_string,
            env.comment_start_string,
            env.comment_end_string,
            env.line_statement_prefix,
            env.line_comment_prefix,
            env.trim_blocks,
            env.lstrip_blocks,
            env.newline_sequence,
            env.keep_trailing_newline,
            env.optimized,
            env.finalize is None,
            getattr(env.autoescape, "__func__", env.autoescape),  # Flask's: by file name
            env.is_async,
            tuple(sorted(env.extensions)),
        )

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self.code.get(self._key(bucket))
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[self._key(bucket)] = bucket.bytecode_to_string()


_COMPILED_TEMPLATES = _CompiledTemplates()


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
    app.jinja_env.bytecode_cache = _COMPILED_TEMPLATES
    with app.app_context():
        db.create_all()
        seed_demo_data()
    yield app
    with app.app_context():
        # Write what the app buffered now, while its engine is open: a flush after the
        # engine is disposed would open a connection nobody closes.
        app.extensions["apikeys"].flush_usage(app)
        db.session.remove()
        if not _DISPOSABLE:
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
            issued = apikeys.service.keys.issue(user, scopes=scopes or [], **kwargs)
            return issued.secret

    return make


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@contextmanager
def python_permissions(apikeys: Any, loader: Any) -> Iterator[None]:
    """Inside the block, *apikeys* reads what owners hold with the Python *loader* (the
    simple path), whatever it declared as SQL."""
    import dataclasses

    declared, original = apikeys._owner_sql, apikeys._permissions_loader
    apikeys._owner_sql = dataclasses.replace(declared, permissions=None, to_names=None)
    apikeys.permissions_loader(loader)
    try:
        yield
    finally:
        apikeys._owner_sql = declared
        apikeys.permissions_loader(original)


@pytest.fixture
def host(database_url: str) -> Iterator[Any]:
    """The minimal host of tests/hostapp.py, inside an app context, with two accounts."""
    from tests import hostapp

    app = hostapp.create_app(database_url)
    app.jinja_env.bytecode_cache = _COMPILED_TEMPLATES
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
        if not _DISPOSABLE:
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
