"""The example app's migration history (example_app/migrations) against its models.

On SQLite, or on a fresh PostgreSQL schema when TEST_DATABASE_URL is set: upgrading an
empty database gives exactly the tables the models describe (the example's and
flask-apikeys' ``api_keys``, ``api_key_events`` and ``api_key_usage_days``), which an
autogenerate comparison and ``flask db check`` both confirm. A change to a model without
a new revision is caught here: the comparison names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

APIKEYS_TABLES = {
    "api_keys",
    "api_key_events",
    "api_key_usage_days",
    "api_key_policies",
    "api_key_quota_counters",
    "api_key_requests",
}
EXAMPLE_TABLES = {"organizations", "users", "memberships", "clients", "invoices"}
MIGRATIONS = Path(__file__).resolve().parent.parent / "example_app" / "migrations"


@pytest.fixture
def example(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The example app on an empty database, inside an app context."""
    from example_app import create_app, db

    app = create_app(
        {"TESTING": True, "SECRET_KEY": "test-secret", "SQLALCHEMY_DATABASE_URI": database_url}
    )
    app.instance_path = str(tmp_path)
    with app.app_context():
        assert not sa.inspect(db.engine).get_table_names(), "the database is not empty"
        yield app
        db.session.remove()
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        db.engine.dispose()


def drift(metadata: sa.MetaData | None = None) -> list[Any]:
    """What autogenerate would put in a new revision: the database against *metadata*
    (the app's ``db.metadata`` by default), compared as ``flask db migrate`` compares."""
    from example_app import db

    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata or db.metadata))


def tables() -> set[str]:
    from example_app import db

    return set(sa.inspect(db.engine).get_table_names())


def unique_constraints_and_indexes(*, from_database: bool = False) -> dict[str, set[Any]]:
    """Per table, its unique constraints and indexes as ``(kind, columns)``: reflected
    from the database, or as the models declare them. Alembic's comparison does not
    see SQLite's unnamed unique constraints; this sees them on every database."""
    from example_app import db

    facts: dict[str, set[Any]] = {}
    inspector = sa.inspect(db.engine)
    for name, table in db.metadata.tables.items():
        if from_database:
            found = {
                ("unique", tuple(u["column_names"])) for u in inspector.get_unique_constraints(name)
            }
            for index in inspector.get_indexes(name):
                kind = "unique" if index["unique"] else "index"
                found.add((kind, tuple(index["column_names"])))
        else:
            found = {
                ("unique", tuple(c.name for c in constraint.columns))
                for constraint in table.constraints
                if isinstance(constraint, sa.UniqueConstraint)
            }
            for index in table.indexes:
                kind = "unique" if index.unique else "index"
                found.add((kind, tuple(c.name for c in index.columns)))
        facts[name] = found
    return facts


def db_check(app: Flask) -> Any:
    return app.test_cli_runner().invoke(args=["db", "check"])


def test_the_history_has_one_head_and_upgrading_an_empty_database_matches_the_models(
    example: Flask,
) -> None:
    config = example.extensions["migrate"].migrate.get_config()
    assert Path(config.get_main_option("script_location")) == MIGRATIONS
    script = ScriptDirectory.from_config(config)
    heads = script.get_heads()
    assert len(heads) == 1, f"several heads, merge them: {heads}"

    flask_migrate.upgrade()

    assert tables() == EXAMPLE_TABLES | APIKEYS_TABLES | {"alembic_version"}
    from example_app import db

    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == tuple(heads)
    assert drift() == []
    assert unique_constraints_and_indexes(from_database=True) == unique_constraints_and_indexes()
    result = db_check(example)
    assert result.exit_code == 0, result.output  # 1 when it finds drift (below)


def test_downgrade_to_base_leaves_nothing_and_upgrade_builds_it_again(example: Flask) -> None:
    flask_migrate.upgrade()
    flask_migrate.downgrade(revision="base")

    assert tables() == {"alembic_version"}
    missing = {diff[1].name for diff in drift() if diff[0] == "add_table"}
    assert missing == EXAMPLE_TABLES | APIKEYS_TABLES  # the comparison sees what is not there
    result = db_check(example)
    assert result.exit_code == 1, result.output

    flask_migrate.upgrade()
    assert drift() == []
    assert db_check(example).exit_code == 0


