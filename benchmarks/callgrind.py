"""CPU instructions per request, bare and protected, counted with valgrind's callgrind.

    .venv/bin/python benchmarks/callgrind.py                     # SQLite and PostgreSQL
    .venv/bin/python benchmarks/callgrind.py --backends sqlite --requests 100,600

Timings on a shared 2-core machine swing by tens of per cent; instruction counts do
not. For each route, the app is driven in-process (its WSGI callable, one prepared
environ, no sockets) under ``valgrind --tool=callgrind`` twice, with *n1* and *n2*
requests after the same warm-up; (count(n2) - count(n1)) / (n2 - n1) is what one
request costs, start-up and warm-up cancelled out. Counts the Python process only: on
PostgreSQL the server's own work is not in them.

Routes: the bare ``/v1/ping``, ``/v1/ping/key`` (the same behind ``require_key``),
``/v1/me/permissions`` (a real view behind a key), ``/v1/ping/peer`` (the bare route
behind the peers' style: Flask-HTTPAuth's ``verify_token`` with the key and its owner
through the ORM) and, on PostgreSQL, ``/v1/ping/select1`` (the bare route plus one
``SELECT 1``: the floor). ``--routes`` picks some of them.

Needs ``valgrind`` (``apt-get install valgrind``). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

BARE = "/v1/ping"
KEY = "/v1/ping/key"
PEER = "/v1/ping/peer"
ROUTES = [BARE, KEY, "/v1/me/permissions", PEER]
FLOOR = "/v1/ping/select1"
WARM_UP = 50


def child(database_url: str, route: str, secret: str, count: int) -> None:
    """Serve *count* requests of *route* in-process (run under valgrind)."""
    from werkzeug.test import EnvironBuilder

    from benchmarks.app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench"})
    app.config["APIKEYS_USAGE_FLUSH_INTERVAL"] = 0  # no flusher thread in the count
    headers = {"Authorization": f"Bearer {secret}"} if route not in (BARE, FLOOR) else {}
    environ = EnvironBuilder(path=route, headers=headers).get_environ()
    environ["REMOTE_ADDR"] = "127.0.0.1"

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        if not status.startswith("200"):
            raise SystemExit(f"{route} answered {status}")

    for _ in range(WARM_UP + count):
        body = app.wsgi_app(dict(environ), start_response)
        b"".join(body)
        getattr(body, "close", lambda: None)()


def instructions(database_url: str, route: str, secret: str, count: int) -> int:
    out = Path(tempfile.mkdtemp()) / "callgrind.out"
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child",
            database_url,
            route,
            secret,
            str(count),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    match = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"valgrind failed for {route}:\n{result.stderr[-3000:]}")
    out.unlink(missing_ok=True)
    return int(match.group(1))


def per_request(database_url: str, route: str, secret: str, n1: int, n2: int) -> float:
    low = instructions(database_url, route, secret, n1)
    high = instructions(database_url, route, secret, n2)
    return (high - low) / (n2 - n1)


def measure(
    backend: str, database_url: str, n1: int, n2: int, routes: list[str]
) -> dict[str, float]:
    from benchmarks.run import prepare

    secret, _ = prepare(database_url, 1000)
    wanted = [BARE, *(r for r in routes if r != BARE)]
    if backend != "postgresql":
        wanted = [r for r in wanted if r != FLOOR]
    counts = {route: per_request(database_url, route, secret, n1, n2) for route in wanted}
    bare = counts[BARE]
    print(f"\n{backend}: instructions per request (callgrind, {n1} vs {n2} requests)")
    for route, count in counts.items():
        over = f"{count - bare:>+12,.0f} over bare" if route != BARE else ""
        print(f"  {route:<22}{count:>12,.0f}   bare ÷ this {bare / count:.3f}{over}")
    if KEY in counts and FLOOR in counts:
        floor_cost = counts[FLOOR] - bare
        print(f"  key check ÷ floor, each over bare: {(counts[KEY] - bare) / floor_cost:.2f}")
    if KEY in counts and PEER in counts:
        print(f"  peers' style ÷ ours, bare ÷ route: {counts[PEER] / counts[KEY]:.2f}x ahead")
    return counts


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--requests", default="200,1000", help="n1,n2")
    parser.add_argument("--routes", default=",".join([*ROUTES, FLOOR]))
    args = parser.parse_args()
    routes = args.routes.split(",")
    n1, n2 = (int(n) for n in args.requests.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="apikeys-callgrind-"))
    pg_base = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    for backend in args.backends.split(","):
        if backend == "sqlite":
            measure(backend, f"sqlite:///{tmp / 'callgrind.sqlite'}", n1, n2, routes)
            continue
        schema = f"apikeys_cg_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(pg_base)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            sep = "&" if "?" in pg_base else "?"
            url = f"{pg_base}{sep}options=-csearch_path%3D{schema}"
            measure(backend, url, n1, n2, routes)
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
