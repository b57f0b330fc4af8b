"""What a client controls never reaches the database unchecked: forwarded addresses,
NUL bytes in reasons and searches, absurd dates. (Found by scripts/fuzz.)"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from flask_apikeys import RequestRefused, parse_expiry
from flask_apikeys.keys.network import storable_address
from tests.conftest import bearer


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("demo-pas\x00\x00sword", None),
        ("1" * 300, None),
        ("", None),
        (None, None),
    ],
)
def test_only_real_addresses_are_stored(raw: Any, stored: Any) -> None:
    assert storable_address(raw) == stored


def test_an_expiry_date_near_the_end_of_the_calendar_is_refused() -> None:
    with pytest.raises(RequestRefused, match="before the year 9000"):
        parse_expiry("9999-12-31")


def test_forged_addresses_and_nul_bytes_write_nothing_broken(
    app: Any, client: Any, make_key: Any
) -> None:
    from example_app import apikeys, db
    from example_app.models import User

    secret = make_key("bob@acme.test", ["client.read"])
    forged = {"REMOTE_ADDR": "demo-pas\x00\x00sword"}  # what ProxyFix passes on as-is
    assert client.get("/v1/clients", headers=bearer(secret), environ_base=forged).status_code == 200
    assert apikeys.flush_usage(app) >= 1  # the flush goes through
    with app.app_context():
        alice = db.session.scalar(sa.select(User).where(User.email == "alice@acme.test"))
        key = apikeys.service.list_keys(
            owner=db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        )[0]
        assert key.usage_count >= 1 and key.last_used_ip is None
        with pytest.raises(RequestRefused, match="cannot be shown"):
            apikeys.service.revoke(key, actor=alice, reason="left\x00")
        apikeys.service.revoke(key, actor=alice, reason="left", ip="x\x00y")
        assert [e.ip for e in apikeys.service.events(key) if e.event == "revoked"] == [None]
        found = apikeys.service.list_keys(organization_id=key.organization_id, search="te\x00st")
        assert [k.id for k in found] == [key.id]  # "test key": the NUL is left out
