"""``flask apikeys ...``: manage keys from scripts and during incidents.

Registered on every app that uses the extension. ``create`` and ``rotate`` print the
new key alone on the last line of stdout, so ``KEY=$(flask apikeys create ...)``
works; everything else goes to stderr. A refused request exits 1 with a one-line
reason on stderr. ``list`` and ``show`` print the columns and lines registered in
:mod:`.columns`: the key's own ones are at the end of this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
from flask import current_app

from ..db.models import APIKeyMixin, utcnow
from ..service.facade import KeyService
from ..service.policies import key_status
from ..service.resources import parse_resource_specs
from ..service.validation import parse_duration, parse_expiry
from .columns import (
    ListColumn,
    ListedKeys,
    ShowField,
    list_columns,
    list_row,
    show_fields,
    show_lines,
    show_object,
    table_lines,
)
from .common import (
    apikeys_cli,
    cli_service,
    find_key,
    find_user,
    format_when,
    owner_label,
    refusals,
)


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
    issued = service.keys.issue(
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
    listed = ListedKeys(service, service.queries.list_keys(owner=owner, status=status), utcnow())
    columns = list(list_columns)
    if as_json:
        for key in listed.keys:
            click.echo(json.dumps(list_row(columns, key, listed), default=str))
        return
    if not listed.keys:
        click.echo("No keys.", err=True)
        return
    for line in table_lines(columns, listed):
        click.echo(line)


@apikeys_cli.command("show")
@click.argument("display_prefix")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, events included.")
@refusals
def show_command(display_prefix: str, as_json: bool) -> None:
    """Show one key and its recent audit events."""
    service = cli_service()
    key = find_key(service, display_prefix)
    fields = list(show_fields)
    if as_json:
        shown = show_object(fields, key, service)
        shown["events"] = [
            {"at": format_when(e.at), "event": e.event, "actor": _actor(e), "ip": e.ip}
            for e in service.queries.events(key, limit=20)
        ]
        click.echo(json.dumps(shown, default=str))
        return
    for line in show_lines(fields, key, service):
        click.echo(line)
    click.echo("Events:")
    for event in service.queries.events(key, limit=20):
        line = f"  {format_when(event.at)}  {event.event:<12} {_actor(event)}  {event.ip or ''}"
        click.echo(line.rstrip())


def _actor(event: Any) -> str:
    """Who acted: the user's lookup field, or ``operator`` for the command line."""
    if event.actor is None:
        return "operator"
    field = current_app.config["APIKEYS_USER_LOOKUP_FIELD"]
    return str(getattr(event.actor, field, event.actor_id))


@apikeys_cli.command("revoke")
@click.argument("display_prefix")
@click.option("--reason", default=None, help="Why, for the audit trail.")
@refusals
def revoke_command(display_prefix: str, reason: str | None) -> None:
    """Revoke a key now, for every process and host."""
    service = cli_service()
    key = find_key(service, display_prefix)
    if service.keys.revoke(key, reason=reason):
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
    count = service.keys.revoke_user_keys(owner, organization_id=organization, reason=reason)
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
    issued = service.keys.rotate(key, grace=parse_duration(grace))
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
    service.restrictions.set_rate_limit(key, value)
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
    service.restrictions.set_ip_allowlist(key, None if clear else list(networks))
    if key.ip_allowlist:
        click.echo(f"{key.display_prefix} works from {', '.join(key.ip_allowlist)} only.", err=True)
    else:
        click.echo(f"{key.display_prefix} works from any address.", err=True)


# -- the key's own columns of `list` and lines of `show` (orders 100 to 1000) -------------


def _scopes(key: APIKeyMixin, separator: str) -> str:
    return "full access" if key.full_access else separator.join(key.scopes or [])


def _key_column(
    name: str, order: int, value: Callable[[APIKeyMixin, ListedKeys], Any], in_table: bool = True
) -> ListColumn:
    """A column named *name* in ``--json`` and, upper-cased, in the table."""
    return ListColumn(
        name=name,
        order=order,
        header=name.upper() if in_table else None,
        cell=(lambda key, listed: str(value(key, listed))) if in_table else None,
        fields=lambda key, listed: {name: value(key, listed)},
    )


def _key_line(
    name: str,
    order: int,
    label: str,
    text: Callable[[APIKeyMixin, KeyService], Any],
    value: Callable[[APIKeyMixin, KeyService], Any] | None = None,
) -> ShowField:
    """A ``Label: text`` line of ``show``, *name* (``value``, or else ``text``) in its JSON."""
    as_json = value or text
    return ShowField(
        name=name,
        order=order,
        label=label,
        text=text,
        fields=lambda key, service: {name: as_json(key, service)},
    )


KEY_COLUMNS = (
    _key_column("display_prefix", 100, lambda key, _: key.display_prefix),
    _key_column("name", 200, lambda key, _: key.name),
    _key_column("owner", 300, lambda key, listed: owner_label(listed.service, key)),
    _key_column("organization", 400, lambda key, _: key.organization_id, in_table=False),
    _key_column("status", 500, lambda key, listed: key_status(key, listed.now)),
    _key_column("scopes", 600, lambda key, _: _scopes(key, " ")),
    _key_column("created", 700, lambda key, _: format_when(key.created_at), in_table=False),
    _key_column("expires", 800, lambda key, _: format_when(key.expires_at)),
    _key_column("last_used", 900, lambda key, _: format_when(key.last_used_at)),
    _key_column("usage", 1000, lambda key, _: key.usage_count, in_table=False),
)
list_columns.register(*KEY_COLUMNS)

KEY_LINES = (
    _key_line("display_prefix", 100, "Key", lambda key, _: key.display_prefix),
    _key_line("name", 200, "Name", lambda key, _: key.name),
    _key_line("owner", 300, "Owner", lambda key, service: owner_label(service, key)),
    _key_line(
        "organization",
        400,
        "Organization",
        lambda key, _: "-" if key.organization_id is None else key.organization_id,
        lambda key, _: key.organization_id,
    ),
    _key_line("status", 500, "Status", lambda key, _: key_status(key, utcnow())),
    _key_line(
        "scopes", 600, "Scopes", lambda key, _: _scopes(key, ", "), lambda key, _: _scopes(key, " ")
    ),
    _key_line("created", 700, "Created", lambda key, _: format_when(key.created_at)),
    _key_line(
        "expires",
        800,
        "Expires",
        lambda key, _: format_when(key.expires_at) if key.expires_at else "never",
        lambda key, _: format_when(key.expires_at),
    ),
    ShowField(
        name="revoked",
        order=850,
        label="Revoked",
        text=lambda key, _: (
            "-"
            if not key.revoked_at
            else f"{format_when(key.revoked_at)} ({key.revoked_reason})"
            if key.revoked_reason
            else format_when(key.revoked_at)
        ),
        fields=lambda key, _: {
            "revoked": format_when(key.revoked_at),
            "revoked_reason": key.revoked_reason,
        },
    ),
    _key_line("last_used", 900, "Last used", lambda key, _: format_when(key.last_used_at)),
    _key_line("usage", 1000, "Usage", lambda key, _: key.usage_count),
)
show_fields.register(*KEY_LINES)
