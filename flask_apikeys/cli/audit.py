"""``flask apikeys audit`` and ``flask apikeys prune-audit``: read and prune the audit trail.

Operators see any organization's trail (no permission check: whoever runs the CLI
runs the app). Events are read newest first, in batches, so a trail of any size prints
without being held in memory. Messages go to stderr; the events go to stdout, as text
or, with ``--json``, one JSON object per line.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import click
from flask import current_app

from ..service.audit_filters import AuditEntry, retention_cutoff
from ..service.validation import RequestRefused
from .common import apikeys_cli, cli_service, find_user, format_when, refusals


def _person(user: Any) -> str | None:
    if user is None:
        return None
    field = current_app.config["APIKEYS_USER_LOOKUP_FIELD"]
    return str(getattr(user, field, None) or cli_service().context.user_id(user))


def _as_json(entry: AuditEntry, organization: Any) -> str:
    return json.dumps(
        {
            "id": entry.id,
            "at": entry.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "event": entry.event,
            "label": entry.label,
            "organization": organization,
            "key": entry.key_prefix,
            "key_name": entry.key_name,
            "owner": _person(entry.owner),
            "actor": _person(entry.actor),
            "ip": entry.ip,
            "details": entry.details,
        },
        default=str,
        ensure_ascii=False,
    )


def _as_text(entry: AuditEntry) -> str:
    details = " ".join(
        f"{name}={json.dumps(value, ensure_ascii=False, default=str)}"
        for name, value in entry.details.items()
    )
    cells = [
        format_when(entry.at),
        f"{entry.event:<20}",
        f"{entry.key_prefix or '(organization)':<14}",
        f"owner={_person(entry.owner) or '-'}",
        f"by={_person(entry.actor) or 'operator'}",
        entry.ip or "-",
        details,
    ]
    return "  ".join(cells).rstrip()


@apikeys_cli.command("audit")
@click.option("--org", "organization", required=True, help="The organization's id.")
@click.option(
    "--user",
    "user_ref",
    default=None,
    help="Only events this user did or whose key they own (by email, or the lookup field).",
)
@click.option(
    "--role",
    type=click.Choice(["any", "actor", "owner"]),
    default="any",
    show_default=True,
    help="How --user is involved: did it (actor), owns the key (owner), or either.",
)
@click.option("--key", default=None, help="Only this key's events, by display prefix.")
@click.option("--event", "events", multiple=True, help="An event name, e.g. revoked; repeat.")
@click.option("--since", default=None, help="From YYYY-MM-DD, an ISO 8601 time, or 7d/24h ago.")
@click.option("--until", default=None, help="Until YYYY-MM-DD (that day included) or a time.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="The newest N only.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@refusals
def audit_command(
    organization: str,
    user_ref: str | None,
    role: str,
    key: str | None,
    events: tuple[str, ...],
    since: str | None,
    until: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Print an organization's audit trail, newest first."""
    service = cli_service()
    person = find_user(service, user_ref) if user_ref else None
    audit = service.audit_trail.audit_filter(
        organization,
        person=person,
        role=role,
        key=key,
        events=events,
        since=since,
        until=until,
    )
    entries = service.audit_trail.iter_audit(audit)
    shown = 0
    try:
        for entry in itertools.islice(entries, limit):
            click.echo(_as_json(entry, audit.organization_id) if as_json else _as_text(entry))
            shown += 1
    finally:
        entries.close()
    if not shown:
        click.echo("No events.", err=True)


@apikeys_cli.command("prune-audit")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=1, max=36_500),
    default=None,
    help="Delete events older than DAYS days (default: APIKEYS_AUDIT_RETENTION_DAYS).",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=100_000),
    default=1000,
    show_default=True,
    help="Events deleted per transaction.",
)
@refusals
def prune_audit_command(days: int | None, dry_run: bool, batch_size: int) -> None:
    """Delete audit events past their retention, in batches (run it daily)."""
    if days is not None:
        cutoff = retention_cutoff(days)
    else:
        try:
            cutoff = retention_cutoff(current_app.config["APIKEYS_AUDIT_RETENTION_DAYS"])
        except RequestRefused as exc:
            raise click.ClickException(f"APIKEYS_AUDIT_RETENTION_DAYS: {exc.message}") from None
    if cutoff is None:
        click.echo(
            "APIKEYS_AUDIT_RETENTION_DAYS keeps events forever: nothing pruned "
            "(give --older-than DAYS to prune anyway).",
            err=True,
        )
        return
    count = cli_service().audit_trail.prune_events(cutoff, batch_size=batch_size, dry_run=dry_run)
    noun = "event" if count == 1 else "events"
    verb = "Would delete" if dry_run else "Deleted"
    click.echo(f"{verb} {count} audit {noun} older than {format_when(cutoff)}.", err=True)
