"""The README's quickstart, run as a new user would: its files, its commands, its curl calls."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The quickstart runs on its own SQLite file (instance/quickstart.sqlite), whatever
# TEST_DATABASE_URL says.
pytestmark = pytest.mark.backend_independent

README = Path(__file__).resolve().parent.parent / "README.md"


def block_after(marker: str) -> str:
    text = README.read_text()
    start = text.index(marker)
    match = re.compile(r"```\w*\n(.*?)```", re.S).search(text, start)
    assert match is not None
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_quickstart_works_as_written(tmp_path: Path) -> None:
    (tmp_path / "quickstart.py").write_text(block_after("<!-- quickstart:"))
    lines = block_after("<!-- quickstart-shell").splitlines()
    # The README calls .venv/bin/flask: here .venv is the environment running the tests.
    (tmp_path / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("FLASK_APP", None)
    port = free_port()
    server = None
    outputs: list[tuple[str, str]] = []
    try:
        for number, line in enumerate(lines):
            if not line or line.startswith("#"):
                continue
            if " run " in line:
                # As pasted, "&" and all: the shell returns at once and the server keeps
                # running in the session started here. The README's next line waits for
                # it, as it does for a person; the test adds no wait of its own.
                assert line.endswith(" &"), line
                server = subprocess.Popen(
                    line.replace("--port 5000", f"--port {port}"),
                    shell=True,
                    cwd=tmp_path,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                server.wait(timeout=10)
                continue
            command = line.replace(":5000", f":{port}")
            if line.startswith("KEY="):
                result = subprocess.run(
                    ["bash", "-c", command + ' && printf %s "$KEY"'],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=True,
                )
                env["KEY"] = result.stdout
                continue
            # create-user says it can run again: run it twice.
            for _ in range(2 if "create-user" in line else 1):
                result = subprocess.run(
                    command,
                    shell=True,
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=True,
                )
            expected = []
            for following in lines[number + 1 :]:
                if not following.startswith("# "):
                    break
                expected.append(following[2:])
            outputs.append((result.stdout, "\n".join(expected)))
    finally:
        if server is not None:  # the flask server the shell started, in its session
            try:
                os.killpg(server.pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    os.killpg(server.pid, 0)  # ProcessLookupError once it has stopped
                    time.sleep(0.1)
            except ProcessLookupError:
                pass

    assert re.fullmatch(r"acme_[0-9A-Za-z]{38}", env["KEY"])
    (first, first_expected), (second, second_expected) = outputs[-2:]
    assert json.loads(first) == json.loads(first_expected)
    status, *rest = second_expected.splitlines()
    assert second.splitlines()[0].strip() == status
    assert 'WWW-Authenticate: Bearer realm="api"' in second
    assert json.loads(second.split("\n\n", 1)[1]) == json.loads(rest[-1])
    assert first.endswith("}\n") and second.endswith("}\n")  # the shell prompt starts afresh
    assert env["KEY"] not in (tmp_path / "instance" / "quickstart.sqlite").read_bytes().decode(
        "latin-1"
    )
