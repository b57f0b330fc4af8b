"""The hot-path lookup: one SELECT through SQLAlchemy, a connection borrowed and given back."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from flask_apikeys import parse_key
from flask_apikeys.db.lookup import KeyLookup, key_select
from flask_apikeys.db.models import utcnow
from tests.conftest import bearer, python_permissions
from tests.statements import lookups, recorded_statements, version_checks


def _engine(app: Flask) -> sa.Engine:
    from example_app import db

    with app.app_context():
        return db.engine


def test_each_request_is_one_select_and_a_change_is_seen_at_once(
    app: Flask, client: FlaskClient, make_key: Any
) -> None:
    from example_app import apikeys, db
    from example_app.models import User

    secret = make_key("bob@acme.test", ["client.read"])
    with recorded_statements() as statements:
        for _ in range(5):
            assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    found = lookups(statements)
    if _engine(app).dialect.name == "sqlite":
        assert len(found) == 1  # the first request; then SQLite's data version is unchanged
        assert len(version_checks(statements)) == 5
    else:
        assert len(found) == 5  # one per request, the first one included
        assert version_checks(statements) == []

    # A demotion (a membership row, loaded with the owner) is seen on the next request.
    with app.app_context():
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        bob.memberships[0].permissions = "invoice.read"
        db.session.commit()
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 403

    # So is a revocation, committed elsewhere.
    with app.app_context():
        key = apikeys.service.queries.get_by_display_prefix(parse_key(secret).display_prefix)
        apikeys.service.keys.revoke(key)
    response = client.get("/v1/clients", headers=bearer(secret))
    assert response.status_code == 401
    assert response.json["error"] == "revoked_api_key"


def test_the_key_and_owner_belong_to_the_requests_session(app: Flask, make_key: Any) -> None:
    """A view may change current_key.key through the service: it must be persisted."""
    from example_app import apikeys, db
    from flask_apikeys import current_key, require_key

    @app.post("/v1/test-revoke-self")
    @require_key()
    def revoke_self() -> Any:
        assert current_key.key in db.session
        assert current_key.owner in db.session
        apikeys.service.keys.revoke(current_key.key, reason="self")
        return {"ok": True}

    client = app.test_client()
    secret = make_key("bob@acme.test", ["client.read"])
    for _ in range(2):  # the second request reuses the objects of the first
        assert client.get("/v1/clients", headers=bearer(secret)).status_code == 200
    assert client.post("/v1/test-revoke-self", headers=bearer(secret)).status_code == 200
    assert client.get("/v1/clients", headers=bearer(secret)).status_code == 401
    with app.app_context():
        key = apikeys.service.queries.get_by_display_prefix(parse_key(secret).display_prefix)
        assert key.revoked_reason == "self"


def test_everything_loaded_with_a_reused_owner_is_attached(app: Flask, make_key: Any) -> None:
    """A view may lazy-load from the owner's eagerly loaded objects on every request."""
    from example_app import db
    from flask_apikeys import current_key, require_key

    @app.get("/v1/test-memberships")
    @require_key()
    def memberships() -> Any:
        membership = current_key.owner.memberships[0]
        assert membership in db.session
        return {"user": membership.user.email, "org": membership.organization.name}

    client = app.test_client()
    secret = make_key("bob@acme.test", ["client.read"])
    for _ in range(3):  # the later requests reuse the objects of the first
        response = client.get("/v1/test-memberships", headers=bearer(secret))
        assert response.status_code == 200, response.text
        assert response.json == {"user": "bob@acme.test", "org": "Acme"}


def test_a_view_that_needs_only_the_scopes_never_opens_a_session(app: Flask, make_key: Any) -> None:
    """Reused objects stay detached until a view asks for ``.key`` or ``.owner``."""
    from example_app import db
    from flask_apikeys import current_key, require_key

    @app.get("/v1/test-scopes-only")
    @require_key(scope="client.read")
    def scopes_only() -> Any:
        opened = db.session.registry.has()
        return {"scopes": sorted(current_key.scopes), "id": current_key.id, "opened": opened}

    @app.get("/v1/test-key-first")
    @require_key(scope="client.read")
    def key_first() -> Any:
        return {"name": current_key.key.name, "attached": current_key.key in db.session}

    @app.get("/v1/test-owner")
    @require_key(scope="client.read")
    def owner() -> Any:
        email = current_key.owner.email
        return {"email": email, "attached": current_key.owner in db.session}

    client = app.test_client()
    secret = make_key("bob@acme.test", ["client.read"])
    client.get("/v1/test-scopes-only", headers=bearer(secret))  # the first one loads
    for _ in range(2):
        response = client.get("/v1/test-scopes-only", headers=bearer(secret))
        assert response.status_code == 200
        assert response.json["scopes"] == ["client.read"]
        assert response.json["opened"] is False
    response = client.get("/v1/test-owner", headers=bearer(secret))
    assert response.json == {"email": "bob@acme.test", "attached": True}
    response = client.get("/v1/test-key-first", headers=bearer(secret))
    assert response.json == {"name": "test key", "attached": True}


