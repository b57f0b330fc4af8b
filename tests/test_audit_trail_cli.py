"""The organization's audit trail (issue #14, item 2) on the command line: ``flask
apikeys audit`` (text or JSON, its filters, its one-line refusals) and ``flask apikeys
prune-audit`` (a dry run, batches, retention off or misconfigured). The data comes
from tests/audit_helpers.py.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.audit_helpers import (
    ACME_SERVICE_EVENTS,
    NOW,
    entries,
    seeded_fixture,  # noqa: F401 (the seeded fixture)
)

# -- the CLI ------------------------------------------------------------------------------


def run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["apikeys", *args])


def test_the_cli_prints_the_trail_as_text_or_json(app, seeded):
    result = run(app, "audit", "--org", str(seeded.acme), "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == ACME_SERVICE_EVENTS + seeded.week
    assert {line["organization"] for line in lines} == {seeded.acme}
    revoked = next(line for line in lines if line["event"] == "revoked")
    assert revoked["actor"] == "alice@acme.test" and revoked["owner"] == "bob@acme.test"
    assert revoked["key"] == seeded.laptop and revoked["label"] == "Revoked"
    result = run(
        app,
        "audit",
        "--org",
        str(seeded.acme),
        "--user",
        "alice@acme.test",
        "--role",
        "actor",
        "--event",
        "revoked",
        "--event",
        "rate_limit_changed",
        "--since",
        "1d",
    )
    assert result.exit_code == 0, result.output
    text = result.stdout.splitlines()
    assert len(text) == 2
    assert any("revoked" in line and "by=alice@acme.test" in line for line in text)
    result = run(app, "audit", "--org", str(seeded.acme), "--key", seeded.export, "--limit", "3")
    assert len(result.stdout.splitlines()) == 3 and seeded.export in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--since", "last tuesday"], "is not a date"),
        (["--event", "Bad Name"], "not an event name"),
        (["--user", "nobody@acme.test"], "No user"),
        (["--key", "fsk_zzzzzzzz"], "No key"),
    ],
)
def test_the_cli_refuses_bad_filters_in_one_line(app, seeded, args, words):
    result = run(app, "audit", "--org", str(seeded.acme), *args)
    assert result.exit_code == 1
    assert words in result.stderr and "Traceback" not in result.output


def test_the_cli_says_so_when_nothing_matches(app, seeded):
    result = run(app, "audit", "--org", "424242")
    assert result.exit_code == 0 and result.stdout == ""
    assert "No events." in result.stderr


def test_prune_counts_then_deletes_in_batches_what_is_too_old(app, seeded):
    from example_app import apikeys, db

    def count() -> int:
        with app.app_context():
            Event = apikeys.models.APIKeyEvent
            return int(db.session.scalar(sa.select(sa.func.count()).select_from(Event)))

    before = count()
    result = run(app, "prune-audit", "--older-than", "3", "--dry-run")
    assert result.exit_code == 0, result.output
    doomed = int(re.search(r"Would delete (\d+)", result.stderr).group(1))
    # days 3-7 of each of the three simulated series, the policy change is younger
    assert doomed == 5 * 3 and count() == before
    result = run(app, "prune-audit", "--older-than", "3", "--batch-size", "4")
    assert result.exit_code == 0, result.output
    assert f"Deleted {doomed} audit events" in result.stderr
    assert count() == before - doomed
    assert all(e.at >= NOW - dt.timedelta(days=3, hours=1) for e in entries(app, seeded.acme))
    result = run(app, "prune-audit")  # the default retention: a year; nothing that old
    assert "Deleted 0 audit events" in result.stderr


def test_prune_keeps_everything_when_retention_is_off(app, seeded):
    app.config["APIKEYS_AUDIT_RETENTION_DAYS"] = None
    result = run(app, "prune-audit")
    assert result.exit_code == 0 and "keeps events forever" in result.stderr
    app.config["APIKEYS_AUDIT_RETENTION_DAYS"] = "a year"
    result = run(app, "prune-audit")
    assert result.exit_code == 1 and "APIKEYS_AUDIT_RETENTION_DAYS" in result.stderr
    assert run(app, "prune-audit", "--older-than", "0").exit_code == 2  # click: 1 or more
