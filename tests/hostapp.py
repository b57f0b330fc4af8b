"""A minimal host app for library tests: its own ``db``, a user model with a string
primary key in a table not called ``users``, and a permissions loader that runs no
query (so statement counts measure the extension alone)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from flask_apikeys import APIKeys, current_key, require_key

db = SQLAlchemy()


class Account(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "accounts"

    uuid: Mapped[str] = mapped_column(
        sa.String(36), primary_key=True, default=lambda: str(uuid.uuid4())
    )
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    is_active: Mapped[bool] = mapped_column(default=True)


apikeys = APIKeys(db=db, user_model=Account, prefix="tst")

#: What each account holds, by email: the tests change it to demote or promote.
PERMISSIONS: dict[str, set[str]] = {}


@apikeys.permissions_loader
def permissions_of(user: Account, organization_id: Any) -> Iterable[str]:
    return PERMISSIONS.get(user.email, set())


def create_app(database_url: str) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url, TESTING=True)
    db.init_app(app)
    apikeys.init_app(app)

    @app.get("/read")
    @require_key(scope="doc.read")
    def read() -> Any:
        return jsonify(owner=current_key.owner.email, scopes=sorted(current_key.scopes))

    @app.post("/write")
    @require_key(scope=["doc.read", "doc.write"])
    def write() -> Any:
        return jsonify(ok=True)

    @app.get("/any")
    @require_key()
    def any_key() -> Any:
        return jsonify(key=current_key.display_prefix)

    return app
