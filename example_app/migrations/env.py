"""Alembic's environment for the example app, run by Flask-Migrate (``flask --app
example_app db ...``, and ``flask --app example_app seed``, which upgrades).

Flask-Migrate's own template, tidied, with two changes: logging is configured from
``alembic.ini`` only when the process has not configured it already (a test run, an app
with handlers of its own), and never disables loggers that exist. The target metadata is
the app's ``db.metadata``: the example's tables and flask-apikeys' (``api_keys``,
``api_key_events``, ``api_key_usage_days``), so autogenerate sees both.
"""

from __future__ import annotations

import logging
from logging.config import fileConfig
from typing import Any

from alembic import context
from flask import current_app

config = context.config
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate = current_app.extensions["migrate"]
target_db = migrate.db
# For offline mode (`flask db upgrade --sql`); "%" is configparser's escape character.
config.set_main_option(
    "sqlalchemy.url",
    target_db.engine.url.render_as_string(hide_password=False).replace("%", "%%"),
)


def run_migrations_offline() -> None:
    """Write the SQL to stdout instead of running it."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_db.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the app's engine, in one transaction where the database
    allows it (PostgreSQL; SQLite commits each DDL statement)."""

    def process_revision_directives(_context: Any, _revision: Any, directives: Any) -> None:
        # `flask db migrate` with nothing to do writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    # compare_type=True and render_as_batch=True (example_app/__init__.py's Migrate).
    conf_args = dict(migrate.configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    with target_db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_db.metadata, **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
