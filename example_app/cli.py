"""The example's own commands: ``seed`` the demo data and manage demo users."""

from __future__ import annotations

import datetime as dt

import click
import flask_migrate
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup

from .models import ALL_PERMISSIONS, Client, Invoice, Membership, Organization, User, db

DEMO_PASSWORD = "demo-password"  # noqa: S105 - the documented demo password

DEMO = {
    "Acme": {
        "users": {
            "alice@acme.test": ("Alice Martin", ALL_PERMISSIONS),
            "bob@acme.test": ("Bob Keller", ["invoice.read", "client.read", "api_key.create"]),
        },
        "clients": [("Wayne Enterprises", "ap@wayne.test"), ("Stark Industries", "pay@stark.test")],
        "invoices": [(0, 125000), (1, 98050), (0, 4200)],
    },
    "Globex": {
        "users": {"carol@globex.test": ("Carol Reyes", ALL_PERMISSIONS)},
        "clients": [("Initech", "billing@initech.test"), ("Umbrella Corp", "ar@umbrella.test")],
        "invoices": [(0, 77700), (1, 310000)],
    },
    # Plans (example_app/plans.py): Acme and Globex are on Business, the default.
    "Hooli": {
        "plan": "team",
        "users": {"erin@hooli.test": ("Erin Bach", ALL_PERMISSIONS)},
        "clients": [("Pied Piper", "ap@piedpiper.test")],
        "invoices": [(0, 51000)],
    },
    "Bluth Company": {
        "plan": "free",
        "users": {"dana@bluth.test": ("Dana Bluth", ALL_PERMISSIONS)},
        "clients": [("Sitwell Enterprises", "pay@sitwell.test")],
        "invoices": [(0, 12000)],
    },
}

users_cli = AppGroup("users", help="Manage the example's demo users.")


def seed_demo_data() -> None:
    """Create the demo organizations, users, clients and invoices, once."""
    for org_name, spec in DEMO.items():
        org = db.session.scalar(sa.select(Organization).where(Organization.name == org_name))
        if org is None:
            org = Organization(name=org_name, plan=spec.get("plan", "business"))
            db.session.add(org)
            db.session.flush()
        for email, (name, permissions) in spec["users"].items():
            user = db.session.scalar(sa.select(User).where(User.email == email))
            if user is None:
                user = User(email=email, name=name)
                user.set_password(DEMO_PASSWORD)
                user.memberships.append(
                    Membership(organization_id=org.id, permissions=" ".join(permissions))
                )
                db.session.add(user)
        if db.session.scalar(sa.select(Client.id).where(Client.organization_id == org.id)) is None:
            clients = [Client(organization_id=org.id, name=n, email=e) for n, e in spec["clients"]]
            db.session.add_all(clients)
            db.session.flush()
            count = len(spec["invoices"])
            for number, (client_index, amount) in enumerate(spec["invoices"], start=1):
                db.session.add(
                    Invoice(
                        organization_id=org.id,
                        client_id=clients[client_index].id,
                        number=f"INV-{org.id}-{number:05d}",
                        amount_cents=amount,
                        # A month apart, the latest today; all but the latest paid.
                        issued_on=dt.date.today() - dt.timedelta(days=30 * (count - number)),
                        status="open" if number == count else "paid",
                    )
                )
    db.session.commit()


def _user(email: str) -> User:
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if user is None:
        raise click.ClickException(f"No user {email!r}.")
    return user


def _only_membership(user: User) -> Membership:
    if len(user.memberships) != 1:
        raise click.ClickException(f"{user.email} is in {len(user.memberships)} organizations.")
    return user.memberships[0]


@users_cli.command("list")
def list_users() -> None:
    """List users with their organizations and permissions."""
    for user in db.session.scalars(sa.select(User).order_by(User.email)).unique():
        for m in user.memberships:
            state = "active" if user.active else "inactive"
            click.echo(f"{user.email}\t{m.organization.name}\t{state}\t{m.permissions}")


@users_cli.command("grant")
@click.argument("email")
@click.argument("permission")
def grant(email: str, permission: str) -> None:
    """Give EMAIL a permission in their organization."""
    membership = _only_membership(_user(email))
    held = membership.permissions.split()
    if permission not in held:
        membership.permissions = " ".join([*held, permission])
        db.session.commit()
    click.echo(f"{email}: {membership.permissions}")


@users_cli.command("take")
@click.argument("email")
@click.argument("permission")
def take(email: str, permission: str) -> None:
    """Take a permission away from EMAIL (their keys lose it on the next request)."""
    membership = _only_membership(_user(email))
    membership.permissions = " ".join(p for p in membership.permissions.split() if p != permission)
    db.session.commit()
    click.echo(f"{email}: {membership.permissions}")


@users_cli.command("deactivate")
@click.argument("email")
def deactivate(email: str) -> None:
    """Deactivate EMAIL: their keys stop working at once."""
    _user(email).active = False
    db.session.commit()


@users_cli.command("activate")
@click.argument("email")
def activate(email: str) -> None:
    """Activate EMAIL again."""
    _user(email).active = True
    db.session.commit()


def upgrade_database() -> None:
    """Bring the database to the newest revision of example_app/migrations.

    A database that ``seed`` made before the example had migrations (the example's
    tables but no ``alembic_version``) cannot be upgraded: which columns it lacks depends
    on when it was made. It holds demo data only, so the message says to start afresh.
    """
    tables = set(sa.inspect(db.engine).get_table_names())
    if tables & set(db.metadata.tables) and "alembic_version" not in tables:
        where = db.engine.url.render_as_string(hide_password=True)
        raise click.ClickException(
            f"{where} was made before the example had migrations (it has no "
            "alembic_version table). It holds demo data only: delete it (or drop its "
            "tables) and run `flask --app example_app seed` again."
        )
    flask_migrate.upgrade()


def register_cli(app: Flask) -> None:
    @app.cli.command("seed")
    def seed() -> None:
        """Upgrade the database to the newest migration, then add the demo data (safe to
        run again)."""
        upgrade_database()
        seed_demo_data()
        click.echo(
            "Seeded Acme (alice@acme.test, bob@acme.test) and Globex (carol@globex.test), "
            "Hooli on the Team plan (erin@hooli.test) and Bluth Company on the Free plan "
            f"(dana@bluth.test); password {DEMO_PASSWORD!r}."
        )

    app.cli.add_command(users_cli)
