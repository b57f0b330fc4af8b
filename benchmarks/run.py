"""Benchmark: a key-protected route against a bare route of the same app, under gunicorn.

    .venv/bin/python benchmarks/run.py          # SQLite and PostgreSQL, 10^3 and 10^6 keys
    .venv/bin/python benchmarks/run.py --backends sqlite --sizes 1000 --rounds 2

For each database and key count: fill the key table in bulk (executemany on SQLite,
COPY on PostgreSQL; one real key among the fillers), start ``gunicorn -w 2`` on
``benchmarks.app:create_app()``, then drive ``GET /v1/ping`` (bare) and the protected
route with ``wrk`` in interleaved rounds. Prints req/s, p50 and p99 per route and the
ratio protected / bare (median of the rounds' ratios), then checks that a key revoked
while the protected route is under load is refused on the next request.

Not collected by pytest. Needs ``wrk`` and, for PostgreSQL, a server at
``BENCH_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``);
it works in a schema of its own and drops it at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import io
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
BARE = "/v1/ping"
FLOOR = "/v1/ping/select1"  # the bare route plus one SELECT 1 round trip
#: SQLite: protected ÷ bare. PostgreSQL: protected ÷ bare, as a share of the floor's ratio.
TARGETS = {"sqlite": 0.85, "postgresql": 0.90}


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, secret: str | None, seconds: int, connections: int, threads: int) -> WrkResult:
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if secret:
        args += ["-H", f"Authorization: Bearer {secret}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return WrkResult(rps, p50, p99, int(bad.group(1)) if bad else 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_status(port: int, path: str, secret: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {secret}"} if secret else {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


# -- the database -------------------------------------------------------------------------


def prepare(database_url: str, size: int) -> tuple[str, str]:
    """Tables, demo data, one real key and size - 1 filler keys. Returns (secret, prefix)."""
    from benchmarks.app import create_app
    from example_app import apikeys, db
    from example_app.cli import seed_demo_data
    from example_app.models import User

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench"})
    with app.app_context():
        db.drop_all()
        db.create_all()
        seed_demo_data()
        alice = db.session.scalar(sa.select(User).where(User.email == "alice@acme.test"))
        issued = apikeys.service.keys.issue(alice, "benchmark", ["invoice.read"])
        secret, prefix = issued.secret, issued.key.display_prefix
        owner_id, org_id = alice.id, issued.key.organization_id
        db.session.remove()
        started = time.monotonic()
        _fill(db.engine, apikeys.models.APIKey.__table__, size - 1, owner_id, org_id)
        print(f"  filled {size - 1:,} keys in {time.monotonic() - started:.1f}s", flush=True)
        db.engine.dispose()
    return secret, prefix


def _filler_rows(count: int, owner_id: int, org_id: Any) -> Any:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for i in range(count):
        yield (
            f"filler {i}",
            f"fsk_f{i:09d}",
            hashlib.sha256(f"filler-{i}".encode()).hexdigest(),
            "[]",
            False,
            now,
            0,
            owner_id,
            org_id,
        )


_COLUMNS = (
    "name",
    "display_prefix",
    "key_hash",
    "scopes",
    "full_access",
    "created_at",
    "usage_count",
    "owner_id",
    "organization_id",
)


def _fill(engine: sa.Engine, table: sa.Table, count: int, owner_id: int, org_id: Any) -> None:
    if count <= 0:
        return
    columns = ", ".join(_COLUMNS)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in _filler_rows(count, owner_id, org_id):
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in _COLUMNS)
            rows = _filler_rows(count, owner_id, org_id)
            sql = f"INSERT INTO {table.name} ({columns}) VALUES ({marks})"
            cursor.executemany(sql, ((*r[:5], r[5].isoformat(sep=" "), *r[6:]) for r in rows))
        raw.commit()
        if engine.dialect.name == "postgresql":
            raw.driver_connection.autocommit = True  # type: ignore[union-attr]
            raw.cursor().execute(f"VACUUM ANALYZE {table.name}")
        else:
            raw.cursor().execute("ANALYZE")
            raw.commit()
    finally:
        raw.close()


# -- the server ----------------------------------------------------------------------------


class Server:
    def __init__(self, database_url: str, log: Path) -> None:
        self.port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
            "DATABASE_URL": database_url,
            "FLASK_SECRET_KEY": "bench",
            "PYTHONPATH": str(ROOT),
        }
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    GUNICORN,
                    "-w",
                    "2",
                    "-b",
                    f"127.0.0.1:{self.port}",
                    "-c",
                    str(ROOT / "example_app" / "gunicorn.conf.py"),
                    "benchmarks.app:create_app()",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get_status(self.port, BARE) == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


# -- one configuration -------------------------------------------------------------------------


def revoke_under_load(
    database_url: str, server: Server, secret: str, prefix: str, route: str
) -> str:
    """Revoke the key while wrk hammers the route; the next request must be refused."""
    from benchmarks.app import create_app
    from example_app import apikeys, db

    url = f"http://127.0.0.1:{server.port}{route}"
    load = threading.Thread(target=wrk, args=(url, secret, 3, 4, 1))
    load.start()
    time.sleep(1)
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench"})
    with app.app_context():
        key = apikeys.service.queries.get_by_display_prefix(prefix)
        apikeys.service.keys.revoke(key, reason="benchmark")
        statuses = [get_status(server.port, route, secret) for _ in range(20)]
        db.session.remove()
        db.engine.dispose()
    load.join()
    # 401 revoked_api_key, or 429 once the failed-auth throttle has seen enough of
    # the load's refused requests from this address: refused either way.
    if set(statuses) <= {401, 429} and statuses[0] in {401, 429}:
        return f"refused on the next request ({statuses.count(401)}x401, {statuses.count(429)}x429)"
    return f"FAILED {statuses}"


def run_one(
    backend: str, database_url: str, size: int, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    print(f"\n== {backend}, {size:,} keys", flush=True)
    secret, prefix = prepare(database_url, size)
    server = Server(database_url, tmp / f"gunicorn-{backend}-{size}.log")
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert get_status(server.port, args.route, secret) == 200
        bare: list[WrkResult] = []
        protected: list[WrkResult] = []
        floor: list[WrkResult] = []
        routes = [(BARE, None, bare), (args.route, secret, protected)]
        if backend == "postgresql" and args.floor:
            routes.append((FLOOR, None, floor))
        for path, key, _ in routes:  # warm up every route
            wrk(base + path, key, 2, args.connections, args.threads)
        for n in range(args.rounds):
            first = n % len(routes)  # each route takes its turn at going first
            for path, key, sink in routes[first:] + routes[:first]:
                sink.append(wrk(base + path, key, args.duration, args.connections, args.threads))
        ratios = [p.rps / b.rps for p, b in zip(protected, bare, strict=True)]
        floor_ratios = [f.rps / b.rps for f, b in zip(floor, bare, strict=True)] if floor else []
        errors = sum(r.non_2xx for r in protected + bare + floor)
        revocation = revoke_under_load(database_url, server, secret, prefix, args.route)
    finally:
        server.stop()
    result = {
        "backend": backend,
        "size": size,
        "bare_rps": statistics.median(r.rps for r in bare),
        "bare_p50": statistics.median(r.p50_ms for r in bare),
        "bare_p99": statistics.median(r.p99_ms for r in bare),
        "prot_rps": statistics.median(r.rps for r in protected),
        "prot_p50": statistics.median(r.p50_ms for r in protected),
        "prot_p99": statistics.median(r.p99_ms for r in protected),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "floor": statistics.median(floor_ratios) if floor_ratios else None,
        "errors": errors,
        "revocation": revocation,
    }
    print(
        f"  bare {result['bare_rps']:.0f} req/s, protected {result['prot_rps']:.0f} req/s, "
        f"ratio {result['ratio']:.3f} (rounds: {', '.join(f'{r:.3f}' for r in ratios)}); "
        f"non-2xx {errors}; revocation: {revocation}",
        flush=True,
    )
    if floor_ratios:
        print(
            f"  floor (bare + one SELECT 1): ratio {result['floor']:.3f} "
            f"(rounds: {', '.join(f'{r:.3f}' for r in floor_ratios)})",
            flush=True,
        )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--route", default="/v1/ping/key")
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help=f"on PostgreSQL, do not also measure {FLOOR} (bare + one SELECT 1)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="apikeys-bench-"))
    results = []
    pg_base = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    for backend in args.backends.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            if backend == "sqlite":
                url = f"sqlite:///{tmp / f'bench-{size}.sqlite'}"
                results.append(run_one(backend, url, size, args, tmp))
            else:
                schema = f"apikeys_bench_{uuid.uuid4().hex[:8]}"
                admin = sa.create_engine(pg_base)
                with admin.begin() as conn:
                    conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
                try:
                    sep = "&" if "?" in pg_base else "?"
                    url = f"{pg_base}{sep}options=-csearch_path%3D{schema}"
                    results.append(run_one(backend, url, size, args, tmp))
                finally:
                    with admin.begin() as conn:
                        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                    admin.dispose()
    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"{args.rounds} interleaved rounds, gunicorn -w 2 (sync), {os.cpu_count()} CPUs; "
        f"protected route {args.route}"
    )
    header = (
        f"{'backend':<11}{'keys':>10}{'bare req/s':>12}{'p50':>8}{'p99':>8}"
        f"{'prot req/s':>12}{'p50':>8}{'p99':>8}{'ratio':>8}{'floor':>8}{'÷floor':>8}"
        f"{'target':>8}"
    )
    print(header)
    for r in results:
        print(
            f"{r['backend']:<11}{r['size']:>10,}{r['bare_rps']:>12.0f}{r['bare_p50']:>7.2f}m{r['bare_p99']:>7.2f}m"
            f"{r['prot_rps']:>12.0f}{r['prot_p50']:>7.2f}m{r['prot_p99']:>7.2f}m{r['ratio']:>8.3f}"
            f"{format(r['floor'], '.3f') if r['floor'] is not None else '-':>8}"
            f"{format(r['ratio'] / r['floor'], '.3f') if r['floor'] else '-':>8}"
            f"{'≥' + str(TARGETS[r['backend']]):>8}"
        )
    for backend in {r["backend"] for r in results}:
        by_size = {r["size"]: r for r in results if r["backend"] == backend}
        if len(by_size) > 1:
            small, large = by_size[min(by_size)], by_size[max(by_size)]
            change = large["prot_rps"] / small["prot_rps"] - 1
            ratio_change = large["ratio"] / small["ratio"] - 1
            print(
                f"{backend}: at {max(by_size):,} keys vs {min(by_size):,}: protected req/s "
                f"{change:+.1%}, ratio {ratio_change:+.1%} (the ratio is steadier on a busy "
                "machine)"
            )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    io.DEFAULT_BUFFER_SIZE = 1 << 16
    sys.exit(main())
