"""Real MCP servers for the tests, and the official SDK client to talk to them.

``mcp_server`` runs the example app's MCP server both ways, on free ports of 127.0.0.1:
``mounted`` (gunicorn, two sync workers, ``/mcp`` inside the Flask app) and ``separate``
(uvicorn, the ASGI app of ``example_app.mcp_server``). Both share one database with the
in-process ``mcp_app`` the tests use to issue and revoke keys and read usage: SQLite by
default, a fresh PostgreSQL schema with ``TEST_DATABASE_URL=postgresql...`` (skipped on a
bare machine, a failure under ``CI``). Every server is killed at teardown.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import DATABASE_URL, service_unavailable

pytest.importorskip("mcp", reason="the mcp extra is not installed")

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT = 30.0
INTROSPECT = "api_key.introspect"
PERMISSIONS = {
    "invoice.read": "See invoices",
    "invoice.write": "Create invoices",
    "client.read": "See clients",
    "client.write": "Create and edit clients",
    INTROSPECT: "Introspect API keys (RFC 7662)",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(
    port: int,
    path: str,
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            method,
            path,
            body=body if method == "POST" else None,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


@dataclass
class Proc:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    statements: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def post(self, path: str = "/mcp", **kw: Any) -> tuple[int, dict[str, str], bytes]:
        return post(self.port, path, **kw)

    def statement_count(self) -> int:
        """Statements of requests: the usage flusher's writes (every 0.2 s, from its own
        thread, for earlier requests: usage, and the request log, which no request
        touches) are left out, or they would land in any count."""
        if not self.statements.exists():
            return 0
        return sum(
            1
            for line in self.statements.read_text().splitlines()
            if not line.startswith(("UPDATE api_keys SET", "INSERT INTO api_key_usage_days"))
            and "api_key_requests" not in line
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start(name: str, args: list[str], env: dict[str, str], tmp: Path, port: int) -> Proc:
    log, statements = tmp / f"{name}-{port}.log", tmp / f"{name}-{port}.sql"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
        "PYTHONPATH": str(ROOT),
        "MCP_TEST_STATEMENT_LOG": str(statements),
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = Proc(name, port, process, log, statements)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if proc.post()[0] == 401:
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{name} did not start:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def mcp_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of its own for the module: SQLite, or a PostgreSQL schema."""
    if not DATABASE_URL.startswith("postgres"):
        yield f"sqlite:///{tmp_path_factory.mktemp('mcpdb') / 'mcp.sqlite'}"
        return
    base = DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1).split("?", 1)[0]
    schema = f"apikeys_mcp_{uuid.uuid4().hex[:12]}"
    try:
        engine = sa.create_engine(base)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        service_unavailable("PostgreSQL", str(exc).splitlines()[0])
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def settings(database_url: str) -> dict[str, Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "mcp-tests",
        "APIKEYS_PERMISSIONS": PERMISSIONS,
        "APIKEYS_INTROSPECTION": True,
        # api_key.* never goes on a key unless the host opts in, by name.
        "APIKEYS_GRANTABLE_SENSITIVE_PERMISSIONS": [INTROSPECT],
        "APIKEYS_USAGE_FLUSH_INTERVAL": 0.2,
    }


def server_env(database_url: str) -> dict[str, str]:
    env = {"DATABASE_URL": database_url}
    for name, value in settings(database_url).items():
        if name != "SQLALCHEMY_DATABASE_URI":
            env[f"FLASK_{name}"] = json.dumps(value)
    return env


@pytest.fixture(scope="module")
def mcp_app(mcp_database: str) -> Iterator[Any]:
    """The example app in this process, on the servers' database, seeded."""
    from example_app import create_app, db
    from example_app.cli import seed_demo_data
    from example_app.models import Membership

    app = create_app(settings(mcp_database))
    with app.app_context():
        db.create_all()
        seed_demo_data()
        for membership in db.session.scalars(sa.select(Membership)):
            membership.permissions += f" {INTROSPECT}"  # alice, bob and carol may introspect
        db.session.commit()
        db.session.remove()
    yield app
    with app.app_context():
        app.extensions["apikeys"].flush_usage(app)  # before the engine goes
        db.session.remove()
        db.engine.dispose()


