"""Real servers: two gunicorn instances (two workers each), one PostgreSQL, one Redis.

``cluster()`` starts both instances of the example app on free ports of 127.0.0.1,
sharing a fresh PostgreSQL schema (made and seeded once per test) and one Redis
(a fresh key prefix per test). Every server is killed at teardown, whatever happens.
These tests skip on a bare machine and fail under ``CI`` when a service is missing.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import reachable_redis_url

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
START_TIMEOUT = 30.0
STOP_TIMEOUT = 40.0

pytestmark = pytest.mark.servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict[str, str]]:
    """One GET to 127.0.0.1:*port*; returns the status and the headers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        conn.close()


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
        return request(self.port, path, headers)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop gracefully (SIGTERM to the master) and wait; SIGKILL the group if stuck."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop within {STOP_TIMEOUT}s") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@dataclass
class Cluster:
    database_url: str
    schema: str
    redis_url: str
    servers: list[Server] = field(default_factory=list)

    @property
    def a(self) -> Server:
        return self.servers[0]

    @property
    def b(self) -> Server:
        return self.servers[1]

    def app(self) -> Any:
        """An in-process example app on the same database (for the service and queries)."""
        from example_app import create_app

        return create_app(
            {"SQLALCHEMY_DATABASE_URI": self.database_url, "SECRET_KEY": "servers-test"}
        )

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def _redis_url() -> str:
    url = reachable_redis_url()
    if "127.0.0.1" not in url and "localhost" not in url:
        pytest.skip("the server tests only talk to 127.0.0.1")
    return url


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            status, _ = server.get("/v1/me/permissions")
            if status == 401:
                return
        except OSError:
            pass
        time.sleep(0.1)
    server.kill()
    raise AssertionError(f"{server.name} did not start:\n{server.log.read_text()[-3000:]}")


@pytest.fixture
def cluster(postgres_url: str, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """``cluster(**settings)`` starts two instances; ``FLASK_`` settings go to both.
    ``cluster(app=...)`` serves another app (a gunicorn app spec) than the example's."""
    redis_url = _redis_url()
    base_url = postgres_url.split("?", 1)[0]
    schema = f"apikeys_srv_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    database_url = f"{base_url}?options=-csearch_path%3D{schema}"
    made: list[Cluster] = []

    def start(app: str = "example_app:create_app()", **settings: Any) -> Cluster:
        from example_app import db
        from example_app.cli import seed_demo_data

        cluster = Cluster(database_url, schema, redis_url)
        seeding = cluster.app()
        with seeding.app_context():
            db.create_all()
            seed_demo_data()
            db.session.remove()
            db.engine.dispose()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
            "DATABASE_URL": database_url,
            "FLASK_SECRET_KEY": "servers-test",
            "FLASK_APIKEYS_RATELIMIT_STORAGE_URI": redis_url,
            "FLASK_APIKEYS_RATELIMIT_KEY_PREFIX": f"srv-{uuid.uuid4().hex}",
            "PYTHONPATH": str(ROOT),
        }
        env.update({f"FLASK_{name}": str(value) for name, value in settings.items()})
        made.append(cluster)
        for index, name in enumerate(("A", "B")):
            port = free_port()
            log = tmp_path / f"gunicorn-{name}-{port}.log"
            args = [GUNICORN, "-w", "2", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "30"]
            if index == 0:  # A flushes in worker_exit; B relies on atexit alone
                args += ["-c", str(ROOT / "example_app" / "gunicorn.conf.py")]
            with log.open("wb") as out:  # the child keeps its own copy of the file
                process = subprocess.Popen(
                    [*args, app],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            cluster.servers.append(Server(name, port, process, log))
        for server in cluster.servers:
            _wait_until_up(server)
        return cluster

    try:
        yield start
    finally:
        for cluster in made:
            for server in cluster.servers:
                server.kill()
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
