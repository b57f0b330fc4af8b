"""The key-management pages at scale, against a real gunicorn (issue #20).

    .venv/bin/python benchmarks/pages.py                       # SQLite and PostgreSQL
    .venv/bin/python benchmarks/pages.py --backends sqlite --rounds 3

Fills the example app's database in bulk (tests/scale_data.py: a bot of Acme with
50,000 keys, most of them revoked, and 100,000 audit events of Acme), sets a key policy
on Acme, starts ``gunicorn -w 2 'example_app:create_app()'``, signs in as the bot and as
Alice (Acme's admin) through the login form, and fetches each page *rounds* times:
prints the rows each page renders, its size and its time (median and best; the time of
the whole HTTP exchange, measured by this client on the same machine).

Far pages are reached the way a person would: the pager's link to the last page, then
its "Previous". Not collected by pytest (tests/pages/test_scale.py asserts rows and
statements). PostgreSQL: a server at ``BENCH_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), in a schema of its own, dropped
at the end.
"""

from __future__ import annotations

import argparse
import html
import http.cookiejar
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
PREFIX = "/settings/api-keys"
ROW = re.compile(r'<th scope="row"')
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def prepare(database_url: str, keys: int, events: int) -> int:
    """Tables, demo data, the bot's keys, Acme's events and policy. Returns the bot's id."""
    from example_app import apikeys, create_app, db
    from example_app.cli import seed_demo_data
    from tests.scale_data import fill

    os.environ.setdefault("FLASK_PASSWORD_HASH_METHOD", "pbkdf2:sha256:1")
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench"})
    with app.app_context():
        db.drop_all()
        db.create_all()
        seed_demo_data()
        started = time.monotonic()
        filled = fill(keys=keys, events=events)
        print(
            f"  filled {filled.keys:,} keys ({filled.active:,} active, {filled.expired:,} "
            f"expired, {filled.revoked:,} revoked) and {filled.events:,} events "
            f"in {time.monotonic() - started:.1f}s",
            flush=True,
        )
        apikeys.service.policies.set_policy(
            1, max_lifetime_days=365, allowed_permissions=["invoice.read", "client.read"]
        )
        db.session.remove()
        db.engine.dispose()
    return filled.bot_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(database_url: str, log: Path) -> Iterator[str]:
    """``gunicorn -w 2 'example_app:create_app()'`` on a free port; its base URL."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
        "DATABASE_URL": database_url,
        "FLASK_SECRET_KEY": "bench",
        "FLASK_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",
        "PYTHONPATH": str(ROOT),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(GUNICORN, "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout", "300"),
                *("-c", str(ROOT / "example_app" / "gunicorn.conf.py")),
                "example_app:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/login", timeout=5).read()
                break
            except OSError as exc:
                if time.monotonic() > deadline or process.poll() is not None:
                    tail = log.read_text()[-2000:]
                    raise RuntimeError(f"gunicorn did not start:\n{tail}") from exc
                time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Client:
    """A browser signed in through the login form (its cookies, its CSRF token)."""

    def __init__(self, base: str, email: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        token = CSRF.search(self.opener.open(base + "/login").read().decode())
        assert token, "no CSRF token on the login page"
        body = urllib.parse.urlencode(
            {"email": email, "password": "demo-password", "csrf_token": token.group(1)}
        ).encode()
        self.opener.open(base + "/login", data=body).read()

    def get(self, path: str) -> tuple[float, bytes]:
        started = time.perf_counter()
        with self.opener.open(self.base + path, timeout=300) as response:
            body = response.read()
        return time.perf_counter() - started, body


def link(body: bytes, pattern: str) -> str | None:
    """The href of the first link whose tag matches *pattern*, unescaped."""
    tag = re.search(rf"<a [^>]*{pattern}[^>]*>", body.decode())
    href = re.search(r'href="([^"]+)"', tag.group(0)) if tag else None
    return html.unescape(href.group(1)) if href else None


def measure(client: Client, name: str, path: str | None, rounds: int) -> dict[str, object]:
    if path is None:
        return {"page": name, "missing": True}
    times, body = [], b""
    for _ in range(rounds):
        spent, body = client.get(path)
        times.append(spent)
    row = {
        "page": name,
        "path": path,
        "rows": len(ROW.findall(body.decode())),
        "bytes": len(body),
        "median": statistics.median(times),
        "best": min(times),
    }
    print(
        f"  {name:<34}{row['rows']:>6} rows{row['bytes']:>11,} B"
        f"{row['median']:>9.3f} s (best {row['best']:.3f} s)",
        flush=True,
    )
    return row


def run_one(backend: str, url: str, args: argparse.Namespace, tmp: Path) -> list[dict[str, object]]:
    print(f"\n== {backend}", flush=True)
    bot_id = prepare(url, args.keys, args.events)
    with gunicorn(url, tmp / f"gunicorn-{backend}.log") as base:
        bot, alice = Client(base, "bot@acme.test"), Client(base, "alice@acme.test")
        for client, path in ((bot, "/"), (alice, "/organization")):  # warm both workers up
            client.get(PREFIX + path)
            client.get(PREFIX + path)
        rows = []
        mine = bot.get(PREFIX + "/")[1]
        last = link(mine, r'aria-label="Page [\d,]+, the last"')
        rows.append(measure(bot, "My keys, page 1", PREFIX + "/", args.rounds))
        rows.append(measure(bot, "My keys, last page", last, args.rounds))
        if last:
            before_last = link(bot.get(last)[1], r'rel="prev"')
            rows.append(measure(bot, "My keys, the page before it", before_last, args.rounds))
        every = "/?status=all" if last else "/?revoked=1"  # (before 0.3: "Show revoked")
        rows.append(measure(bot, "My keys, every status", PREFIX + every, args.rounds))
        org = PREFIX + "/organization"
        org_last = link(alice.get(org)[1], r'aria-label="Page [\d,]+, the last"')
        every_last = link(alice.get(org + "?status=all")[1], r'aria-label="Page [\d,]+, the last"')
        if every_last is None:  # offset pages (before 0.3): page 1,800 of every key
            every_last = org + "?page=1800"
        rows.append(measure(alice, "Organization, page 1", org, args.rounds))
        rows.append(measure(alice, "Organization, last page", org_last, args.rounds))
        rows.append(measure(alice, "Organization, every status, last", every_last, args.rounds))
        offboard = f"{PREFIX}/organization/1/users/{bot_id}/revoke-all"
        rows.append(measure(alice, "Offboarding the bot", offboard, args.rounds))
        rows.append(measure(alice, "Key policy", PREFIX + "/organization/1/policy", args.rounds))
        audit = alice.get(PREFIX + "/organization/audit")[1]
        rows.append(
            measure(alice, "Audit trail, page 1", PREFIX + "/organization/audit", args.rounds)
        )
        rows.append(measure(alice, "Audit trail, older", link(audit, r'rel="next"'), args.rounds))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--keys", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="apikeys-pages-"))
    pg_base = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    for backend in args.backends.split(","):
        if backend == "sqlite":
            run_one(backend, f"sqlite:///{tmp / 'pages.sqlite'}", args, tmp)
            continue
        schema = f"apikeys_pages_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(pg_base)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            sep = "&" if "?" in pg_base else "?"
            run_one(backend, f"{pg_base}{sep}options=-csearch_path%3D{schema}", args, tmp)
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(f"\ngunicorn -w 2 (sync), {os.cpu_count()} CPUs; {args.rounds} rounds per page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
