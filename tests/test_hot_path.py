"""The hot path: one SELECT for a valid key, none for a malformed one, never a write."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from tests.conftest import bearer


@contextmanager
def recorded_statements(engine: sa.Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_a_verified_request_costs_exactly_one_select_and_no_write(host: Any) -> None:
    secret = host.service.issue(host.ann, "x", ["doc.read"]).secret
    engine = host.module.db.engine
    host.module.db.session.remove()
    with recorded_statements(engine) as statements:
        for _ in range(3):
            response = host.client.get("/read", headers=bearer(secret))
            assert response.status_code == 200
    assert len(statements) == 3, statements
    for statement in statements:
        assert statement.lstrip().upper().startswith("SELECT")
        assert "api_keys" in statement and "accounts" in statement  # key and owner together


def test_a_bad_checksum_costs_no_query(host: Any) -> None:
    secret = host.service.issue(host.ann, "x", ["doc.read"]).secret
    typo = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with recorded_statements(host.module.db.engine) as statements:
        for headers in (bearer(typo), bearer("garbage"), {"X-API-Key": "tst_" + "é" * 38}):
            assert host.client.get("/read", headers=headers).status_code == 401
    assert statements == []


def test_an_insufficient_scope_also_costs_one_select(host: Any) -> None:
    secret = host.service.issue(host.ben, "x", ["doc.read"]).secret
    with recorded_statements(host.module.db.engine) as statements:
        assert host.client.post("/write", headers=bearer(secret)).status_code == 403
    assert len(statements) == 1


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
