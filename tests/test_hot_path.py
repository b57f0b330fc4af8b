"""The hot path: one SELECT for a valid key, none for a malformed one, never a write."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.conftest import bearer
from tests.statements import lookups, recorded_statements, version_checks, writes


def test_a_verified_request_costs_at_most_one_select_and_no_write(host: Any) -> None:
    secret = host.service.keys.issue(host.ann, "x", ["doc.read"]).secret
    engine = host.module.db.engine
    host.module.db.session.remove()
    with recorded_statements() as statements:
        for _ in range(3):
            response = host.client.get("/read", headers=bearer(secret))
            assert response.status_code == 200
    assert writes(statements) == []
    found = lookups(statements)
    for statement in found:
        assert "api_keys" in statement and "accounts" in statement  # key and owner together
    checks = version_checks(statements)
    others = [s for s in statements if s not in found and s not in checks]
    assert others == []
    if engine.dialect.name == "sqlite":
        # The first request loads; then nothing was committed, and SQLite's
        # data version says so: no SELECT at all.
        assert len(found) == 1, statements
        assert len(checks) == 3
    else:
        assert len(found) == 3, statements
        assert checks == []


def test_sqlite_selects_again_after_any_commit(host: Any) -> None:
    """The data version moves with every commit of another connection, whatever it
    wrote: the next request reads the rows again (and a revocation is seen)."""
    engine = host.module.db.engine
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL SELECTs on every request (the test above)
    secret = host.service.keys.issue(host.ann, "x", ["doc.read"]).secret
    host.module.db.session.remove()
    assert host.client.get("/read", headers=bearer(secret)).status_code == 200
    with recorded_statements() as statements:
        with engine.begin() as conn:  # an unrelated commit
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS unrelated (id INTEGER)"))
        assert host.client.get("/read", headers=bearer(secret)).status_code == 200
        assert host.client.get("/read", headers=bearer(secret)).status_code == 200
    assert len(lookups(statements)) == 1, statements


def test_a_bad_checksum_costs_no_query(host: Any) -> None:
    secret = host.service.keys.issue(host.ann, "x", ["doc.read"]).secret
    typo = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with recorded_statements() as statements:
        for headers in (bearer(typo), bearer("garbage"), {"X-API-Key": "tst_" + "é" * 38}):
            assert host.client.get("/read", headers=headers).status_code == 401
    assert statements == []


def test_an_insufficient_scope_also_costs_one_select(host: Any) -> None:
    secret = host.service.keys.issue(host.ben, "x", ["doc.read"]).secret
    host.module.db.session.remove()
    with recorded_statements() as statements:
        assert host.client.post("/write", headers=bearer(secret)).status_code == 403
    assert len(lookups(statements)) == 1
    assert writes(statements) == []


def test_the_key_lookup_uses_the_unique_hash_index(host: Any) -> None:
    table = host.module.apikeys.models.APIKey.__table__
    indexed = {tuple(c.name for c in ix.columns) for ix in table.indexes}
    unique = {
        tuple(c.name for c in uc.columns)
        for uc in table.constraints
        if isinstance(uc, sa.UniqueConstraint)
    }
    assert ("key_hash",) in indexed | unique
    assert table.c.key_hash.unique
