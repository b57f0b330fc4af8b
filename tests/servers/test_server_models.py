"""Every server model Flask apps run under: a thread per request, worker processes,
thread pools, greenlets. Each serves keyed requests interleaved with page loads on a
deliberately small pool with a short ``pool_timeout``, so a connection that is not given
back fails fast; afterwards no connection is checked out and PostgreSQL sees no more
connections than the pools allow.
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.servers.conftest import ROOT, Server, free_port

pytestmark = pytest.mark.servers

BIN = Path(sys.executable).parent
POOL_SIZE, MAX_OVERFLOW = 3, 3
CLIENT_THREADS = 6  # at most this many requests at once: what the pool can hold
PAGE_EVERY = 5  # one page load for every four keyed requests


def _commands(port: int) -> dict[str, list[str]]:
    app = "tests.servers.pool_app:app"
    gunicorn = [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", "2"]
    return {
        # What the README runs: Werkzeug's server, a new thread for every request.
        "flask-run": [str(BIN / "flask"), "--app", app, "run", "--port", str(port)],
        "gunicorn-sync": [*gunicorn, "-k", "sync", app],
        "gunicorn-gthread": [*gunicorn, "-k", "gthread", "--threads", str(CLIENT_THREADS), app],
        "gunicorn-gevent": [*gunicorn, "-k", "gevent", "--worker-connections", "50", app],
        "waitress": [
            str(BIN / "waitress-serve"),
            f"--listen=127.0.0.1:{port}",
            f"--threads={CLIENT_THREADS}",
            app,
        ],
    }


PROCESSES = {"flask-run": 1, "waitress": 1}  # the gunicorn ones have two workers


@dataclass
class Database:
    url: str
    application_name: str
    #: (pid, state, transaction start) of each of the server's connections
    connections: Callable[[], list[tuple[int, str, Any]]]

    def stuck_transactions(self) -> list[tuple[int, str, Any]]:
        """Connections idle in the same transaction two seconds apart. (The flushers'
        own transactions last milliseconds; one caught in passing is not a leak.)"""
        first = {row for row in self.connections() if row[1] == "idle in transaction"}
        if not first:
            return []
        time.sleep(2)
        return sorted(first & set(self.connections()))


@pytest.fixture
def database(request: Any, tmp_path: Path) -> Iterator[Database]:
    """The database named by the test's ``backend`` parameter, empty."""
    if request.param == "sqlite":
        yield Database(f"sqlite:///{tmp_path / 'servers.sqlite'}", "", list)
        return
    postgres_url = request.getfixturevalue("postgres_url")
    base_url = postgres_url.split("?", 1)[0]
    schema = f"apikeys_models_{uuid.uuid4().hex[:12]}"
    name = f"apikeys-{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def connections() -> list[tuple[int, str, Any]]:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT pid, state, xact_start FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": name},
            )
            return [(int(pid), str(state), start) for pid, state, start in rows]

    try:
        yield Database(f"{base_url}?options=-csearch_path%3D{schema}", name, connections)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _seed(database_url: str) -> str:
    """The demo data, and a key of Bob's for ``/v1/clients``."""
    from example_app import apikeys, create_app, db
    from example_app.cli import seed_demo_data
    from example_app.models import User

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "models-test"})
    with app.app_context():
        db.create_all()
        seed_demo_data()
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        secret = apikeys.service.keys.issue(bob, "load", ["client.read"]).secret
        db.session.remove()
        db.engine.dispose()
    return secret


def _start(kind: str, database: Database, tmp_path: Path) -> Server:
    port = free_port()
    options = f'"pool_size": {POOL_SIZE}, "max_overflow": {MAX_OVERFLOW}, "pool_timeout": 2'
    if database.application_name:
        options += f', "connect_args": {{"application_name": "{database.application_name}"}}'
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
        "DATABASE_URL": database.url,
        "FLASK_SECRET_KEY": "models-test",
        "FLASK_SQLALCHEMY_ENGINE_OPTIONS": "{" + options + "}",
        "FLASK_APIKEYS_USAGE_FLUSH_INTERVAL": "1",  # the flusher borrows from the pool too
        "PYTHONPATH": str(ROOT),
    }
    log = tmp_path / f"{kind}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            _commands(port)[kind],
            cwd=tmp_path,  # the instance folder is the app's, under ROOT; logs stay here
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(kind, port, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if server.get("/_test/pool")[0] == 200:
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise AssertionError(f"{kind} did not start:\n{log.read_text()[-3000:]}")


def _signed_in_cookies(port: int) -> dict[str, str]:
    with requests.Session() as browser:
        page = browser.get(f"http://127.0.0.1:{port}/login", timeout=10).text
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        assert match, page
        response = browser.post(
            f"http://127.0.0.1:{port}/login",
            data={
                "csrf_token": match.group(1),
                "email": "alice@acme.test",
                "password": "demo-password",
            },
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code == 302, response.text
        return browser.cookies.get_dict()


def _get(port: int, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One GET on a new connection, closed after it (http.client: a fraction of the CPU
    ``requests`` takes for each, with thousands of them)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", url, headers={**headers, "Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _load(port: int, secret: str, cookies: dict[str, str], keyed: int) -> list[str]:
    """*keyed* keyed requests and a page load for every four, from several threads,
    each on a new connection; returns every unexpected answer."""
    total = keyed * PAGE_EVERY // (PAGE_EVERY - 1)
    counter = iter(range(total))
    lock = threading.Lock()
    problems: list[str] = []
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())

    def client() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            if n % PAGE_EVERY == 0:
                url, headers = "/settings/api-keys/", {"Cookie": cookie}
            else:
                url, headers = "/v1/clients", {"Authorization": f"Bearer {secret}"}
            try:
                status, body = _get(port, url, headers)
                if status != 200:
                    problems.append(f"{url}: {status} {body[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                problems.append(f"{url}: {exc!r}")

    threads = [threading.Thread(target=client) for _ in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return problems


@pytest.mark.parametrize(
    ("kind", "database"),
    [
        ("flask-run", "sqlite"),  # the README's own command
        ("flask-run", "postgresql"),
        ("gunicorn-sync", "postgresql"),
        ("gunicorn-gthread", "postgresql"),
        ("gunicorn-gevent", "postgresql"),
        ("waitress", "postgresql"),
    ],
    indirect=["database"],
)
def test_connections_are_given_back_under_every_server(
    kind: str, database: Database, tmp_path: Path
) -> None:
    secret = _seed(database.url)
    server = _start(kind, database, tmp_path)
    try:
        cookies = _signed_in_cookies(server.port)
        keyed = 2000 if kind == "flask-run" else 1000
        problems = _load(server.port, secret, cookies, keyed)
        assert problems == [], problems[:5]

        processes = PROCESSES.get(kind, 2)
        # Every worker process answers with an empty pool. The usage flusher borrows a
        # connection every second for a moment, so a worker may be asked again.
        pools: dict[int, int] = {}
        for _ in range(100):
            body = requests.get(f"http://127.0.0.1:{server.port}/_test/pool", timeout=10).json()
            pools[body["pid"]] = body["checked_out"]
            if len(pools) == processes and set(pools.values()) == {0}:
                break
            time.sleep(0.05)
        assert len(pools) == processes
        assert set(pools.values()) == {0}, pools
        if database.application_name:
            states = [state for _, state, _ in database.connections()]
            assert 0 < len(states) <= processes * (POOL_SIZE + MAX_OVERFLOW), states
            assert database.stuck_transactions() == [], states
    finally:
        server.stop()
    log = server.log.read_text()
    assert "QueuePool limit" not in log and "Traceback" not in log, log[-3000:]
