"""A Redis server of the test's own, for tests that read server-wide state.

``INFO``'s counters (``total_commands_processed`` and the like) count every client of a
server: on the Redis that TEST_REDIS_URL names, another test run, a lowest-versions pass
beside this one or a person with ``redis-cli`` would change them under the test. A test
that counts them runs in ``with own_redis(tmp_path) as url:`` instead: a ``redis-server``
on a free port, without persistence, that no one else knows of, stopped when the block
ends.

Without ``redis-server`` on PATH the test skips, or fails when ``CI`` is set
(``tests.conftest.service_unavailable``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import service_unavailable

START_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    """True when a Redis server on *port* answers PING (RESP, no client library)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(directory: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """A ``redis-server`` answering PING on a free port of 127.0.0.1 (or on *port*, e.g.
    to bring one back where it was), working in *directory* (its log: ``redis.log``)."""
    binary = shutil.which("redis-server")
    if binary is None:
        service_unavailable("redis-server", "no redis-server on PATH (apt-get install redis)")
    assert binary is not None
    log = directory / "redis.log"
    wanted = port
    for _ in range(3):  # another process may take the free port before the server does
        port = wanted or _free_port()
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if _ping(port):
                return process, port
            time.sleep(0.05)
        stop_redis(process)
    log_text = log.read_text(errors="replace") if log.exists() else "(no log)"
    pytest.fail(f"redis-server did not answer PING on a free port:\n{log_text[-2000:]}")


def stop_redis(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def own_redis(directory: Path) -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of a ``redis-server`` only the caller talks to,
    stopped when the block ends."""
    process, port = start_redis(directory)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_redis(process)
