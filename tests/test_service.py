"""The service layer enforces the contract's rules and audits every change."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from flask_apikeys import AuthenticationFailed, RequestRefused, parse_duration, parse_expiry
from flask_apikeys.db.models import utcnow


def events(host: Any, key: Any) -> list[str]:
    return [e.event for e in reversed(host.service.queries.events(key))]


def test_issue_returns_the_secret_once_and_stores_only_its_hash(host: Any) -> None:
    issued = host.service.keys.issue(host.ann, "CI pipeline", ["doc.read"])
    key = issued.key
    assert issued.secret.startswith("tst_")
    assert key.key_hash == host.service.context.hash(issued.secret)
    assert issued.secret not in repr(issued)
    row = host.module.db.session.execute(sa.text("SELECT * FROM api_keys")).mappings().one()
    assert issued.secret not in str(dict(row))
    assert row["display_prefix"] == issued.secret[:12]
    assert events(host, key) == ["created"]


def test_a_key_holds_only_permissions_its_creator_holds(host: Any) -> None:
    with pytest.raises(RequestRefused, match=r"doc\.write"):
        host.service.keys.issue(host.ben, "x", ["doc.read", "doc.write"])
    assert host.service.queries.list_keys() == []


def test_creating_needs_the_create_permission(host: Any) -> None:
    host.permissions["ben@example.test"].discard("api_key.create")
    with pytest.raises(RequestRefused, match=r"api_key\.create"):
        host.service.keys.issue(host.ben, "x", ["doc.read"])


def test_nobody_creates_keys_for_someone_else(host: Any) -> None:
    with pytest.raises(RequestRefused, match="yourself"):
        host.service.keys.issue(host.ben, "x", ["doc.read"], actor=host.ann)


def test_inactive_users_cannot_create_keys(host: Any) -> None:
    host.ben.is_active = False
    with pytest.raises(RequestRefused, match="not active"):
        host.service.keys.issue(host.ben, "x", ["doc.read"])


@pytest.mark.parametrize(
    ("name", "message"),
    [("   ", "name"), ("x" * 101, "at most 100"), ("bad\x00name", "cannot be shown")],
)
def test_names_are_required_trimmed_and_bounded(host: Any, name: str, message: str) -> None:
    with pytest.raises(RequestRefused, match=message):
        host.service.keys.issue(host.ann, name, ["doc.read"])


def test_names_are_trimmed_and_unicode_is_kept(host: Any) -> None:
    key = host.service.keys.issue(host.ann, "  Zürich   nightly  export ", ["doc.read"]).key
    assert key.name == "Zürich nightly export"


def test_a_key_needs_at_least_one_scope_unless_full_access(host: Any) -> None:
    with pytest.raises(RequestRefused, match="at least one"):
        host.service.keys.issue(host.ann, "x", [])
    key = host.service.keys.issue(host.ann, "x", [], full_access=True).key
    assert key.full_access and key.scopes == []


def test_unknown_permissions_are_refused_once_a_vocabulary_is_registered(host: Any) -> None:
    host.app.config["APIKEYS_PERMISSIONS"] = {"doc.read": "Read documents"}
    with pytest.raises(RequestRefused, match="Unknown permission"):
        host.service.keys.issue(host.ann, "x", ["doc.write"])


def test_expiry_must_be_in_the_future_and_within_the_maximum_lifetime(host: Any) -> None:
    now = utcnow()
    with pytest.raises(RequestRefused, match="future"):
        host.service.keys.issue(
            host.ann, "x", ["doc.read"], expires_at=now - dt.timedelta(seconds=1)
        )
    host.app.config["APIKEYS_MAX_LIFETIME"] = 90
    host.module.apikeys.refresh(host.app)
    with pytest.raises(RequestRefused, match="within 90 days"):
        host.service.keys.issue(host.ann, "x", ["doc.read"], expires_at=None)
    with pytest.raises(RequestRefused, match="within 90 days"):
        host.service.keys.issue(host.ann, "x", ["doc.read"], expires_at=parse_expiry("1y"))
    assert host.service.keys.issue(host.ann, "x", ["doc.read"], expires_at=parse_expiry("90d"))


def test_parse_expiry_understands_the_documented_forms() -> None:
    now = dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.UTC)
    assert parse_expiry("30d", now) == now + dt.timedelta(days=30)
    assert parse_expiry("1y", now) == now + dt.timedelta(days=365)
    assert parse_expiry("never", now) is None
    assert parse_expiry("2026-02-01", now) == dt.datetime(2026, 2, 2, tzinfo=dt.UTC)
    for bad in ["2026-01-31", "2026-02-30", "tomorrow", "", "9999999d"]:
        with pytest.raises(RequestRefused):
            parse_expiry(bad, now)


def test_parse_duration() -> None:
    assert parse_duration("now") == dt.timedelta(0)
    assert parse_duration("1h") == dt.timedelta(hours=1)
    assert parse_duration("7d") == dt.timedelta(days=7)
    for bad in ["-1h", "1w", "soon", "400d"]:
        with pytest.raises(RequestRefused):
            parse_duration(bad)


def test_creation_policy_can_refuse_with_its_own_message(host: Any) -> None:
    host.module.apikeys.creation_policy(lambda user, org: "API keys are available on paid plans")
    try:
        with pytest.raises(RequestRefused, match="paid plans"):
            host.service.keys.issue(host.ann, "x", ["doc.read"])
    finally:
        host.module.apikeys._creation_policy = None


def test_effective_scopes_follow_what_the_owner_holds_now(host: Any) -> None:
    secret = host.service.keys.issue(host.ann, "x", ["doc.read", "doc.write"]).secret
    assert host.service.verifier.verify(secret).scopes == {"doc.read", "doc.write"}
    host.permissions["ann@example.test"].discard("doc.write")
    assert host.service.verifier.verify(secret).scopes == {"doc.read"}
    host.permissions["ann@example.test"].add("doc.admin")
    assert host.service.verifier.verify(secret).scopes == {"doc.read"}


def test_full_access_is_whatever_the_owner_holds_per_request(host: Any) -> None:
    secret = host.service.keys.issue(host.ann, "x", full_access=True).secret
    host.permissions["ann@example.test"].add("doc.admin")
    assert "doc.admin" in host.service.verifier.verify(secret).scopes


def test_verify_refuses_in_the_contracts_order(host: Any) -> None:
    service = host.service
    issued = service.keys.issue(
        host.ann, "x", ["doc.read"], expires_at=utcnow() + dt.timedelta(days=1)
    )
    typo = issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B")
    for bad in ["", "tst_nope", typo]:
        with pytest.raises(AuthenticationFailed) as info:
            service.verifier.verify(bad)
        assert info.value.code == "invalid_api_key"

    issued.key.expires_at = utcnow() - dt.timedelta(seconds=1)
    host.module.db.session.commit()
    with pytest.raises(AuthenticationFailed) as info:
        service.verifier.verify(issued.secret)
    assert info.value.code == "expired_api_key"

    issued.key.expires_at = None
    host.ann.is_active = False
    host.module.db.session.commit()
    with pytest.raises(AuthenticationFailed) as info:
        service.verifier.verify(issued.secret)
    assert info.value.code == "inactive_user"

    service.keys.revoke(issued.key)
    with pytest.raises(AuthenticationFailed) as info:
        service.verifier.verify(issued.secret)
    assert info.value.code == "revoked_api_key"


def test_a_key_from_another_pepper_is_unknown(host: Any) -> None:
    secret = host.service.keys.issue(host.ann, "x", ["doc.read"]).secret
    host.app.config["APIKEYS_PEPPER"] = "server-side-secret"
    host.module.apikeys.refresh(host.app)
    with pytest.raises(AuthenticationFailed):
        host.service.verifier.verify(secret)
    peppered = host.service.keys.issue(host.ann, "y", ["doc.read"]).secret
    assert host.service.verifier.verify(peppered).key.name == "y"


def test_revocation_is_permanent_audited_and_idempotent(host: Any) -> None:
    key = host.service.keys.issue(host.ann, "x", ["doc.read"]).key
    assert host.service.keys.revoke(key, actor=host.ann, reason="leaked in a gist") is True
    assert host.service.keys.revoke(key, actor=host.ann) is False
    assert key.status == "revoked"
    assert key.revoked_reason == "leaked in a gist"
    assert key.revoked_by_id == host.ann.uuid
    assert events(host, key) == ["created", "revoked"]
    event = host.service.queries.events(key)[0]
    assert event.actor_id == host.ann.uuid and event.details == {"reason": "leaked in a gist"}
    with pytest.raises(RequestRefused):
        host.service.keys.rotate(key)


def test_only_the_owner_or_an_admin_may_revoke(host: Any) -> None:
    key = host.service.keys.issue(host.ann, "x", ["doc.read"]).key
    with pytest.raises(RequestRefused):
        host.service.keys.revoke(key, actor=host.ben)
    assert key.status == "active"


def test_rotation_keeps_the_old_key_for_the_grace_period(host: Any) -> None:
    service = host.service
    old = service.keys.issue(host.ann, "deploy", ["doc.read"], expires_at=parse_expiry("30d"))
    new = service.keys.rotate(
        old.key, actor=host.ann, grace=dt.timedelta(hours=1), ip="203.0.113.9"
    )
    assert new.secret != old.secret
    assert new.key.rotated_from_id == old.key.id
    assert new.key.name == "deploy" and new.key.scopes == ["doc.read"]
    assert service.verifier.verify(old.secret).key.id == old.key.id
    assert service.verifier.verify(new.secret).key.id == new.key.id
    assert old.key.in_grace_period
    assert new.key.expires_at - new.key.created_at == old.key.expires_at - old.key.created_at
    assert events(host, old.key) == ["created", "rotated"]
    assert service.queries.events(old.key)[0].ip == "203.0.113.9"
    with pytest.raises(RequestRefused, match="already been rotated"):
        service.keys.rotate(old.key, actor=host.ann)

    service.context.clock = lambda: utcnow() + dt.timedelta(hours=1, seconds=1)
    with pytest.raises(AuthenticationFailed) as info:
        service.verifier.verify(old.secret)
    assert info.value.code == "revoked_api_key"
    assert service.verifier.verify(new.secret)


def test_revoking_a_key_in_its_grace_period_stops_it_now(host: Any) -> None:
    old = host.service.keys.issue(host.ann, "x", ["doc.read"])
    host.service.keys.rotate(old.key, grace=dt.timedelta(days=7))
    assert host.service.keys.revoke(old.key) is True
    with pytest.raises(AuthenticationFailed):
        host.service.verifier.verify(old.secret)


def test_rotation_with_no_grace_stops_the_old_key_now(host: Any) -> None:
    old = host.service.keys.issue(host.ann, "x", ["doc.read"])
    host.service.keys.rotate(old.key)
    with pytest.raises(AuthenticationFailed) as info:
        host.service.verifier.verify(old.secret)
    assert info.value.code == "revoked_api_key"


def test_rotation_drops_scopes_the_owner_no_longer_holds(host: Any) -> None:
    old = host.service.keys.issue(host.ann, "x", ["doc.read", "doc.write"])
    host.permissions["ann@example.test"].discard("doc.write")
    assert host.service.keys.rotate(old.key).key.scopes == ["doc.read"]


def test_only_the_owner_rotates_or_renames(host: Any) -> None:
    key = host.service.keys.issue(host.ann, "x", ["doc.read"]).key
    with pytest.raises(RequestRefused):
        host.service.keys.rotate(key, actor=host.ben)
    with pytest.raises(RequestRefused):
        host.service.keys.rename(key, "mine now", actor=host.ben)
    assert key.name == "x"


def test_rename_is_audited_with_old_and_new_names(host: Any) -> None:
    key = host.service.keys.issue(host.ann, "x", ["doc.read"]).key
    host.service.keys.rename(key, "  nightly  ", actor=host.ann)
    assert key.name == "nightly"
    event = host.service.queries.events(key)[0]
    assert event.event == "renamed"
    assert event.details == {"old_name": "x", "new_name": "nightly"}


def test_revoke_user_keys_revokes_only_usable_keys_of_that_user(host: Any) -> None:
    service = host.service
    a1 = service.keys.issue(host.ann, "a1", ["doc.read"]).key
    a2 = service.keys.issue(host.ann, "a2", ["doc.read"]).key
    b1 = service.keys.issue(host.ben, "b1", ["doc.read"]).key
    service.keys.revoke(a2)
    assert service.keys.revoke_user_keys(host.ann, reason="left the company") == 1
    assert a1.status == "revoked" and a1.revoked_reason == "left the company"
    assert b1.status == "active"


def test_list_filters_by_owner_status_and_search(host: Any) -> None:
    service = host.service
    service.keys.issue(host.ann, "Nightly export", ["doc.read"])
    revoked = service.keys.issue(host.ann, "Old 100%_key", ["doc.read"]).key
    service.keys.revoke(revoked)
    service.keys.issue(host.ben, "Ben's", ["doc.read"])
    assert {k.name for k in service.queries.list_keys(owner=host.ann)} == {
        "Nightly export",
        "Old 100%_key",
    }
    assert [k.name for k in service.queries.list_keys(status="revoked")] == ["Old 100%_key"]
    assert [k.name for k in service.queries.list_keys(search="100%_")] == ["Old 100%_key"]
    assert [k.name for k in service.queries.list_keys(search="NIGHTLY")] == ["Nightly export"]
    with pytest.raises(RequestRefused):
        service.queries.list_keys(status="bogus")


def test_get_owned_key_hides_other_users_keys(host: Any) -> None:
    key = host.service.keys.issue(host.ann, "x", ["doc.read"]).key
    assert host.service.queries.get_owned_key(host.ann, key.id) is key
    assert host.service.queries.get_owned_key(host.ben, key.id) is None
    for bad in ["abc", None, 10**30, -1, "1; drop table"]:
        assert host.service.queries.get_owned_key(host.ann, bad) is None


def test_signals_are_sent_for_each_change(host: Any) -> None:
    from flask_apikeys.web import signals

    seen: list[tuple[str, Any]] = []

    def record(name: str) -> Any:
        return lambda sender, **data: seen.append((name, data["key"].name))

    receivers = {name: record(name) for name in signals.BY_EVENT}
    for name, receiver in receivers.items():
        signals.BY_EVENT[name].connect(receiver, host.app)
    try:
        key = host.service.keys.issue(host.ann, "x", ["doc.read"]).key
        host.service.keys.rename(key, "y")
        host.service.keys.rotate(key)
        host.service.keys.revoke(key)
    finally:
        for name, receiver in receivers.items():
            signals.BY_EVENT[name].disconnect(receiver)
    assert seen == [("created", "x"), ("renamed", "y"), ("rotated", "y"), ("created", "y")]


def test_models_point_at_the_hosts_user_table_and_key_type(host: Any) -> None:
    table = host.module.apikeys.models.APIKey.__table__
    fk = next(iter(table.c.owner_id.foreign_keys))
    assert fk.column.table.name == "accounts"
    assert isinstance(table.c.owner_id.type, sa.String)
