"""A short run of scripts/schemathesis: the example app on a real gunicorn server, its
/openapi.json checked by schemathesis (every check) with a full-access key, a read-only
key and no key, on SQLite or on TEST_DATABASE_URL's PostgreSQL. The long run is in
docs/openapi.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import DATABASE_URL, service_unavailable

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "schemathesis"

pytestmark = pytest.mark.servers


def _database_args() -> list[str]:
    if not DATABASE_URL.startswith("postgres"):
        return []
    url = DATABASE_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        service_unavailable("PostgreSQL", str(exc).splitlines()[0])
    return ["--database-url", DATABASE_URL]


def refused(run: str) -> set[str]:
    """The operations of a run's "returned only 401/403 responses" warning."""
    warning = run.split("returned only 401/403 responses", 1)[1:]
    if not warning:
        return set()
    block = warning[0].split("💡", 1)[0]
    return set(re.findall(r"^  - ((?:GET|POST) \S+)$", block, re.M))


def test_the_example_app_conforms_to_its_description() -> None:
    # As docs/openapi.md shows it; after "--", schemathesis's own default phases.
    command = [sys.executable, str(SCRIPT), "--max-examples", "10", "--seed", "1"]
    command += ["--", "--phases", "examples,coverage,fuzzing,stateful"]
    database = _database_args()
    result = subprocess.run(
        [*command[:6], *database, *command[6:]], capture_output=True, text=True, timeout=900
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    runs = output.split("==> schemathesis with ")[1:]
    assert [run.split(" on ")[0] for run in runs] == [
        "full-access key (Authorization: Bearer)",
        "read-only key (X-API-Key)",
        "no key",
    ]
    for run in runs:
        counts = re.search(r"(\d+) generated, (\d+) passed", run)
        assert counts is not None and int(counts[1]) > 50, run[-3000:]
        assert int(counts[1]) == int(counts[2])  # every case passed every check
    # Schemathesis warns of operations that only ever answered 401/403: none with the
    # full-access key, the write with the read-only key, every one without a key.
    assert refused(runs[0]) == set()
    assert refused(runs[1]) == {"POST /v1/invoices"}
    assert refused(runs[2]) == {
        "GET /v1/clients",
        "GET /v1/invoices",
        "GET /v1/me/permissions",
        "POST /v1/invoices",
    }
    assert output.rstrip().endswith("==> schemathesis: all runs passed")
