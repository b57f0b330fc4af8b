"""docs/migrations.md, run as written: a small Flask-Migrate app with a history of its
own gets flask-apikeys' tables through `flask db migrate` and `flask db upgrade`.

Every code block of the page sits under a ``<!-- migrations:NAME -->`` marker, and these
tests use every marker: Python blocks become (or go into) the app's files, and each
line of a shell block runs in the app's directory, where ``.venv`` is the environment
running the tests. On SQLite, or on a fresh PostgreSQL schema when TEST_DATABASE_URL
is set (the app reads ``DATABASE_URL``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

DOC = Path(__file__).resolve().parent.parent / "docs" / "migrations.md"
BLOCK = re.compile(r"<!-- migrations:([\w-]+) -->\n```(\w+)\n(.*?)```", re.S)
APIKEYS_TABLES = {
    "api_keys",
    "api_key_events",
    "api_key_usage_days",
    "api_key_requests",
    "api_key_quota_counters",
    "api_key_policies",
}


def blocks() -> dict[str, str]:
    text = DOC.read_text()
    found = {name: body for name, _lang, body in BLOCK.findall(text)}
    assert len(found) == text.count("```") // 2, "a code block of the page has no marker"
    return found


def test_every_block_of_the_page_is_run_here() -> None:
    """The markers the tests below use are exactly the page's blocks."""
    used = {"app", "history", "extension", "template", "migrate", "upgrade", "check"}
    assert set(blocks()) == used


class HostApp:
    """The page's app in a directory of its own, driven through its shell lines."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.database_url = database_url
        (root / ".venv").symlink_to(sys.prefix, target_is_directory=True)
        self.env = {**os.environ, "DATABASE_URL": database_url}
        self.env.pop("FLASK_APP", None)

    def run(self, block: str) -> str:
        """Each line of a shell block; their stdout and stderr, or a failure."""
        output = ""
        for line in blocks()[block].splitlines():
            result = subprocess.run(
                ["bash", "-c", line],
                cwd=self.root,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            output += result.stdout + result.stderr
            assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
        return output

    def versions(self) -> set[Path]:
        return set((self.root / "migrations" / "versions").glob("*.py"))

    def add_to_template(self) -> None:
        """Step 2: the import line under ``import sqlalchemy as sa``."""
        template = self.root / "migrations" / "script.py.mako"
        text = template.read_text()
        anchor = "import sqlalchemy as sa\n"
        assert text.count(anchor) == 1
        template.write_text(text.replace(anchor, anchor + blocks()["template"]))

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.database_url)


@pytest.fixture
def host(tmp_path: Path, database_url: str) -> Iterator[HostApp]:
    app = HostApp(tmp_path, database_url)
    (tmp_path / "app.py").write_text(blocks()["app"])
    app.run("history")
    (first,) = app.versions()
    assert "op.create_table('users'" in first.read_text()
    yield app
    engine = app.engine()  # a SQLite file goes with tmp_path; a given database does not
    tables = sa.MetaData()
    tables.reflect(engine)
    tables.drop_all(engine)
    engine.dispose()


def test_adding_flask_apikeys_to_a_flask_migrate_app(host: HostApp) -> None:
    with (host.root / "app.py").open("a") as app_py:
        app_py.write("\n\n" + blocks()["extension"])
    host.add_to_template()
    before = host.versions()

    host.run("migrate")

    (revision,) = host.versions() - before
    text = revision.read_text()
    # Step 4, the review: the tables and what the page lists, and nothing else.
    operations = set(re.findall(r"\bop\.(\w+)\(\s*['\"](\w+)['\"]", text))
    assert {table for _op, table in operations} == APIKEYS_TABLES, operations
    for name in (
        "ix_api_keys_owner_id",
        "ix_api_keys_organization_id",
        "ix_api_key_events_key_id",
        "ix_api_key_events_key_at",
        "sa.UniqueConstraint('key_hash')",
        "sa.UniqueConstraint('display_prefix')",
        "sa.BigInteger().with_variant(sa.Integer(), 'sqlite')",
        "flask_apikeys.db.models.UTCDateTime(timezone=True)",
        "import flask_apikeys.db.models",
    ):
        assert name in text, name

    host.run("upgrade")

    engine = host.engine()
    inspector = sa.inspect(engine)
    assert APIKEYS_TABLES | {"users", "alembic_version"} == set(inspector.get_table_names())
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("api_keys")}
    uniques |= {tuple(i["column_names"]) for i in inspector.get_indexes("api_keys") if i["unique"]}
    assert {("key_hash",), ("display_prefix",)} <= uniques
    indexes = {
        table: {i["name"]: tuple(i["column_names"]) for i in inspector.get_indexes(table)}
        for table in ("api_keys", "api_key_events")
    }
    assert indexes["api_keys"]["ix_api_keys_owner_id"] == ("owner_id",)
    assert indexes["api_keys"]["ix_api_keys_organization_id"] == ("organization_id",)
    assert indexes["api_key_events"]["ix_api_key_events_key_id"] == ("key_id",)
    assert indexes["api_key_events"]["ix_api_key_events_key_at"] == ("key_id", "at")
    owner_fk = {
        fk["constrained_columns"][0]: fk["referred_table"]
        for fk in inspector.get_foreign_keys("api_keys")
    }
    assert owner_fk["owner_id"] == "users"
    engine.dispose()

    # Step 6: nothing left to migrate.
    assert "No new upgrade operations detected." in host.run("check")
    after = host.versions()
    migrate_again = host.run("migrate")
    assert "No changes in schema detected." in migrate_again
    assert host.versions() == after


def test_without_the_template_line_the_upgrade_stops_before_changing_anything(
    host: HostApp,
) -> None:
    """What the page says happens when step 2 is skipped, and its remedy."""
    with (host.root / "app.py").open("a") as app_py:
        app_py.write("\n\n" + blocks()["extension"])
    before = host.versions()
    host.run("migrate")
    (revision,) = host.versions() - before

    with pytest.raises(AssertionError, match="NameError: name 'flask_apikeys' is not defined"):
        host.run("upgrade")
    engine = host.engine()
    assert not APIKEYS_TABLES & set(sa.inspect(engine).get_table_names())

    text = revision.read_text()
    anchor = "import sqlalchemy as sa\n"
    revision.write_text(text.replace(anchor, anchor + blocks()["template"], 1))
    host.run("upgrade")
    assert set(sa.inspect(engine).get_table_names()) >= APIKEYS_TABLES
    engine.dispose()
