"""The organization's audit trail (issue #14, item 2): the service's filters and keyset
pages, the admin page and its CSV, ``flask apikeys audit`` and ``prune-audit``.

The data is made the way the app makes it: keys issued, renamed, rotated, restricted
and revoked through the service, plus a simulated week of events with explicit times.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys import RequestRefused
from flask_apikeys.audit_filters import csv_cell, parse_moment, retention_cutoff
from tests.docs_examples import example_app_example
from tests.statements import recorded_statements

PAGE = "/settings/api-keys/organization/audit"
CSV = "/settings/api-keys/organization/audit.csv"
DOC = Path(__file__).resolve().parent.parent / "docs" / "audit.md"
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
ROW = re.compile(r'<th scope="row" data-label="When"><time datetime="([^"]+)"')
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
POLICY_AT = NOW - dt.timedelta(days=2, hours=12)
INJECTION = '=HYPERLINK("http://evil.test","click")'


@dataclass
class Seeded:
    acme: int
    globex: int
    alice: int
    bob: int
    carol: int
    export: str  # bob's rotated key (the new one)
    export_old: str  # the one it replaced
    laptop: str  # bob's key alice revoked
    formula: str  # alice's key with a formula for a name
    globex_key: str
    week: int  # events of the simulated week


def _users(db: Any) -> dict[str, Any]:
    from example_app.models import User

    return {u.email.split("@")[0]: u for u in db.session.scalars(sa.select(User)).unique()}


@pytest.fixture
def seeded(app: Flask) -> Seeded:
    return seed_trail(app)


def seed_trail(app: Flask, formula_name: str = INJECTION) -> Seeded:
    """Keys issued, renamed, rotated, restricted and revoked through the service, and a
    week of events at chosen times (the browser tests use it too)."""
    from example_app import apikeys, db

    with app.app_context():
        s = apikeys.service
        users = _users(db)
        alice, bob, carol = users["alice"], users["bob"], users["carol"]
        issued = s.issue(bob, "Nightly export", ["invoice.read"], actor=bob, ip="198.51.100.7")
        s.rename(issued.key, "Nightly export (prod)", actor=bob, ip="198.51.100.7")
        rotated = s.rotate(issued.key, actor=bob, ip="198.51.100.7")
        s.set_ip_allowlist(rotated.key, ["203.0.113.0/24"], actor=alice, ip="192.0.2.1")
        s.set_rate_limit(rotated.key, "100/minute", actor=alice, ip="192.0.2.1")
        laptop = s.issue(bob, "Laptop script", ["client.read"], actor=bob).key
        s.revoke(laptop, actor=alice, reason="lost laptop", ip="192.0.2.1")
        formula = s.issue(alice, formula_name, ["client.read"], actor=alice).key
        globex_key = s.issue(carol, "Globex secret thing", ["client.read"], actor=carol).key
        s.rename(globex_key, "Globex secret thing 2", actor=carol)
        Event = apikeys.models.APIKeyEvent
        acme = rotated.key.organization_id
        # A simulated week: uses after expiry, a raw event of a host, an org-wide policy
        # change, and one event of Globex every day, each at a time of its own.
        week = 0
        for day in range(1, 8):
            at = NOW - dt.timedelta(days=day, hours=day)
            db.session.add_all(
                [
                    Event(
                        key_id=rotated.key.id,
                        organization_id=acme,
                        event="expired_use",
                        at=at,
                        ip=f"203.0.113.{day}",
                        details={"reason": "expired"},
                    ),
                    Event(
                        key_id=laptop.id,
                        organization_id=acme,
                        event="host.exported",
                        actor_id=bob.id,
                        at=at - dt.timedelta(minutes=5),
                        details={"rows": day * 10},
                    ),
                    Event(
                        key_id=globex_key.id,
                        organization_id=globex_key.organization_id,
                        event="revoked",
                        actor_id=carol.id,
                        at=at,
                        details={"reason": "globex only"},
                    ),
                ]
            )
            week += 2
        db.session.add(
            Event(
                key_id=None,
                organization_id=acme,
                event="policy_changed",
                actor_id=alice.id,
                at=POLICY_AT,
                details={"before": {"max_lifetime_days": None}, "after": {"max_lifetime_days": 90}},
            )
        )
        week += 1
        db.session.commit()
        return Seeded(
            acme=acme,
            globex=globex_key.organization_id,
            alice=alice.id,
            bob=bob.id,
            carol=carol.id,
            export=rotated.key.display_prefix,
            export_old=issued.key.display_prefix,
            laptop=laptop.display_prefix,
            formula=formula.display_prefix,
            globex_key=globex_key.display_prefix,
            week=week,
        )


# Events of Acme written through the service: created twice (export, then its rotation)
# + renamed + rotated + ip_allowlist_changed + rate_limit_changed + created + revoked
# (laptop) + created (formula).
ACME_SERVICE_EVENTS = 9


def login(client: FlaskClient, email: str) -> FlaskClient:
    page = client.get("/login")
    token = _CSRF.search(page.text)
    assert token
    response = client.post(
        "/login",
        data={"email": email, "password": "demo-password", "csrf_token": token.group(1)},
    )
    assert response.status_code == 302
    return client


@pytest.fixture
def alice(app: Flask) -> FlaskClient:
    return login(app.test_client(), "alice@acme.test")


def entries(app: Flask, org: int, limit: int = 500, **filters: Any) -> list[Any]:
    from example_app import apikeys

    with app.app_context():
        s = apikeys.service
        audit = s.audit_filter(org, **filters)
        return s.audit_page(audit, limit=limit).entries


def user(app: Flask, email: str) -> Any:
    from example_app import db
    from example_app.models import User

    return db.session.scalar(sa.select(User).where(User.email == email))


# -- the service ------------------------------------------------------------------------


def test_the_trail_holds_every_event_of_the_organization_and_no_other(app, seeded):
    acme = entries(app, seeded.acme)
    assert len(acme) == ACME_SERVICE_EVENTS + seeded.week
    assert [e.at for e in acme] == sorted((e.at for e in acme), reverse=True)
    assert not {e.key_prefix for e in acme} & {seeded.globex_key}
    assert "globex only" not in json.dumps([e.details for e in acme])
    globex = entries(app, seeded.globex)
    assert {e.key_prefix for e in globex} == {seeded.globex_key}
    assert len(globex) == 2 + 7  # created, renamed, and its week of revocations
    assert entries(app, 999_999) == []


def test_events_carry_their_key_owner_actor_and_labels(app, seeded):
    acme = entries(app, seeded.acme)
    revoked = next(e for e in acme if e.event == "revoked")
    assert revoked.key_prefix == seeded.laptop and revoked.key_name == "Laptop script"
    assert revoked.owner.email == "bob@acme.test" and revoked.actor.email == "alice@acme.test"
    assert revoked.ip == "192.0.2.1" and revoked.details == {"reason": "lost laptop"}
    assert revoked.label == "Revoked" and revoked.known
    raw = next(e for e in acme if e.event == "host.exported")
    assert raw.label == "host.exported" and not raw.known
    policy = next(e for e in acme if e.event == "policy_changed")
    assert policy.key_prefix is None and policy.owner is None
    assert policy.label == "Policy changed"
    used = next(e for e in acme if e.event == "expired_use")
    assert used.actor is None and used.label == "Used after expiry"


def test_filters_by_person_as_actor_owner_or_either(app, seeded):
    with app.app_context():
        alice, bob = user(app, "alice@acme.test"), user(app, "bob@acme.test")
        by_alice = entries(app, seeded.acme, person=alice, role="actor")
        assert {e.event for e in by_alice} == {
            "ip_allowlist_changed",
            "rate_limit_changed",
            "revoked",
            "created",
            "policy_changed",
        }
        assert all(e.actor_id == seeded.alice for e in by_alice)
        owned_by_bob = entries(app, seeded.acme, person=bob, role="owner")
        assert all(e.owner_id == seeded.bob for e in owned_by_bob)
        assert any(e.actor_id == seeded.alice for e in owned_by_bob)  # alice revoked it
        by_bob = {e.id for e in entries(app, seeded.acme, person=bob, role="actor")}
        either = entries(app, seeded.acme, person=bob)
        assert {e.id for e in either} == by_bob | {e.id for e in owned_by_bob}
        assert by_bob < {e.id for e in either}  # alice revoked his key; it was used expired
        assert all(seeded.bob in (e.actor_id, e.owner_id) for e in either)
        mine = entries(app, seeded.acme, person=alice, role="owner")
        assert {e.key_prefix for e in mine} == {seeded.formula}


def test_filters_by_key_event_and_dates(app, seeded):
    only_export = entries(app, seeded.acme, key=seeded.export + "…")
    assert {e.key_prefix for e in only_export} == {seeded.export}
    assert {e.event for e in only_export} >= {"created", "expired_use", "rate_limit_changed"}
    revocations = entries(app, seeded.acme, events=["revoked", "rotated"])
    assert sorted(e.event for e in revocations) == ["revoked", "rotated"]
    assert [e.event for e in entries(app, seeded.acme, events="host.exported")] == [
        "host.exported"
    ] * 7
    day = POLICY_AT.date()
    that_day = entries(app, seeded.acme, since=day.isoformat(), until=day.isoformat())
    assert that_day and all(e.at.date() == day for e in that_day)
    assert {e.event for e in that_day} >= {"policy_changed"}
    recent = entries(app, seeded.acme, since="36h")
    assert all(e.at >= NOW - dt.timedelta(hours=37) for e in recent)
    assert {e.event for e in recent} >= {"created", "revoked"}


def test_keyset_pages_walk_every_event_once_both_ways(app, seeded):
    from example_app import apikeys

    with app.app_context():
        s = apikeys.service
        audit = s.audit_filter(seeded.acme)
        everything = [e.id for e in s.audit_page(audit, limit=500).entries]
        pages, cursor = [], None
        while True:
            page = s.audit_page(audit, limit=4, before=cursor)
            pages.append(page)
            cursor = page.older
            if cursor is None:
                break
        assert [e.id for p in pages for e in p.entries] == everything
        assert pages[0].newer is None and all(p.newer for p in pages[1:])
        back = s.audit_page(audit, limit=4, after=pages[2].newer)
        assert [e.id for e in back.entries] == [e.id for e in pages[1].entries]
        first = s.audit_page(audit, limit=4, after=pages[1].newer)  # back at the newest
        assert [e.id for e in first.entries] == [e.id for e in pages[0].entries]
        assert first.newer is None


BAD_FILTERS = [
    ({"since": "2026-02-30"}, "since", "is not a date"),
    ({"since": "yesterday"}, "since", "is not a date"),
    ({"since": "2026-01-01\x00"}, "since", "is not a date"),
    ({"since": "\uff12\uff10\uff12\uff16-01-01"}, "since", "is not a date"),  # fullwidth digits
    ({"until": "99999-01-01"}, "until", "is not a date"),
    ({"until": "9999-12-31"}, "until", "between 1970 and 8999"),
    ({"since": "1000000d"}, "since", "is not a date"),
    ({"since": "99999d"}, "since", "at most 100 years"),
    ({"since": "2026-03-02", "until": "2026-03-01"}, "until", "before the end"),
    ({"events": ["DROP TABLE keys"]}, "event", "not an event name"),
    ({"events": ["créé"]}, "event", "not an event name"),
    ({"events": ["x" * 40]}, "event", "not an event name"),
    ({"events": ["revoked\x00"]}, "event", "not an event name"),
    ({"key": "not a key"}, "key", "display prefix"),
    ({"key": "fsk_zzzzzzzz"}, "key", "No key fsk_zzzzzzzz"),
    ({"role": "boss"}, "role", "actor, owner or either"),
]


def test_bad_filters_are_refused_with_a_sentence(app, seeded):
    from example_app import apikeys

    with app.app_context():
        for filters, field, words in BAD_FILTERS:
            with pytest.raises(RequestRefused) as refused:
                apikeys.service.audit_filter(seeded.acme, **filters)
            assert (refused.value.field, words in refused.value.message) == (field, True), (
                filters,
                refused.value.message,
            )


def test_a_key_of_another_organization_or_a_whole_key_is_not_found(app, seeded, make_key):
    from example_app import apikeys

    secret = make_key("bob@acme.test", ["client.read"], name="pasted by mistake")
    with app.app_context():
        s = apikeys.service
        with pytest.raises(RequestRefused, match="No key"):
            s.audit_filter(seeded.acme, key=seeded.globex_key)
        with pytest.raises(RequestRefused) as refused:
            s.audit_filter(seeded.acme, key=secret)
        assert "never the whole key" in refused.value.message
        assert secret[4:] not in refused.value.message
        for org in ("acme", "", "1" * 40, -(2**70), None):
            with pytest.raises(RequestRefused, match="organization"):
                s.audit_filter(org)
        for cursor in ("1.2.3", "x", "9" * 17 + "." + "9" * 19, "-1.5"):
            with pytest.raises(RequestRefused, match="page link"):
                s.audit_page(s.audit_filter(seeded.acme), before=cursor)


def test_moments_and_retention():
    now = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    assert parse_moment("2026-03-01") == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert parse_moment("2026-03-01", end=True) == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    assert parse_moment("2026-03-01T09:30+02:00") == dt.datetime(2026, 3, 1, 7, 30, tzinfo=dt.UTC)
    assert parse_moment("2026-03-01T09:30Z") == dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
    assert parse_moment("7d", now=now) == now - dt.timedelta(days=7)
    assert parse_moment("  ") is None and parse_moment(None) is None
    with pytest.raises(RequestRefused, match="time zone"):
        parse_moment(dt.datetime(2026, 1, 1))
    assert retention_cutoff(None) is None and retention_cutoff(0) is None
    assert retention_cutoff("") is None and retention_cutoff("0") is None
    assert retention_cutoff(30, now) == now - dt.timedelta(days=30)
    assert retention_cutoff(" 30 ", now) == now - dt.timedelta(days=30)
    assert retention_cutoff(dt.timedelta(hours=1), now) == now - dt.timedelta(hours=1)
    for bad in (-1, 10**9, "thirty", True, 1.5, "\uff13"):
        with pytest.raises(RequestRefused):
            retention_cutoff(bad, now)


def test_csv_cells_never_run_as_formulas():
    for risky in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert csv_cell(risky) == "'" + risky
    assert csv_cell("fsk_8fK2mQ9x") == "fsk_8fK2mQ9x"
    assert csv_cell(None) == "" and csv_cell(3) == "3"


def test_the_trail_query_walks_the_organization_index(app, seeded):
    from example_app import apikeys, db

    with app.app_context():
        s = apikeys.service
        stmt = s.audit_query(s.audit_filter(seeded.acme, events=["revoked"])).limit(50)
        sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
        with db.engine.connect() as conn:
            if db.engine.dialect.name == "postgresql":  # a tiny table: make it choose
                conn.execute(sa.text("SET enable_seqscan = off"))
                plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN " + sql))
            else:
                plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        assert "ix_api_key_events_organization_at" in plan, plan


# -- the page -----------------------------------------------------------------------------


def test_the_admin_sees_the_trail_with_labels_people_and_headers(app, seeded, alice):
    response = alice.get(PAGE)
    assert response.status_code == 200
    text = response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert 'aria-current="page">Audit trail</a>' in text
    for words in ("Revoked", "Rotated", "Used after expiry", "IP allowlist changed"):
        assert words in text
    assert '<code class="ak-event-raw">host.exported</code>' in text
    assert "Whole organization" in text and "max lifetime days: 90" in text
    assert "Bob Keller (bob@acme.test)" in text and "Alice Martin (alice@acme.test)" in text
    assert "lost laptop" in text
    assert seeded.globex_key not in text and "Globex" not in text and "globex only" not in text
    assert "Events are kept for 365 days." in text
    assert len(ROW.findall(text)) == min(50, ACME_SERVICE_EVENTS + seeded.week)


def test_only_admins_of_the_organization_see_it(app, seeded, alice):
    bob = login(app.test_client(), "bob@acme.test")
    assert bob.get(PAGE).status_code == 403
    assert bob.get(CSV).status_code == 403
    assert "Audit trail" not in bob.get("/settings/api-keys/").text
    assert alice.get(f"{PAGE}?org={seeded.globex}").status_code == 404
    assert alice.get(f"{CSV}?org={seeded.globex}").status_code == 404
    assert alice.get(f"{PAGE}?org={'9' * 30}").status_code == 404
    assert alice.get(f"{PAGE}?org={seeded.acme}").status_code == 200
    carol = login(app.test_client(), "carol@globex.test")
    text = carol.get(PAGE).text
    assert seeded.globex_key in text and seeded.export not in text
    assert app.test_client().get(PAGE).status_code in (302, 401)


def test_the_page_filters_as_asked(app, seeded, alice):
    text = alice.get(f"{PAGE}?person={seeded.alice}&role=actor").text
    assert 'value="actor" selected' in text
    assert "Laptop script" in text and "ak-event-expired-use" not in text
    text = alice.get(f"{PAGE}?event=revoked").text
    assert len(ROW.findall(text)) == 1 and "lost laptop" in text
    text = alice.get(f"{PAGE}?key={seeded.laptop}").text
    assert len(ROW.findall(text)) == 2 + 7  # created, revoked and the host's week
    day = POLICY_AT.date().isoformat()
    text = alice.get(f"{PAGE}?since={day}&until={day}").text
    assert set(ROW.findall(text)) and all(at.startswith(day) for at in ROW.findall(text))
    text = alice.get(f"{PAGE}?event=nothing.like.this").text
    assert "No events match" in text and "No event called" in text


BAD_QUERIES = [
    "since=2026-02-30",
    "since=%00",
    "until=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-01-01",
    "since=99999999999999999999",
    "event=%27%3B+DROP+TABLE+api_keys%3B--",
    "event=" + "x" * 500,
    "key=fsk_%00",
    "key=%E2%80%AEfsk_x",
    "person=99999999999999999999999999",
    "person=abc",
    "role=admin",
    "before=99999999999999999999.1",
    "after=abc",
    "before=1.99999999999999999999",
]


def test_bad_filters_answer_400_with_the_reason_never_500(app, seeded, alice):
    for query in BAD_QUERIES:
        response = alice.get(f"{PAGE}?{query}")
        assert response.status_code == 400, (query, response.status_code)
        if "%00" not in query:  # the example app refuses control characters before any view
            assert response.headers["Cache-Control"] == "no-store"
            assert 'class="ak-field-errors"' in response.text or "ak-alert-error" in response.text
        if not query.startswith(("before=", "after=")):  # the CSV has no pages
            assert alice.get(f"{CSV}?{query}").status_code == 400, query


def test_the_pager_walks_every_event(app, seeded, alice):
    app.config["APIKEYS_AUDIT_PAGE_SIZE"] = 5
    seen: list[str] = []
    url = PAGE
    for _ in range(20):
        text = alice.get(url).text
        seen += ROW.findall(text)
        older = re.search(r'rel="next" href="([^"]+)"', text)
        if older is None:
            break
        url = older.group(1).replace("&amp;", "&")
    assert len(seen) == ACME_SERVICE_EVENTS + seeded.week
    assert seen == sorted(seen, reverse=True)
    newer = re.search(r'rel="prev" href="([^"]+)"', text)
    assert newer is not None and "Newest" in text


def test_the_page_costs_the_same_queries_for_5_or_50_events(app, seeded, alice):
    app.config["APIKEYS_AUDIT_PAGE_SIZE"] = 5
    with recorded_statements() as few:
        assert alice.get(PAGE).status_code == 200
    app.config["APIKEYS_AUDIT_PAGE_SIZE"] = 50
    with recorded_statements() as many:
        assert alice.get(PAGE).status_code == 200
    assert len(many) == len(few)


def test_the_csv_streams_the_same_filters_and_neutralises_formulas(app, seeded, alice):
    response = alice.get(CSV)
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"
    assert re.fullmatch(
        r'attachment; filename="audit-acme-\d{4}-\d{2}-\d{2}\.csv"',
        response.headers["Content-Disposition"],
    )
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:3] == ["time_utc", "event", "event_name"]
    assert len(rows) - 1 == ACME_SERVICE_EVENTS + seeded.week
    created = next(r for r in rows if r[3] == seeded.formula)
    assert created[4] == "'" + INJECTION
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert not any(seeded.globex_key in cell for row in rows for cell in row)
    revoked = list(csv.DictReader(io.StringIO(alice.get(f"{CSV}?event=revoked").text)))
    assert [r["event_name"] for r in revoked] == ["revoked"]
    assert revoked[0]["by"] == "Alice Martin (alice@acme.test)"
    assert revoked[0]["key_owner"] == "Bob Keller (bob@acme.test)"
    assert json.loads(revoked[0]["details"]) == {"reason": "lost laptop"}


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


# -- the docs -----------------------------------------------------------------------------


def test_the_docs_example_runs(database_url: str) -> None:
    with example_app_example("audit.md", "audit", database_url):
        pass  # the example asserts what it shows
