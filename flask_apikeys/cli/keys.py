"""``flask apikeys ...``: manage keys from scripts and during incidents.

Registered on every app that uses the extension. ``create`` and ``rotate`` print the
new key alone on the last line of stdout, so ``KEY=$(flask apikeys create ...)``
works; everything else goes to stderr. A refused request exits 1 with a one-line
reason on stderr.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from ..db.models import utcnow
from ..service.facade import KeyService
from ..service.policies import key_status
from ..service.resources import parse_resource_specs
from ..service.validation import RequestRefused, parse_duration, parse_expiry
from ..web.state import app_keys

F = TypeVar("F", bound=Callable[..., Any])

apikeys_cli = AppGroup("apikeys", help="Create, list, rotate and revoke API keys.")


def cli_service() -> KeyService:
    ext = app_keys()
    service: KeyService = ext.service
    return service


def refusals(func: F) -> F:
    """Turn a refused request into a one-line error and exit status 1."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RequestRefused as exc:
            cli_service().session.rollback()
            raise click.ClickException(exc.message) from None

    return wrapper  # type: ignore[return-value]


def find_user(service: KeyService, identity: str) -> Any:
    field = current_app.config["APIKEYS_USER_LOOKUP_FIELD"]
    User = service.models.User
    column = getattr(User, field, None)
    if column is None:
        raise click.ClickException(f"APIKEYS_USER_LOOKUP_FIELD names no column: {field!r}")
    user = service.session.execute(sa.select(User).where(column == identity)).scalars().first()
    if user is None:
        raise click.ClickException(f"No user with {field} {identity!r}.")
    return user


def find_key(service: KeyService, display_prefix: str) -> Any:
    key = service.get_by_display_prefix(display_prefix.strip())
    if key is None:
        raise click.ClickException(f"No key with display prefix {display_prefix!r}.")
    return key


def _owner_label(service: KeyService, key: Any) -> str:
    field = current_app.config["APIKEYS_USER_LOOKUP_FIELD"]
    return str(getattr(key.owner, field, service.user_id(key.owner)))


def format_when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "-"


@apikeys_cli.command("create")
@click.option(
    "--user", "user_ref", required=True, help="The owner, by email (or the lookup field)."
)
@click.option("--name", required=True, help="What the key is for, e.g. 'CI pipeline'.")
@click.option("--scope", "scopes", multiple=True, help="A permission; repeat for more.")
@click.option("--full-access", is_flag=True, help="Whatever the owner holds, checked per request.")
@click.option(
    "--expires", default="90d", show_default=True, help="30d, 90d, 1y, YYYY-MM-DD or never."
)
@click.option("--organization", default=None, help="Organization id, when the user has several.")
@click.option("--resource", "resources", multiple=True, help="KIND=ID: only this one; repeat.")
@refusals
def create_command(
    user_ref: str,
    name: str,
    scopes: tuple[str, ...],
    full_access: bool,
    expires: str,
    organization: str | None,
    resources: tuple[str, ...] = (),
) -> None:
    """Create a key and print it (only this once) on the last line of stdout."""
    service = cli_service()
    owner = find_user(service, user_ref)
    issued = service.issue(
        owner,
        name,
        scopes,
        full_access=full_access,
        organization_id=organization,
        expires_at=parse_expiry(expires),
        resources=parse_resource_specs(resources),  # docs/resources.md
    )
    key = issued.key
    click.echo(
        f"Created {key.display_prefix} '{key.name}' for {user_ref}, "
        f"expires {format_when(key.expires_at) if key.expires_at else 'never'}. "
        "Store the key now: it is not shown again.",
        err=True,
    )
    click.echo(issued.secret)


