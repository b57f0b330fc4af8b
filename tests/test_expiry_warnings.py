"""Expiry warnings: once per key and threshold, across runs, processes and hosts."""

from __future__ import annotations

import datetime as dt
import email
import email.header
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_apikeys import signals
from flask_apikeys.db.models import utcnow
from flask_apikeys.service.expiry import ExpiryWarning
from flask_apikeys.web.expiry_schedule import (
    expiring_soon,
    stop_expiry_warnings,
    warning_days,
)
from tests.conftest import _configured_postgres, _fresh_schema
from tests.pages.conftest import Browser
from tests.smtp import smtp_server

ROOT = Path(__file__).resolve().parent.parent


def _service() -> Any:
    from example_app import apikeys

    return apikeys.service


def _user(email_address: str) -> Any:
    from example_app import db
    from example_app.models import User

    return db.session.scalar(sa.select(User).where(User.email == email_address))


def _key(app: Flask, email_address: str, name: str, expires_in: dt.timedelta | None) -> int:
    with app.app_context():
        expires_at = utcnow() + expires_in if expires_in is not None else None
        issued = _service().keys.issue(
            _user(email_address), name, ["client.read"], expires_at=expires_at
        )
        return int(issued.key.id)


def _warn(app: Flask, now: dt.datetime | None = None) -> list[tuple[str, int]]:
    """Run the warnings at *now*; ``[(key name, days)]`` of those sent."""
    sent: list[ExpiryWarning] = []
    with app.app_context():
        _service().expiry.warn_expiring([7, 1], sent.append, now=now)
        return [(w.key.name, w.days) for w in sent]


DAY = dt.timedelta(days=1)


def _header(value: str) -> str:
    return str(email.header.make_header(email.header.decode_header(value)))


def test_each_key_gets_each_warning_once_and_the_nearest_when_it_crossed_both(
    app: Flask,
) -> None:
    _key(app, "bob@acme.test", "in 10 days", 10 * DAY)
    _key(app, "bob@acme.test", "in 5 days", 5 * DAY)
    _key(app, "bob@acme.test", "in 12 hours", DAY / 2)
    _key(app, "bob@acme.test", "never", None)
    revoked = _key(app, "bob@acme.test", "revoked", 5 * DAY)
    rotated = _key(app, "bob@acme.test", "rotated", 5 * DAY)
    with app.app_context():
        service = _service()
        service.keys.revoke(service.queries.get_key(revoked))
        service.keys.rotate(service.queries.get_key(rotated), grace=dt.timedelta(hours=1))
    # The rotated key's successor expires in 5 days too, and is warned in its own right.
    assert sorted(_warn(app)) == [("in 12 hours", 1), ("in 5 days", 7), ("rotated", 7)]
    assert _warn(app) == []  # never twice
    later = utcnow() + 4.6 * DAY
    assert sorted(_warn(app, later)) == [("in 10 days", 7), ("in 5 days", 1), ("rotated", 1)]
    assert _warn(app, later) == []
    # Once expired, a key gets nothing more.
    assert _warn(app, utcnow() + 20 * DAY) == []


def test_a_warning_is_claimed_by_exactly_one_run(app: Flask) -> None:
    key_id = _key(app, "bob@acme.test", "soon", 3 * DAY)
    with app.app_context():
        service = _service()
        assert service.expiry.due_expiry_warnings([7, 1]) == [(key_id, 7)]
        (candidate,) = service.expiry._candidates([7, 1], None)
        now = utcnow()
        assert service.expiry._claim(candidate, now) is True
        assert service.expiry._claim(candidate, now) is False  # a second run, or process
        assert service.expiry.due_expiry_warnings([7, 1]) == []


def test_keys_of_inactive_owners_and_idle_keys_get_no_warning(app: Flask) -> None:
    from example_app import db

    _key(app, "bob@acme.test", "bob's", 3 * DAY)
    idle = _key(app, "alice@acme.test", "idle", 3 * DAY)
    with app.app_context():
        _user("bob@acme.test").active = False
        db.session.commit()
        table = _service().context.models.APIKey.__table__
        db.session.execute(
            sa.update(table).where(table.c.id == idle).values(created_at=utcnow() - 40 * DAY)
        )
        db.session.commit()
        acme = _user("alice@acme.test").memberships[0].organization_id
        _service().policies.set_policy(acme, idle_expiry_days=30)
    assert _warn(app) == []


