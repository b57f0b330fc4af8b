"""Bulk data for the pages at scale: one user with tens of thousands of keys, an
organization with a long audit trail.

Rows go straight into the tables (``executemany`` through SQLAlchemy Core, one
transaction), not through :meth:`~flask_apikeys.KeyService.issue`: 50,000 keys take a
second or two instead of minutes. Shared by ``tests/pages/test_scale.py`` and
``benchmarks/pages.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

BOT_EMAIL = "bot@acme.test"
#: Of every ten keys of the bot: three work, one has expired, the rest are revoked.
MIX = ("active", "active", "active", "expired", *["revoked"] * 6)
SCOPES = (["invoice.read"], ["invoice.read", "client.read"], ["client.read", "invoice.write"])


@dataclass(frozen=True)
class Filled:
    bot_id: int
    organization_id: int
    keys: int
    active: int
    expired: int
    revoked: int
    events: int


def add_bot(password_method: str | None = None) -> Any:
    """The bot account of Acme (``bot@acme.test``, the demo password), made once."""
    from example_app.cli import DEMO_PASSWORD
    from example_app.models import Membership, User, db

    bot = db.session.scalar(sa.select(User).where(User.email == BOT_EMAIL))
    if bot is None:
        bot = User(email=BOT_EMAIL, name="Deploy Bot")
        bot.set_password(DEMO_PASSWORD)
        bot.memberships.append(
            Membership(
                organization_id=1,
                permissions="invoice.read invoice.write client.read api_key.create",
            )
        )
        db.session.add(bot)
        db.session.commit()
    return bot


def fill(keys: int = 50_000, events: int = 100_000, *, batch: int = 5_000) -> Filled:
    """*keys* keys of the bot in Acme (see :data:`MIX`) and *events* audit events of
    Acme on them, newest last; in the current app context."""
    from example_app import apikeys
    from example_app.models import db

    bot = add_bot()
    org_id = 1
    models = apikeys.models
    key_table = models.APIKey.__table__
    event_table = models.APIKeyEvent.__table__
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(days=400)
    step = dt.timedelta(days=400) / max(keys, 1)
    counts = {"active": 0, "expired": 0, "revoked": 0}
    first_id = (db.session.scalar(sa.select(sa.func.max(models.APIKey.id))) or 0) + 1

    def key_rows(lo: int, hi: int) -> list[dict[str, Any]]:
        rows = []
        for n in range(lo, hi):
            kind = MIX[n % len(MIX)]
            counts[kind] += 1
            created = start + step * n
            rows.append(
                {
                    "id": first_id + n,
                    "name": f"deploy {n:05d}",
                    "display_prefix": f"fsk_b{n:07d}",
                    "key_hash": hashlib.sha256(f"bulk-{n}".encode()).hexdigest(),
                    "scopes": SCOPES[n % len(SCOPES)],
                    "full_access": False,
                    "created_at": created,
                    "expires_at": (
                        min(created + dt.timedelta(days=30), now - dt.timedelta(hours=1))
                        if kind == "expired"
                        else None
                        if n % 2
                        else now + dt.timedelta(days=30 + n % 700)
                    ),
                    "revoked_at": (
                        min(created + dt.timedelta(hours=1), now) if kind == "revoked" else None
                    ),
                    "revoked_reason": "rotated" if kind == "revoked" else None,
                    "last_used_at": created + dt.timedelta(minutes=30) if n % 3 else None,
                    "usage_count": (n * 7919) % 10_000,
                    "owner_id": bot.id,
                    "created_by_id": bot.id,
                    "organization_id": org_id,
                    # Each key replaced the one before it: a bot that rotates its key.
                    "rotated_from_id": first_id + n - 1 if n else None,
                }
            )
        return rows

    with db.engine.begin() as conn:
        for lo in range(0, keys, batch):
            conn.execute(key_table.insert(), key_rows(lo, min(keys, lo + batch)))
        written = 0
        while written < events:
            rows = []
            for n in range(written, min(events, written + batch)):
                key_n = n % keys if keys else 0
                rows.append(
                    {
                        "event": "created" if n < keys else "revoked",
                        "at": start + step * key_n + dt.timedelta(seconds=n // max(keys, 1)),
                        "ip": "203.0.113.7",
                        "details": (
                            {"scopes": SCOPES[key_n % len(SCOPES)], "expires_at": "never"}
                            if n < keys
                            else {"reason": "rotated"}
                        ),
                        "key_id": first_id + key_n if keys else None,
                        "organization_id": org_id,
                        "actor_id": bot.id,
                    }
                )
            conn.execute(event_table.insert(), rows)
            written += len(rows)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(  # the ids above were given, not drawn from the sequence
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{key_table.name}', 'id'), "
                    f"(SELECT max(id) FROM {key_table.name}))"
                )
            )
            conn.execute(sa.text(f"ANALYZE {key_table.name}"))
            conn.execute(sa.text(f"ANALYZE {event_table.name}"))
    else:
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return Filled(
        bot_id=bot.id,
        organization_id=org_id,
        keys=keys,
        active=counts["active"],
        expired=counts["expired"],
        revoked=counts["revoked"],
        events=events,
    )