@apikeys_cli.command("list")
@click.option("--user", "user_ref", default=None, help="Only this user's keys.")
@click.option("--status", type=click.Choice(["active", "expired", "revoked"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@refusals
def list_command(user_ref: str | None, status: str | None, as_json: bool) -> None:
    """List keys (never their secrets)."""
    service = cli_service()
    owner = find_user(service, user_ref) if user_ref else None
    now = utcnow()
    rows = []
    for key in service.list_keys(owner=owner, status=status):
        rows.append(
            {
                "display_prefix": key.display_prefix,
                "name": key.name,
                "owner": _owner_label(service, key),
                "organization": key.organization_id,
                "status": key_status(key, now),
                "scopes": "full access" if key.full_access else " ".join(key.scopes or []),
                "created": format_when(key.created_at),
                "expires": format_when(key.expires_at),
                "last_used": format_when(key.last_used_at),
                "usage": key.usage_count,
            }
        )
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=str))
        return
    if not rows:
        click.echo("No keys.", err=True)
        return
    columns = ["display_prefix", "name", "owner", "status", "scopes", "expires", "last_used"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())


@apikeys_cli.command("show")
@click.argument("display_prefix")
@refusals
def show_command(display_prefix: str) -> None:
    """Show one key and its recent audit events."""
    service = cli_service()
    key = find_key(service, display_prefix)
    lines = [
        ("Key", key.display_prefix),
        ("Name", key.name),
        ("Owner", _owner_label(service, key)),
        ("Organization", key.organization_id if key.organization_id is not None else "-"),
        ("Status", key_status(key, utcnow())),
        ("Scopes", "full access" if key.full_access else ", ".join(key.scopes or [])),
        ("Created", format_when(key.created_at)),
        ("Expires", format_when(key.expires_at) if key.expires_at else "never"),
        (
            "Revoked",
            f"{format_when(key.revoked_at)} ({key.revoked_reason})" if key.revoked_at else "-",
        ),
        ("Last used", format_when(key.last_used_at)),
        ("Usage", key.usage_count),
    ]
    for label, value in lines:
        click.echo(f"{label + ':':<14}{value}")
    click.echo("Events:")
    for event in service.events(key, limit=20):
        actor = "operator"
        if event.actor is not None:
            field = current_app.config["APIKEYS_USER_LOOKUP_FIELD"]
            actor = str(getattr(event.actor, field, event.actor_id))
        click.echo(
            f"  {format_when(event.at)}  {event.event:<12} {actor}  {event.ip or ''}".rstrip()
        )


@apikeys_cli.command("revoke")
@click.argument("display_prefix")
@click.option("--reason", default=None, help="Why, for the audit trail.")
@refusals
def revoke_command(display_prefix: str, reason: str | None) -> None:
    """Revoke a key now, for every process and host."""
    service = cli_service()
    key = find_key(service, display_prefix)
    if service.revoke(key, reason=reason or "revoked by operator"):
        click.echo(f"Revoked {key.display_prefix}.", err=True)
    else:
        click.echo(f"{key.display_prefix} was already revoked.", err=True)


@apikeys_cli.command("revoke-user")
@click.option("--user", "user_ref", required=True, help="Whose keys to revoke.")
@click.option("--organization", default=None, help="Only keys in this organization.")
@click.option("--reason", default=None, help="Why, for the audit trail.")
@refusals
def revoke_user_command(user_ref: str, organization: str | None, reason: str | None) -> None:
    """Revoke every usable key of one user (offboarding)."""
    service = cli_service()
    owner = find_user(service, user_ref)
    count = service.revoke_user_keys(owner, organization_id=organization, reason=reason)
    click.echo(f"Revoked {count} key{'s' if count != 1 else ''} of {user_ref}.", err=True)


@apikeys_cli.command("rotate")
@click.argument("display_prefix")
@click.option(
    "--grace",
    default="now",
    show_default=True,
    help="How long the old key keeps working: now, 1h, 24h, 7d.",
)
@refusals
def rotate_command(display_prefix: str, grace: str) -> None:
    """Replace a key with a new one, printed on the last line of stdout."""
    service = cli_service()
    key = find_key(service, display_prefix)
    issued = service.rotate(key, grace=parse_duration(grace))
    click.echo(
        f"Rotated {key.display_prefix} to {issued.key.display_prefix}; the old key works "
        f"until {format_when(key.revoked_at)}. Store the new key now: it is not shown again.",
        err=True,
    )
    click.echo(issued.secret)


@apikeys_cli.command("set-limit")
@click.argument("display_prefix")
@click.argument("limit")
@refusals
def set_limit_command(display_prefix: str, limit: str) -> None:
    """Give a key its own rate limit (e.g. 100/minute), or 'default' for the app's."""
    service = cli_service()
    key = find_key(service, display_prefix)
    value = None if limit.strip().lower() in {"default", "none", ""} else limit
    service.set_rate_limit(key, value)
    shown = key.rate_limit or "the default ({})".format(
        current_app.config["APIKEYS_DEFAULT_RATE_LIMIT"] or "unlimited"
    )
    click.echo(f"{key.display_prefix} is limited to {shown}.", err=True)


@apikeys_cli.command("set-ips")
@click.argument("display_prefix")
@click.argument("networks", nargs=-1)
@click.option("--clear", is_flag=True, help="Allow every address again.")
@refusals
def set_ips_command(display_prefix: str, networks: tuple[str, ...], clear: bool) -> None:
    """Restrict a key to client addresses in NETWORKS (CIDRs, IPv4 or IPv6)."""
    if clear == bool(networks):
        raise click.UsageError("Give one or more networks, or --clear (not both).")
    service = cli_service()
    key = find_key(service, display_prefix)
    service.set_ip_allowlist(key, None if clear else list(networks))
    if key.ip_allowlist:
        click.echo(f"{key.display_prefix} works from {', '.join(key.ip_allowlist)} only.", err=True)
    else:
        click.echo(f"{key.display_prefix} works from any address.", err=True)