def test_a_failing_receiver_is_logged_and_the_warning_stays_sent(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    _key(app, "bob@acme.test", "soon", 3 * DAY)

    def broken(warning: ExpiryWarning) -> None:
        raise OSError("mail server down")

    with app.app_context():
        assert len(_service().expiry.warn_expiring([7], broken)) == 1
    assert "could not send the expiry warning" in caplog.text
    assert _warn(app) == []


def test_notify_expiring_emails_the_owner_once(app: Flask) -> None:
    _key(app, "bob@acme.test", "Nightly export", 3 * DAY)
    _key(app, "bob@acme.test", "Far away", 60 * DAY)
    with smtp_server() as (server, inbox):
        app.config["MAIL_SERVER"] = server
        result = app.test_cli_runner().invoke(args=["apikeys", "notify-expiring"])
        assert result.exit_code == 0, result.output
        assert "Sent 1 expiry warning." in result.stderr
        assert result.stdout.count("\t7\t") == 1 and "fsk_" in result.stdout
        again = app.test_cli_runner().invoke(args=["apikeys", "notify-expiring"])
        assert "Sent 0 expiry warnings." in again.stderr
    (message,) = inbox
    assert message["To"] == "bob@acme.test"
    assert _header(message["Subject"]) == "Your API key “Nightly export” expires in 3 days"
    body = message.get_payload(decode=True).decode()
    assert "Nightly export" in body and "/settings/api-keys/" in body
    assert "fsk_" in body and "UTC" in body


def test_a_dry_run_lists_the_warnings_due_and_claims_nothing(app: Flask) -> None:
    _key(app, "bob@acme.test", "soon", 3 * DAY)
    result = app.test_cli_runner().invoke(args=["apikeys", "notify-expiring", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "1 expiry warning due." in result.stderr
    assert len(_warn(app)) == 1


def test_the_warning_days_setting_is_checked() -> None:
    assert warning_days({"APIKEYS_EXPIRY_WARNING_DAYS": [1, 7, 7]}) == (7, 1)
    assert warning_days({"APIKEYS_EXPIRY_WARNING_DAYS": "3"}) == (3,)
    assert warning_days({"APIKEYS_EXPIRY_WARNING_DAYS": None}) == ()
    for bad in ([0], ["soon"], [True], 2.5):
        with pytest.raises(RuntimeError, match="APIKEYS_EXPIRY_WARNING_DAYS"):
            warning_days({"APIKEYS_EXPIRY_WARNING_DAYS": bad})


def test_the_key_list_marks_keys_that_expire_soon(app: Flask) -> None:
    _key(app, "bob@acme.test", "Soon", 3 * DAY - dt.timedelta(minutes=1))
    _key(app, "bob@acme.test", "Tomorrow", DAY / 2)
    _key(app, "bob@acme.test", "Later", 30 * DAY)
    browser = Browser(app.test_client())
    browser.login("bob@acme.test")
    page = browser.get("/").text
    rows = {
        name: page[page.index(f">{name}</a>") :].split("</tr>")[0]
        for name in ("Soon", "Tomorrow", "Later")
    }
    assert "Expires in 3 days" in rows["Soon"]
    assert "Expires within a day" in rows["Tomorrow"]
    assert "ak-badge-expiring" not in rows["Later"]
    with app.app_context():
        keys = _service().queries.list_keys(owner=_user("bob@acme.test"))
        assert sorted(expiring_soon(keys).values()) == [1, 3]


# -- in-process timer --------------------------------------------------------------------


@pytest.fixture
def timed_app(database_url: str, tmp_path: Any) -> Iterator[Flask]:
    """The example app with the in-process timer on (an hour: only the first run counts)."""
    from example_app import create_app, db
    from example_app.cli import seed_demo_data

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "APIKEYS_EXPIRY_NOTIFY_INTERVAL": 3600,
        }
    )
    app.instance_path = str(tmp_path)
    with app.app_context():
        db.create_all()
        seed_demo_data()
    yield app
    stop_expiry_warnings(app)
    with app.app_context():
        app.extensions["apikeys"].flush_usage(app)
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def test_the_timer_starts_with_the_first_request_and_stops(timed_app: Flask) -> None:
    _key(timed_app, "bob@acme.test", "soon", 3 * DAY)
    received = threading.Event()
    warned: list[str] = []

    def receiver(sender: Flask, key: Any, days: int, **extra: Any) -> None:
        warned.append(f"{key.name}:{days}:{threading.current_thread().name}")
        received.set()

    signals.key_expiring.connect(receiver, sender=timed_app)
    try:
        client = timed_app.test_client()
        assert client.get("/login").status_code == 200
        assert received.wait(20), "the timer sent nothing"
        assert client.get("/login").status_code == 200  # no second thread
        threads = [t for t in threading.enumerate() if t.name == "flask-apikeys-expiry-warnings"]
        assert len(threads) == 1
        stop_expiry_warnings(timed_app)
        assert not threads[0].is_alive()
    finally:
        signals.key_expiring.disconnect(receiver, sender=timed_app)
    assert warned == ["soon:7:flask-apikeys-expiry-warnings"]


# -- two processes, one e-mail -----------------------------------------------------------


def test_notify_expiring_run_twice_across_two_processes_sends_one_email(
    tmp_path: Path,
) -> None:
    """The issue's check, on PostgreSQL: two ``flask ... notify-expiring`` at once."""
    from example_app import create_app, db
    from example_app.cli import seed_demo_data

    with _fresh_schema(_configured_postgres()) as url:
        app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
        app.instance_path = str(tmp_path)
        owners = ["alice@acme.test", "bob@acme.test", "carol@globex.test"]
        try:
            with app.app_context():
                db.create_all()  # the schema as the release's migration will make it
                seed_demo_data()
            for n in range(12):
                _key(app, owners[n % 3], f"key {n}", (2 + n / 10) * DAY)
            # Each message takes the server a while, so that the two runs overlap.
            with smtp_server(delay=0.05) as (mail_server, messages):
                env = {
                    **os.environ,
                    "DATABASE_URL": url,
                    "FLASK_MAIL_SERVER": mail_server,
                    "FLASK_SECRET_KEY": "x",
                }
                command = [sys.executable, "-m", "flask", "--app", "example_app"]
                runs = [
                    subprocess.Popen(
                        [*command, "apikeys", "notify-expiring"],
                        cwd=ROOT,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                    for _ in range(2)
                ]
                outputs = [run.communicate(timeout=120) for run in runs]
            for run, (_, stderr) in zip(runs, outputs, strict=True):
                assert run.returncode == 0, stderr
            sent = [line for stdout, _ in outputs for line in stdout.splitlines()]
            assert len(sent) == 12  # between them, each warning once
            recipients = sorted((m["To"], m["Subject"]) for m in messages)
            assert len(recipients) == 12 and len(set(recipients)) == 12
            assert {to for to, _ in recipients} == set(owners)
            with app.app_context():
                assert _service().expiry.due_expiry_warnings([7, 1]) == []
        finally:
            with app.app_context():
                db.session.remove()
                db.drop_all()
                db.engine.dispose()


def test_the_expiry_warnings_doc_example_runs(app: Flask) -> None:
    doc = ROOT / "docs" / "expiry-warnings.md"
    text = doc.read_text()
    start = text.index("<!-- example:expiry-warnings -->")
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert match is not None
    outbox: list[tuple[list[str], str, str]] = []

    def send_mail(to: list[str], subject: str, body: str) -> None:
        outbox.append((to, subject, body))

    namespace: dict[str, Any] = {"app": app, "send_mail": send_mail}
    exec(compile(match.group(1), str(doc), "exec"), namespace)
    try:
        _key(app, "carol@globex.test", "Backups", 3 * DAY)
        for _ in range(2):
            result = app.test_cli_runner().invoke(args=["apikeys", "notify-expiring"])
            assert result.exit_code == 0, result.output
    finally:
        signals.key_expiring.disconnect(namespace["warn_owner"], sender=app)
    ((to, subject, body),) = outbox
    assert to == ["carol@globex.test"]
    assert subject.startswith("Your API key 'Backups' expires on ")
    assert "(7-day notice)" in body
