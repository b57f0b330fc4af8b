"""What the organization-policy tests share: people, organizations and the service of
the example app, and setting a policy as an operator."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask


def user_named(email: str) -> Any:
    from example_app import db
    from example_app.models import User

    return db.session.scalar(sa.select(User).where(User.email == email))


def org_id_of(name: str) -> int:
    from example_app import db
    from example_app.models import Organization

    return int(db.session.scalar(sa.select(Organization.id).where(Organization.name == name)))


def key_service() -> Any:
    from example_app import apikeys

    return apikeys.service


def set_rules(app: Flask, org: str = "Acme", **rules: Any) -> None:
    with app.app_context():
        key_service().policies.set_policy(org_id_of(org), **rules)


def policy_events_of(app: Flask, org: str = "Acme") -> list[Any]:
    with app.app_context():
        return [
            (e.key_id, e.actor_id, e.details)
            for e in key_service().policies.policy_events(org_id_of(org))
        ]