def test_key_and_owner_are_loaded_only_when_a_view_asks(app: Flask, make_key: Any) -> None:
    """No ORM object on the path: ``.key`` and ``.owner`` cost one query each, the
    first time a view asks (``Session.get``), and none when it does not."""
    from example_app import db
    from flask_apikeys import current_key, require_key

    @app.get("/v1/test-objects/<what>")
    @require_key()
    def objects(what: str) -> Any:
        with recorded_statements() as statements:
            if what in ("key", "both", "twice"):
                assert current_key.key.name == "test key"
                assert current_key.key in db.session
            if what in ("owner", "both", "twice"):
                assert current_key.owner.email == "bob@acme.test"
                assert current_key.owner in db.session
            if what == "twice":
                assert current_key.key is current_key.key
                assert current_key.owner is current_key.key.owner
        return {"queries": len(statements), "record": repr(current_key)}

    client = app.test_client()
    secret = make_key("bob@acme.test", ["client.read"])
    counts = {}
    for what in ("none", "key", "owner", "both", "twice"):
        with recorded_statements() as statements:
            response = client.get(f"/v1/test-objects/{what}", headers=bearer(secret))
        assert response.status_code == 200, response.text
        counts[what] = response.json["queries"]
        assert len(lookups(statements, "users")) <= 1 + counts[what]
    assert counts == {"none": 0, "key": 1, "owner": 1, "both": 2, "twice": 2}


