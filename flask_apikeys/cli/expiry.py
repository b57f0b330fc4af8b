"""``flask apikeys notify-expiring``: warn the owners of keys about to expire (for cron).

Each warning due (``APIKEYS_EXPIRY_WARNING_DAYS`` before expiry) is claimed in the
database, then sent as the ``key_expiring`` signal: run it from cron on any number of
hosts, as often as you like, and each key still gets each warning once.
"""

from __future__ import annotations

import click
from flask import current_app

from ..web.expiry_schedule import notify_expiring, warning_days
from .common import apikeys_cli, cli_service, format_when


@apikeys_cli.command("notify-expiring")
@click.option("--dry-run", is_flag=True, help="List the warnings due; send and claim nothing.")
def notify_expiring_command(dry_run: bool) -> None:
    """Send the expiry warnings due now, each once: one line per key on stdout."""
    thresholds = warning_days(current_app.config)
    if not thresholds:
        click.echo("APIKEYS_EXPIRY_WARNING_DAYS is empty: no warnings to send.", err=True)
        return
    if dry_run:
        service = cli_service()
        due = service.expiry.due_expiry_warnings(thresholds)
        for key_id, days in due:
            key = service.queries.get_key(key_id)
            if key is not None:
                click.echo(f"{key.display_prefix}\t{days}\t{format_when(key.expires_at)}")
        click.echo(f"{len(due)} expiry warning{'s' if len(due) != 1 else ''} due.", err=True)
        return
    warnings = notify_expiring()
    for warning in warnings:
        click.echo(
            f"{warning.key.display_prefix}\t{warning.days}\t{format_when(warning.expires_at)}"
        )
    count = len(warnings)
    click.echo(f"Sent {count} expiry warning{'s' if count != 1 else ''}.", err=True)
