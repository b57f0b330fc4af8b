"""Real MCP clients, installed from npm, against the example app under every server model.

Used by ``tests/mcp/test_real_clients.py`` (a few connections each) and by
``scripts/mcp-clients`` (20 of 20, quiet and with the cores busy). No pytest here: the
script imports it too.

The clients, pinned, installed with ``npm install --prefix .npm-clients`` (in the
checkout, ignored by git) the first time they are needed, or again when a pin changes:

- **Claude Code** (``claude``): the page's ``claude mcp add ...`` command as pasted,
  then ``claude mcp list``, which connects and fetches the tools with a 5-second
  timeout ("✔ Connected" or "Connected · tools fetch failed"). A tool call would need
  Claude Code's non-interactive mode, which needs a model account: only the list here.
- **mcp-remote**, as Claude Desktop runs it: the page's JSON (``npx -y mcp-remote URL
  --header Authorization:${AUTH}``, the key in ``env``), spoken to over stdio by the
  official Python client, as Claude Desktop does.
- **the MCP Inspector**'s CLI mode (``mcp-inspector --cli URL --method ...``), with
  ``--header`` for ``Authorization: Bearer`` and for ``X-API-Key``.

The server models: ``flask run`` (Werkzeug, a thread per request: the README's
command), gunicorn with sync workers (2), gthread workers and gevent workers, all with
the MCP server mounted at ``/mcp``; and the separate ASGI process (uvicorn,
``example_app.mcp_server:create_asgi_app``), which also serves SSE at ``/sse``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: Where the npm clients are installed (ignored by git).
CLIENTS_DIR = ROOT / ".npm-clients"
#: The clients, pinned: a new pin installs again.
PACKAGES = {
    "@anthropic-ai/claude-code": "2.1.337",
    "mcp-remote": "0.15.1",
    "@modelcontextprotocol/inspector": "2.12.0",
}
#: The server models, mounted ones first; "uvicorn" is the separate ASGI process.
MODELS = ("flask-run", "gunicorn-sync", "gunicorn-gthread", "gunicorn-gevent", "uvicorn")
#: Where the MCP server answers SSE (the 2024-11-05 transport of older clients).
SSE_MODELS = ("uvicorn",)
#: What the pages' config snippets hold in place of the key (the user pastes theirs).
PLACEHOLDER = "YOUR_API_KEY"
START_TIMEOUT = 30.0
#: Environment for the Node clients: no update checks, no telemetry (no network here).
QUIET_NODE = {
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "NO_UPDATE_NOTIFIER": "1",
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
}


class Unavailable(Exception):
    """The clients cannot be installed here (no npm, no registry): a reason to skip."""


# -- installing the clients ------------------------------------------------------------


def _installed(package: str) -> str | None:
    manifest = CLIENTS_DIR / "node_modules" / package / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _missing() -> list[str]:
    return [f"{name}@{pin}" for name, pin in PACKAGES.items() if _installed(name) != pin]


def _install_node() -> None:
    """Debian's Node.js and npm, as root on a machine without them (as scripts/test
    installs Chromium)."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["update", "-qq"], ["install", "-y", "-qq", "nodejs", "npm"]):
        subprocess.run(["apt-get", *args], env=env, capture_output=True, timeout=900, check=False)


