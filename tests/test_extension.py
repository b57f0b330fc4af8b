"""The extension object: models on any user model, init_app rules, helpful errors."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from flask_apikeys import APIKeys, require_key


class NoteMixin:
    """A host's own column on the key model."""

    note: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)

    def shout(self) -> str:
        return str(self.name).upper()


def make_host(database_url: str) -> tuple[Flask, Any, Any, APIKeys]:
    db = SQLAlchemy()

    class Member(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "team_members"
        member_no: Mapped[int] = mapped_column(
            sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
        )
        handle: Mapped[str] = mapped_column(sa.String(50))

    apikeys = APIKeys(
        db=db, user_model=Member, key_mixins=(NoteMixin,), table_prefix="token", prefix="mbr"
    )
    apikeys.permissions_loader(lambda user, org: {"api_key.create", "x.read"})
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    db.init_app(app)
    apikeys.init_app(app)
    return app, db, Member, apikeys


def test_models_fit_any_user_table_and_take_host_mixins(database_url: str) -> None:
    app, db, Member, apikeys = make_host(database_url)
    with app.app_context():
        db.create_all()
        try:
            member = Member(handle="ada")
            db.session.add(member)
            db.session.commit()
            issued = apikeys.service.keys.issue(member, "Deploy", ["x.read"])
            issued.key.note = "rotates monthly"
            db.session.commit()
            assert issued.secret.startswith("mbr_")
            assert issued.key.shout() == "DEPLOY"
            key = apikeys.service.verifier.verify(issued.secret).key
            assert key.note == "rotates monthly" and key.owner is member
            assert set(db.metadata.tables) >= {"tokens", "token_events", "token_usage_days"}
            fk = next(iter(db.metadata.tables["tokens"].c.owner_id.foreign_keys))
            assert fk.target_fullname == "team_members.member_no"
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


def test_init_app_twice_is_refused(database_url: str) -> None:
    app, _, _, apikeys = make_host(database_url)
    with pytest.raises(RuntimeError, match="already registered"):
        apikeys.init_app(app)


def test_init_app_without_models_says_what_is_missing() -> None:
    with pytest.raises(RuntimeError, match="user_model"):
        APIKeys(Flask(__name__))


def test_a_missing_permissions_loader_is_a_helpful_error(database_url: str) -> None:
    app, _, _, apikeys = make_host(database_url)
    apikeys._permissions_loader = None
    with app.app_context(), pytest.raises(RuntimeError, match="permissions_loader"):
        apikeys.service


def test_require_key_without_parentheses_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="parentheses"):
        require_key(lambda: None)  # type: ignore[arg-type]


def test_a_bad_prefix_is_refused_at_first_use(database_url: str) -> None:
    app, _, _, apikeys = make_host(database_url)
    app.config["APIKEYS_PREFIX"] = "Not-Valid"
    with app.app_context(), pytest.raises(ValueError, match="prefix"):
        apikeys.service


def test_the_cli_is_registered_on_every_app(database_url: str) -> None:
    app, _, _, _ = make_host(database_url)
    result = app.test_cli_runner().invoke(args=["apikeys", "--help"])
    assert result.exit_code == 0
    for command in ["create", "list", "revoke", "rotate", "revoke-user", "show"]:
        assert command in result.stdout
