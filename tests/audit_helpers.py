"""The audit trail's data, shared by tests/test_audit_trail*.py and the browser test
(tests/browser/test_audit_page.py): keys issued, renamed, rotated, restricted and
revoked through the service, plus a simulated week of events with explicit times; the
``seeded`` fixture that makes them, and ``entries``, the service's view of them. Not
a test module: the modules that use the fixture import it by name, as
``seeded_fixture`` (so that no test's argument shadows an import).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

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


@pytest.fixture(name="seeded")
def seeded_fixture(app: Flask) -> Seeded:
    return seed_trail(app)


def seed_trail(app: Flask, formula_name: str = INJECTION) -> Seeded:
    """Keys issued, renamed, rotated, restricted and revoked through the service, and a
    week of events at chosen times (the browser tests use it too)."""
    from example_app import apikeys, db

    with app.app_context():
        s = apikeys.service
        users = _users(db)
        alice, bob, carol = users["alice"], users["bob"], users["carol"]
        issued = s.keys.issue(bob, "Nightly export", ["invoice.read"], actor=bob, ip="198.51.100.7")
        s.keys.rename(issued.key, "Nightly export (prod)", actor=bob, ip="198.51.100.7")
        rotated = s.keys.rotate(issued.key, actor=bob, ip="198.51.100.7")
        s.restrictions.set_ip_allowlist(
            rotated.key, ["203.0.113.0/24"], actor=alice, ip="192.0.2.1"
        )
        s.restrictions.set_rate_limit(rotated.key, "100/minute", actor=alice, ip="192.0.2.1")
        laptop = s.keys.issue(bob, "Laptop script", ["client.read"], actor=bob).key
        s.keys.revoke(laptop, actor=alice, reason="lost laptop", ip="192.0.2.1")
        formula = s.keys.issue(alice, formula_name, ["client.read"], actor=alice).key
        globex_key = s.keys.issue(carol, "Globex secret thing", ["client.read"], actor=carol).key
        s.keys.rename(globex_key, "Globex secret thing 2", actor=carol)
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


def entries(app: Flask, org: int, limit: int = 500, **filters: Any) -> list[Any]:
    from example_app import apikeys

    with app.app_context():
        s = apikeys.service
        audit = s.audit_trail.audit_filter(org, **filters)
        return s.audit_trail.audit_page(audit, limit=limit).entries