def install_clients() -> Path:
    """The ``node_modules/.bin`` of the pinned clients, installing what is missing.

    Raises :class:`Unavailable` without npm, or when npm cannot install them (the
    registry unreachable). Several processes may ask at once: one installs, under a
    file lock, while the others wait.
    """
    if shutil.which("npm") is None or shutil.which("node") is None:
        _install_node()
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise Unavailable("Node.js and npm are not installed (apt-get install nodejs npm)")
    CLIENTS_DIR.mkdir(exist_ok=True)
    with (CLIENTS_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = _missing()
        if missing:
            done = subprocess.run(
                [
                    "npm",
                    "install",
                    "--prefix",
                    str(CLIENTS_DIR),
                    "--save-exact",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    *missing,
                ],
                capture_output=True,
                text=True,
                timeout=900,
                env={**os.environ, **QUIET_NODE},
                check=False,
            )
            still = _missing()
            if done.returncode != 0 or still:
                last = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise Unavailable(f"npm install {' '.join(still)} failed: {' | '.join(last)}")
    return CLIENTS_DIR / "node_modules" / ".bin"


# -- the example app's database ---------------------------------------------------------

#: Settings of the example app in these runs (the servers get them as ``FLASK_...``).
SETTINGS: dict[str, Any] = {
    "SECRET_KEY": "mcp-clients",
    "APIKEYS_USAGE_FLUSH_INTERVAL": 1,
    "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",  # seeding: no half-second scrypt per user
}


def server_env(database_url: str, settings: dict[str, Any] | None = None) -> dict[str, str]:
    """The environment that gives a server of the example app *database_url* and
    *settings* (``FLASK_``-prefixed JSON values, read by ``from_prefixed_env``)."""
    env = {"DATABASE_URL": database_url}
    for name, value in {**SETTINGS, **(settings or {})}.items():
        env[f"FLASK_{name}"] = json.dumps(value)
    return env


@contextlib.contextmanager
def example_database(database_url: str) -> Iterator[Any]:
    """The example app on *database_url*, its tables created and the demo data seeded."""
    from example_app import create_app, db
    from example_app.cli import seed_demo_data

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, **SETTINGS})
    with app.app_context():
        db.create_all()
        seed_demo_data()  # idempotent
        db.session.remove()
    try:
        yield app
    finally:
        with app.app_context():
            app.extensions["apikeys"].flush_usage(app)
            db.session.remove()
            db.engine.dispose()


def issue_key(app: Any, email: str, scopes: list[str], **options: Any) -> str:
    """A new key of the user *email* with *scopes*: its secret."""
    import sqlalchemy as sa

    from example_app import apikeys, db
    from example_app.models import User

    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        secret = apikeys.service.keys.issue(user, "mcp clients", scopes, **options).secret
        db.session.remove()
        return str(secret)


# -- the servers ------------------------------------------------------------------------


def free_port() -> int:
    """A free port. (From the kernel's ephemeral range: none of the "bad ports" that
    Node's fetch refuses to connect to, such as 5060 and 6000.)"""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(model: str, port: int) -> list[str]:
    """The command line of *model* serving the example app on *port*."""
    app = "example_app:create_app()"
    gunicorn = [
        str(BIN / "gunicorn"),
        "-c",
        str(ROOT / "example_app" / "gunicorn.conf.py"),
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        "2",
    ]
    commands = {
        # The README's command: Werkzeug's development server, a thread per request.
        "flask-run": [str(BIN / "flask"), "--app", "example_app", "run", "--port", str(port)],
        "gunicorn-sync": [*gunicorn, "-k", "sync", app],
        "gunicorn-gthread": [*gunicorn, "-k", "gthread", "--threads", "4", app],
        "gunicorn-gevent": [*gunicorn, "-k", "gevent", "--worker-connections", "100", app],
        "uvicorn": [
            str(BIN / "uvicorn"),
            "--factory",
            "example_app.mcp_server:create_asgi_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
    }
    return commands[model]


@dataclass
class Server:
    model: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def sse_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sse"

    def status(self, path: str = "/mcp", method: str = "POST") -> int:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            body = b"{}" if method == "POST" else None
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            return conn.getresponse().status
        finally:
            conn.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_server(model: str, env: dict[str, str], log_dir: Path) -> Server:
    """*model* serving the example app with *env* (``DATABASE_URL``, ``FLASK_...``),
    once ``POST /mcp`` without a key answers 401."""
    port = free_port()
    log = log_dir / f"{model}-{port}.log"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
        "PYTHONPATH": str(ROOT),
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_command(model, port),
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(model, port, process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if server.status() == 401:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"{model} did not start:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def busy_cores(count: int | None = None) -> Iterator[list[int]]:
    """*count* processes (one per core by default) spinning in a loop, killed after."""
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(count or os.cpu_count() or 2)
    ]
    try:
        yield [p.pid for p in busy]
    finally:
        for process in busy:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# -- the clients ------------------------------------------------------------------------


@dataclass
class Outcome:
    """One connection of a client: whether it got what it asked for, and what it said."""

    ok: bool
    detail: str
    data: Any = field(default=None, repr=False)
    #: The tools the client listed, when it lists them.
    tools: list[str] = field(default_factory=list)


def node_env(home: Path, bin_dir: Path, **extra: str) -> dict[str, str]:
    """An environment for a Node client: a HOME of its own, the clients on PATH."""
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        **QUIET_NODE,
        **extra,
    }


