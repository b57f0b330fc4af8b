"""The organization's audit trail (issue #14, item 2), the service: its filters (by
person, key, event and dates) and the sentences that refuse bad ones, its keyset pages,
moments, retention and CSV cells, the index its query walks; and the docs' example.
The admin page and its CSV are in tests/test_audit_trail_pages.py, ``flask apikeys
audit`` and ``prune-audit`` in tests/test_audit_trail_cli.py; the data they share (made
the way the app makes it) in tests/audit_helpers.py.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_apikeys import RequestRefused
from flask_apikeys.service.audit_filters import csv_cell, parse_moment, retention_cutoff
from tests.audit_helpers import (
    ACME_SERVICE_EVENTS,
    NOW,
    POLICY_AT,
    entries,
    seeded_fixture,  # noqa: F401 (the seeded fixture)
)
from tests.docs_examples import example_app_example

DOC = Path(__file__).resolve().parent.parent / "docs" / "audit.md"


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
        audit = s.audit_trail.audit_filter(seeded.acme)
        everything = [e.id for e in s.audit_trail.audit_page(audit, limit=500).entries]
        pages, cursor = [], None
        while True:
            page = s.audit_trail.audit_page(audit, limit=4, before=cursor)
            pages.append(page)
            cursor = page.older
            if cursor is None:
                break
        assert [e.id for p in pages for e in p.entries] == everything
        assert pages[0].newer is None and all(p.newer for p in pages[1:])
        back = s.audit_trail.audit_page(audit, limit=4, after=pages[2].newer)
        assert [e.id for e in back.entries] == [e.id for e in pages[1].entries]
        first = s.audit_trail.audit_page(audit, limit=4, after=pages[1].newer)  # back at the newest
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
                apikeys.service.audit_trail.audit_filter(seeded.acme, **filters)
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
            s.audit_trail.audit_filter(seeded.acme, key=seeded.globex_key)
        with pytest.raises(RequestRefused) as refused:
            s.audit_trail.audit_filter(seeded.acme, key=secret)
        assert "never the whole key" in refused.value.message
        assert secret[4:] not in refused.value.message
        for org in ("acme", "", "1" * 40, -(2**70), None):
            with pytest.raises(RequestRefused, match="organization"):
                s.audit_trail.audit_filter(org)
        for cursor in ("1.2.3", "x", "9" * 17 + "." + "9" * 19, "-1.5"):
            with pytest.raises(RequestRefused, match="page link"):
                s.audit_trail.audit_page(s.audit_trail.audit_filter(seeded.acme), before=cursor)


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
        stmt = s.audit_trail.audit_query(
            s.audit_trail.audit_filter(seeded.acme, events=["revoked"])
        ).limit(50)
        sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
        with db.engine.connect() as conn:
            if db.engine.dialect.name == "postgresql":  # a tiny table: make it choose
                conn.execute(sa.text("SET enable_seqscan = off"))
                plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN " + sql))
            else:
                plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        assert "ix_api_key_events_organization_at" in plan, plan


# -- the docs -----------------------------------------------------------------------------


def test_the_docs_example_runs(database_url: str) -> None:
    with example_app_example("audit.md", "audit", database_url):
        pass  # the example asserts what it shows