class Keys:
    """Issue, revoke and count keys of the shared database, from this process."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def issue(self, email: str, scopes: list[str], **kw: Any) -> str:
        from example_app import apikeys, db
        from example_app.models import User

        with self.app.app_context():
            user = db.session.scalar(sa.select(User).where(User.email == email))
            secret = apikeys.service.keys.issue(user, "mcp test", scopes, **kw).secret
            db.session.remove()
            return secret

    def _key(self, secret: str) -> Any:
        from example_app import apikeys

        return apikeys.service.verifier.find_by_secret(secret)

    def revoke(self, secret: str) -> None:
        from example_app import apikeys, db

        with self.app.app_context():
            apikeys.service.keys.revoke(self._key(secret), reason="test")
            db.session.remove()

    def usage(self, secret: str) -> int:
        from example_app import db

        with self.app.app_context():
            count = int(self._key(secret).usage_count)
            db.session.remove()
            return count

    def usage_settles_at(self, secret: str, expected: int, timeout: float = 10) -> int:
        """The key's usage once the servers' flushers wrote it (or *timeout* passed)."""
        deadline = time.monotonic() + timeout
        count = self.usage(secret)
        while count != expected and time.monotonic() < deadline:
            time.sleep(0.1)
            count = self.usage(secret)
        return count


@pytest.fixture(scope="module")
def keys(mcp_app: Any) -> Keys:
    return Keys(mcp_app)


def _mounted(env: dict[str, str], tmp: Path) -> Proc:
    port = free_port()
    args = [
        str(BIN / "gunicorn"),
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "-c",
        str(ROOT / "example_app" / "gunicorn.conf.py"),
        "tests.mcp.servers:mounted_app()",
    ]
    return start("mounted", args, env, tmp, port)


def _uvicorn(name: str, factory: str, env: dict[str, str], tmp: Path) -> Proc:
    port = free_port()
    args = [
        str(BIN / "uvicorn"),
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return start(name, args, env, tmp, port)


@pytest.fixture(scope="module", params=["mounted", "separate"])
def mcp_server(
    request: pytest.FixtureRequest,
    mcp_app: Any,
    mcp_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Proc]:
    """The example's MCP server, mounted in the Flask app or as its own process."""
    tmp = tmp_path_factory.mktemp(request.param)
    env = server_env(mcp_database)
    if request.param == "mounted":
        proc = _mounted(env, tmp)
    else:
        proc = _uvicorn("separate", "tests.mcp.servers:separate_app", env, tmp)
    try:
        yield proc
    finally:
        proc.kill()


@contextlib.asynccontextmanager
async def mcp_session(
    url: str,
    headers: dict[str, str],
    posts: list[str] | None = None,
    statuses: list[int] | None = None,
) -> AsyncIterator[Any]:
    """An initialized SDK ``ClientSession``; *posts* collects each HTTP request made,
    *statuses* the status of each response."""
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def count(request: Any) -> None:
        if posts is not None:
            posts.append(request.method)

    async def status(response: Any) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async with (
        httpx2.AsyncClient(
            headers=headers, event_hooks={"request": [count], "response": [status]}
        ) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def x_api_key(secret: str) -> dict[str, str]:
    return {"X-API-Key": secret}


@pytest.fixture(scope="module")
def flask_server(
    mcp_app: Any, mcp_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proc]:
    """The example app under gunicorn, answering introspection at /oauth/introspect."""
    proc = _mounted(server_env(mcp_database), tmp_path_factory.mktemp("flask"))
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture(scope="module", params=["ours", "sdk"])
def introspecting_server(
    request: pytest.FixtureRequest,
    flask_server: Proc,
    keys: Keys,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Proc]:
    """An MCP server without the database, checking keys through introspection: through
    ``MCPKeys.asgi_app(verifier=...)`` (ours) or the SDK's own ``AuthSettings`` (sdk)."""
    env = {
        "INTROSPECTION_URL": f"http://127.0.0.1:{flask_server.port}/oauth/introspect",
        "INTROSPECTION_KEY": keys.issue("alice@acme.test", [INTROSPECT]),
    }
    factory = "introspecting_app" if request.param == "ours" else "sdk_introspecting_app"
    proc = _uvicorn(
        request.param, f"tests.mcp.servers:{factory}", env, tmp_path_factory.mktemp("intro")
    )
    try:
        yield proc
    finally:
        proc.kill()
