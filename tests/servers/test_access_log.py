"""Keys never reach gunicorn's access log (issue #10, item 4).

A real gunicorn serves the example app with ``example_app/gunicorn.conf.py`` and its
access log on. Keys sent every way a client sends them, ``curl -u "$KEY:"`` (HTTP
Basic, which gunicorn's default format would log through ``%(u)s``) included, must
appear neither in the access log nor in anything the server writes to stderr.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.conftest import GUNICORN, ROOT, Server, free_port, request

pytestmark = pytest.mark.servers

CONFIG = ROOT / "example_app" / "gunicorn.conf.py"


@pytest.fixture
def gunicorn_with_access_log(app: Any, database_url: str, tmp_path: Path) -> Iterator[Server]:
    """One gunicorn (the example's config, 2 workers) on the test database; access log on."""
    port = free_port()
    access_log = tmp_path / "access.log"
    stderr_log = tmp_path / "stderr.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
        "DATABASE_URL": database_url,
        "FLASK_SECRET_KEY": "test-secret",
        "PYTHONPATH": str(ROOT),
    }
    args = [GUNICORN, "-c", str(CONFIG), "-b", f"127.0.0.1:{port}"]
    args += ["--access-logfile", str(access_log), "--error-logfile", "-"]
    with stderr_log.open("wb") as err:
        process = subprocess.Popen(
            [*args, "example_app:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=err,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server("access-log", port, process, stderr_log)
    deadline = time.monotonic() + 30
    while True:
        try:
            if request(port, "/v1/me/permissions")[0] == 401:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise AssertionError(f"gunicorn did not start:\n{stderr_log.read_text()[-3000:]}")
        time.sleep(0.1)
    try:
        yield server
    finally:
        server.kill()


def _basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_no_key_reaches_the_access_log_or_stderr(gunicorn_with_access_log, make_key, tmp_path):
    server = gunicorn_with_access_log
    key = make_key("bob@acme.test", ["client.read"])
    other = make_key("alice@acme.test", ["invoice.read"])
    sent = [
        ({"Authorization": _basic(key)}, None),  # curl -u "$KEY:"
        ({"Authorization": _basic(other, "x")}, None),  # curl -u "$KEY:x"
        ({"Authorization": _basic("user", key)}, None),  # the key as the password
        ({"Authorization": f"Bearer {key}"}, 200),
        ({"X-API-Key": key}, 200),
        ({"X-API-Key": other}, 403),  # lacks client.read
        ({"Authorization": f"Bearer {other}"}, 403),
    ]
    for headers, expected in sent:
        status, _ = server.get("/v1/clients", headers)
        if expected is not None:
            assert status == expected, headers
        else:
            assert status == 401  # Basic is no credential for the API
    server.stop()  # graceful: gunicorn has written and closed both logs

    access = (tmp_path / "access.log").read_text()
    stderr = server.log.read_text()
    lines = [line for line in access.splitlines() if "/v1/clients" in line]
    assert len(lines) == len(sent), access
    assert all('"GET /v1/clients HTTP/1.1"' in line for line in lines), access
    assert "Booting worker" in stderr  # the stderr we read is the server's
    for secret in (key, other):
        for text, name in ((access, "access log"), (stderr, "stderr")):
            assert secret not in text, f"a key is in gunicorn's {name}"
            assert secret[4:20] not in text, f"part of a key is in gunicorn's {name}"