def claude_code(bin_dir: Path, home: Path, add_command: str, name: str, **env: str) -> Outcome:
    """Run *add_command* (the page's ``claude mcp add ...``, as pasted, in bash, with
    *env*, e.g. the key's variable), then ``claude mcp list``: ok when the server is
    "✔ Connected", i.e. it answered and listed its tools within Claude Code's 5 seconds."""
    home.mkdir(parents=True, exist_ok=True)
    environ = node_env(home, bin_dir, **env)
    added = subprocess.run(
        ["bash", "-c", add_command],
        cwd=home,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if added.returncode != 0:
        return Outcome(False, f"claude mcp add failed: {added.stderr or added.stdout}")
    listed = subprocess.run(
        [str(bin_dir / "claude"), "mcp", "list"],
        cwd=home,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = next((x for x in listed.stdout.splitlines() if x.startswith(f"{name}:")), "")
    ok = "✔ Connected" in line and "failed" not in line
    return Outcome(ok, line.strip() or (listed.stderr or listed.stdout).strip()[-500:])


def inspector(
    bin_dir: Path,
    home: Path,
    url: str,
    headers: dict[str, str],
    method: str,
    *,
    transport: str = "http",
    tool: str | None = None,
    arguments: dict[str, str] | None = None,
) -> Outcome:
    """The Inspector's CLI mode: ``--method tools/list`` or ``tools/call``; ok with a
    JSON answer that is no error (a tool error counts as an answer: see ``data``)."""
    home.mkdir(parents=True, exist_ok=True)
    args = [str(bin_dir / "mcp-inspector"), "--cli", url, "--transport", transport]
    args += ["--method", method]
    for name, value in headers.items():
        args += ["--header", f"{name}: {value}"]
    if tool is not None:
        args += ["--tool-name", tool]
    for name, value in (arguments or {}).items():
        args += ["--tool-arg", f"{name}={value}"]
    done = subprocess.run(
        args,
        cwd=home,
        env=node_env(home, bin_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:  # the answer on stdout, or the error on stderr
        answer = json.loads(done.stdout or done.stderr)
    except ValueError:
        return Outcome(False, f"exit {done.returncode}: {(done.stderr or done.stdout)[-500:]}")
    if not isinstance(answer, dict) or "error" in answer:
        return Outcome(False, json.dumps(answer)[:500], answer)
    return Outcome(done.returncode == 0, f"exit {done.returncode}", answer)


async def mcp_remote(
    bin_dir: Path,
    home: Path,
    server: dict[str, Any],
    key: str,
    placeholder: str,
    call: tuple[str, dict[str, Any]] | None = None,
) -> Outcome:
    """The Claude Desktop config entry *server* (``command``, ``args``, ``env``) run as
    Claude Desktop runs it, the user's key in place of *placeholder*: a stdio process,
    spoken to by the official client. Lists the tools, and calls one if asked."""
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    home.mkdir(parents=True, exist_ok=True)
    env = {name: value.replace(placeholder, key) for name, value in server["env"].items()}
    params = StdioServerParameters(
        command=server["command"],
        args=server["args"],
        # npx finds the pinned mcp-remote in .npm-clients (its working directory)
        # instead of downloading one.
        env={**node_env(home, bin_dir), **env},
        cwd=str(CLIENTS_DIR),
    )
    with anyio.fail_after(90), open(os.devnull, "w") as quiet:
        async with (
            stdio_client(params, errlog=quiet) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = sorted(t.name for t in (await session.list_tools()).tools)
            if call is None:
                return Outcome(True, ", ".join(tools), tools=tools)
            result = await session.call_tool(*call)
            return Outcome(not result.is_error, ", ".join(tools), result, tools)
