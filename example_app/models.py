"""The example's own models: organizations, users with per-organization permissions,
clients and invoices. flask-apikeys adds its tables to the same ``db``."""

from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa
from flask import current_app, has_app_context
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

db = SQLAlchemy()

#: Every permission of the example. The first four can go on API keys.
KEY_PERMISSIONS = {
    "invoice.read": "See invoices",
    "invoice.write": "Create invoices",
    "client.read": "See clients",
    "client.write": "Create and edit clients",
}
ALL_PERMISSIONS = [*KEY_PERMISSIONS, "api_key.create", "api_key.manage"]


class Organization(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    # The organization's plan (example_app/plans.py): "free", "team" or "business".
    plan: Mapped[str] = mapped_column(sa.String(20), default="business", server_default="business")


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    active: Mapped[bool] = mapped_column(default=True)
    # Part of the id a session cookie carries (get_id); a new one at every sign-out, so
    # a cookie captured before signing out no longer works after it (see load_user).
    session_token: Mapped[str] = mapped_column(sa.String(64), default=new_session_token)
    # Loaded in the same SELECT as the user, so checking a key's permissions
    # costs no extra query.
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", lazy="joined", cascade="all, delete-orphan"
    )

    @property
    def is_active(self) -> bool:  # Flask-Login and flask-apikeys both read this
        return self.active

    def get_id(self) -> str:  # what Flask-Login keeps in the session
        return f"{self.id}:{self.session_token}"

    def end_sessions(self) -> None:
        """Sign out everywhere: every session cookie issued so far stops working."""
        self.session_token = new_session_token()

    def set_password(self, password: str) -> None:
        # PASSWORD_HASH_METHOD (optional): a werkzeug method such as "pbkdf2:sha256:1".
        # Unset, werkzeug's default (scrypt). Only the tests set it, to seed fast.
        method = current_app.config.get("PASSWORD_HASH_METHOD") if has_app_context() else None
        if method:
            self.password_hash = generate_password_hash(password, method=method)
        else:
            self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def permissions_in(self, organization_id: int | None) -> set[str]:
        for membership in self.memberships:
            if membership.organization_id == organization_id:
                return set(membership.permissions.split())
        return set()


class Membership(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id"), primary_key=True
    )
    permissions: Mapped[str] = mapped_column(sa.Text, default="")
    user: Mapped[User] = relationship(back_populates="memberships")
    # Loaded when asked for (pages, introspection), not joined into every key check:
    # checking a key's permissions reads only organization_id and permissions.
    organization: Mapped[Organization] = relationship()


class Client(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    email: Mapped[str] = mapped_column(sa.String(254))

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "email": self.email}


#: What an invoice's ``status`` may be.
INVOICE_STATUSES = ("open", "paid", "void")


class Invoice(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id"))
    number: Mapped[str] = mapped_column(sa.String(40))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    issued_on: Mapped[dt.date] = mapped_column(default=dt.date.today)
    #: One of :data:`INVOICE_STATUSES`: ``open`` until paid (or voided).
    status: Mapped[str] = mapped_column(sa.String(10), default="open", server_default="open")
    client: Mapped[Client] = relationship(lazy="joined")

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "number": self.number,
            "client": {"id": self.client.id, "name": self.client.name},
            "amount_cents": self.amount_cents,
            "currency": self.currency,
            "issued_on": self.issued_on.isoformat(),
            "status": self.status,
        }