def test_a_permissions_loader_that_lazy_loads_still_works(app: Flask, make_key: Any) -> None:
    """The simple path: a Python loader gets the owner, loaded in the lookup's SELECT;
    what it reads beyond that is loaded in the request's session."""
    from sqlalchemy.orm import relationship

    from example_app import apikeys
    from example_app.models import Organization, User

    mapper = sa.inspect(User)
    if "test_lazy_organizations" not in mapper.relationships:
        mapper.add_property(
            "test_lazy_organizations",
            relationship(Organization, secondary="memberships", lazy="select", viewonly=True),
        )
    seen: list[set[str]] = []

    def lazy_loader(user: Any, organization_id: Any) -> Any:
        seen.append({org.name for org in user.test_lazy_organizations})  # a lazy load
        return user.permissions_in(organization_id)

    client = app.test_client()
    secret = make_key("bob@acme.test", ["client.read"])
    with python_permissions(apikeys, lazy_loader):
        statuses = [client.get("/v1/clients", headers=bearer(secret)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert seen and all(names == {"Acme"} for names in seen)


def test_no_connection_stays_checked_out_between_requests(app: Flask, make_key: Any) -> None:
    """Every thread gives its connection back: a thread per request (``flask run``)
    must not use up the pool."""
    from example_app import db

    secret = make_key("bob@acme.test", ["client.read"])
    engine = _engine(app)
    pool = engine.pool
    if not isinstance(pool, sa.pool.QueuePool):
        return  # SQLite in memory: one connection is the database
    statuses: list[int] = []

    def one_request() -> None:
        statuses.append(app.test_client().get("/v1/clients", headers=bearer(secret)).status_code)

    # More threads than the pool has connections, overflow included.
    limit = pool.size() + max(0, pool.overflow()) + 20
    for _ in range(3):
        threads = [threading.Thread(target=one_request) for _ in range(limit)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with app.app_context():
        db.session.remove()
    assert statuses == [200] * (3 * limit)
    assert pool.checkedout() == 0


@pytest.fixture
def sqlite_lookup(tmp_path: Path) -> Iterator[tuple[KeyLookup, sa.Engine, Any, str]]:
    """A lookup over a one-connection pool on a SQLite file, and a key in it."""
    from tests import hostapp

    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'lookup.sqlite'}", poolclass=sa.pool.QueuePool, pool_size=1
    )
    models = hostapp.apikeys.models
    hostapp.db.metadata.create_all(engine)
    keys = models.APIKey.__table__.c
    statement = key_select(
        models, {"id": keys.id, "name": keys.name, "revoked_at": keys.revoked_at}
    )
    with Session(engine) as session:
        owner = hostapp.Account(email="ann@example.test")
        session.add(owner)
        session.flush()
        key = models.APIKey(
            name="k",
            display_prefix="tst_abc",
            key_hash="h" * 64,
            scopes=["doc.read"],
            owner_id=owner.uuid,
        )
        session.add(key)
        session.commit()
        yield KeyLookup(session, models, statement), engine, models, "h" * 64
    engine.dispose()


def test_the_lookup_reads_only_the_declared_columns(
    sqlite_lookup: tuple[KeyLookup, sa.Engine, Any, str],
) -> None:
    lookup, _, _, key_hash = sqlite_lookup
    with recorded_statements() as statements:
        row = lookup.find(key_hash)
    assert list(lookup.statement.selected_columns.keys()) == ["id", "name", "revoked_at"]
    assert row is not None and row.name == "k" and len(row) == 3
    (select,) = lookups(statements)
    assert "api_key_policies" not in select  # no column of it: not joined
    assert select.count(" AS ") == 3


def test_sqlite_reuses_a_row_only_while_nothing_was_written(
    sqlite_lookup: tuple[KeyLookup, sa.Engine, Any, str], tmp_path: Path
) -> None:
    lookup, engine, models, key_hash = sqlite_lookup
    first = lookup.find(key_hash)
    assert first is not None and first.revoked_at is None
    assert lookup.find(key_hash) is first  # nothing written since

    # A write through the same (the only) pooled connection: its data version does not
    # move, its count of written rows does.
    with engine.begin() as conn:
        conn.execute(sa.update(models.APIKey).values(revoked_reason="x", revoked_at=utcnow()))
    second = lookup.find(key_hash)
    assert second is not first and second is not None and second.revoked_at is not None
    assert lookup.find(key_hash) is second

    # A commit by another connection (another process, say).
    other = sqlite3.connect(tmp_path / "lookup.sqlite")
    other.execute("UPDATE api_keys SET name = 'renamed'")
    other.commit()
    third = lookup.find(key_hash)
    assert third is not second and third is not None and third.name == "renamed"

    # A schema change, which counts no rows.
    other.execute("CREATE TABLE unrelated (id INTEGER)")
    other.commit()
    assert lookup.find(key_hash) is not third
    other.execute("DELETE FROM api_keys")
    other.commit()
    other.close()
    assert lookup.find(key_hash) is None


def test_the_lookup_is_seen_by_opentelemetry(host: Any) -> None:
    """Tracing sees the lookup like any other query: one span per verified request
    (on SQLite, the data-version check stands in for the SELECT while nothing changed)."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    secret = host.service.keys.issue(host.ann, "x", ["doc.read"]).secret
    engine = host.module.db.engine
    host.module.db.session.remove()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = SQLAlchemyInstrumentor()
    # The instrumentation declares SQLAlchemy < 2.1; its engine events work on 2.1 too.
    instrumentor.instrument(engine=engine, tracer_provider=provider, skip_dep_check=True)
    try:
        per_request = []
        for _ in range(3):
            assert host.client.get("/read", headers=bearer(secret)).status_code == 200
            per_request.append(
                [sql for span in exporter.get_finished_spans() if (sql := _statement(span))]
            )
            exporter.clear()
    finally:
        instrumentor.uninstrument()
    if engine.dialect.name == "sqlite":
        first, *later = per_request
        assert len(first) == 2 and len(version_checks(first)) == 1 and len(lookups(first)) == 1
        assert all(len(spans) == 1 and version_checks(spans) == spans for spans in later)
    else:
        for spans in per_request:
            assert len(spans) == 1 and lookups(spans) == spans
            assert "accounts" in spans[0]  # the key and its owner, together


def _statement(span: Any) -> str:
    """The SQL of a span, under the old or the new semantic conventions ("" for the
    spans of opening a connection)."""
    attributes = span.attributes
    return str(attributes.get("db.statement") or attributes.get("db.query.text") or "")


def test_a_connection_the_database_dropped_is_retried_once(database_url: str) -> None:
    """The lookup is a read: on a pooled connection PostgreSQL terminated, it runs again
    on a fresh one (no ``pool_pre_ping`` here), and the request is served."""
    if not database_url.startswith("postgresql"):
        pytest.skip("terminates PostgreSQL backends")
    import uuid

    from tests import hostapp

    name = f"apikeys-lookup-{uuid.uuid4().hex[:12]}"
    app = hostapp.create_app(f"{database_url}&application_name={name}")
    admin = sa.create_engine(database_url)
    disconnects: list[bool] = []
    try:
        with app.app_context():
            hostapp.db.create_all()
            ann = hostapp.Account(email="ann@example.test")
            hostapp.db.session.add(ann)
            hostapp.db.session.commit()
            hostapp.PERMISSIONS["ann@example.test"] = {"api_key.create", "doc.read"}
            secret = hostapp.apikeys.service.keys.issue(ann, "x", ["doc.read"]).secret
            engine = hostapp.db.engine
            hostapp.db.session.remove()
        sa.event.listen(engine, "handle_error", lambda ctx: disconnects.append(ctx.is_disconnect))
        client = app.test_client()
        statuses = [client.get("/any", headers=bearer(secret)).status_code]
        for _ in range(3):
            with admin.connect() as conn:
                killed = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = :name AND datname = current_database()"
                    ),
                    {"name": name},
                ).scalar_one()
            assert killed >= 1
            statuses.append(client.get("/any", headers=bearer(secret)).status_code)
        assert statuses == [200] * 4
        assert disconnects and all(disconnects)  # seen, and each time a dropped connection
    finally:
        with app.app_context():
            hostapp.apikeys.flush_usage(app)
            hostapp.db.session.remove()
            hostapp.db.engine.dispose()
        admin.dispose()