def test_a_model_change_without_a_revision_is_drift(example: Flask) -> None:
    """The comparison this file relies on sees columns, indexes and unique constraints
    of flask-apikeys' tables: a model that differs from the migrations fails the tests."""
    from example_app import db

    flask_migrate.upgrade()
    changed = sa.MetaData()
    for table in db.metadata.sorted_tables:
        table.to_metadata(changed)
    keys = changed.tables["api_keys"]
    keys.append_column(sa.Column("note", sa.String(50), nullable=True))
    (owner_index,) = [ix for ix in keys.indexes if ix.name == "ix_api_keys_owner_id"]
    keys.indexes.remove(owner_index)
    events = changed.tables["api_key_events"]
    sa.Index("ix_api_key_events_ip", events.c.ip)
    (unique_hash,) = [
        c for c in keys.constraints if isinstance(c, sa.UniqueConstraint) and "key_hash" in c.c
    ]
    keys.constraints.remove(unique_hash)

    found = {(diff[0], getattr(diff[-1], "name", None)) for diff in drift(changed)}
    expected = {
        ("add_column", "note"),
        ("remove_index", "ix_api_keys_owner_id"),
        ("add_index", "ix_api_key_events_ip"),
    }
    if db.engine.dialect.name == "postgresql":
        # Alembic cannot tell SQLite's unnamed unique constraints apart: there,
        # unique_constraints_and_indexes() compares them (first test).
        expected.add(("remove_constraint", "api_keys_key_hash_key"))
    assert found == expected


def test_the_unique_constraint_comparison_sees_a_missing_one(example: Flask) -> None:
    from example_app import db

    flask_migrate.upgrade()
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_api_keys_owner_id"))
    database = unique_constraints_and_indexes(from_database=True)
    models = unique_constraints_and_indexes()
    assert models["api_keys"] - database["api_keys"] == {("index", ("owner_id",))}
    assert ("unique", ("key_hash",)) in database["api_keys"]


def test_seed_upgrades_a_fresh_database_and_can_run_again(example: Flask) -> None:
    from example_app import db
    from example_app.models import User

    runner = example.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["seed"])
        assert result.exit_code == 0, result.output
        assert "Seeded Acme" in result.output
    assert "alembic_version" in tables()
    assert drift() == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 5


def test_seed_refuses_a_database_made_before_the_example_had_migrations(
    example: Flask,
) -> None:
    from example_app import db

    db.create_all()  # what `seed` did before example_app/migrations existed
    result = example.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 1
    assert "made before the example had migrations" in result.output
    assert "alembic_version" not in tables()


def test_upgrading_from_0_1_gives_old_events_their_organization(example: Flask) -> None:
    """The second revision's data step: events written under 0.1 (no organization_id)
    get their key's organization, so an admin's audit trail shows them."""
    from example_app import db

    flask_migrate.upgrade(revision="6ad881f886b8")
    now = "2026-01-02 03:04:05"
    with db.engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO organizations (id, name) VALUES (7, 'Acme'), (8, 'Other')")
        )
        conn.execute(
            sa.text(
                "INSERT INTO users (id, email, name, password_hash, active, session_token) "
                "VALUES (1, 'a@x.test', 'A', 'x', true, 't')"
            )
        )
        for key_id, org in ((1, 7), (2, 8), (3, None)):
            conn.execute(
                sa.text(
                    "INSERT INTO api_keys (id, name, display_prefix, key_hash, scopes, "
                    "full_access, created_at, usage_count, owner_id, organization_id) "
                    "VALUES (:id, 'k', :prefix, :hash, '[]', false, :now, 0, 1, :org)"
                ),
                {
                    "id": key_id,
                    "prefix": f"fsk_{key_id}",
                    "hash": str(key_id),
                    "now": now,
                    "org": org,
                },
            )
            conn.execute(
                sa.text(
                    "INSERT INTO api_key_events (event, at, key_id) VALUES ('created', :now, :id)"
                ),
                {"now": now, "id": key_id},
            )

    flask_migrate.upgrade()

    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT key_id, organization_id FROM api_key_events ORDER BY key_id")
        ).all()
        assert [tuple(row) for row in rows] == [(1, 7), (2, 8), (3, None)]
        assert conn.execute(sa.text("SELECT plan FROM organizations WHERE id = 7")).scalar() == (
            "business"
        )
    assert drift() == []
