"""``flask apikeys prune-requests``: trim the request log now.

Registered on :data:`~flask_apikeys.cli.apikeys_cli`. The flusher already prunes as it
writes (each key's oldest rows beyond ``APIKEYS_REQUEST_LOG_MAX_PER_KEY``, and rows
older than ``APIKEYS_REQUEST_LOG_RETENTION_DAYS`` once an hour); this command prunes
every key exactly, e.g. from cron, after lowering the limits, or with logging turned off.
"""

from __future__ import annotations

import datetime as dt

import click
from flask import current_app

from ..db.models import utcnow
from ..web import config as _config
from .common import apikeys_cli, cli_service

__all__ = ["prune_requests_command"]


@apikeys_cli.command("prune-requests")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=1, max=36_500),
    default=None,
    help="Delete requests older than DAYS days (default: APIKEYS_REQUEST_LOG_RETENTION_DAYS).",
)
@click.option(
    "--max-per-key",
    type=click.IntRange(min=0),
    default=None,
    help="Keep each key's newest N requests; 0 keeps none "
    "(default: APIKEYS_REQUEST_LOG_MAX_PER_KEY).",
)
def prune_requests_command(days: int | None, max_per_key: int | None) -> None:
    """Delete logged requests past their retention or beyond each key's cap."""
    cfg = current_app.config
    try:
        if days is None:
            days = _config.as_count(
                cfg["APIKEYS_REQUEST_LOG_RETENTION_DAYS"], "APIKEYS_REQUEST_LOG_RETENTION_DAYS"
            )
        if max_per_key is None:
            max_per_key = _config.as_count(
                cfg["APIKEYS_REQUEST_LOG_MAX_PER_KEY"], "APIKEYS_REQUEST_LOG_MAX_PER_KEY"
            )
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    if days is None and max_per_key is None:
        click.echo("Nothing to prune: no retention and no per-key cap are set.", err=True)
        return
    older_than = utcnow() - dt.timedelta(days=days) if days else None
    deleted = cli_service().requests.prune_requests(older_than=older_than, max_per_key=max_per_key)
    click.echo(f"Deleted {deleted} logged request{'s' if deleted != 1 else ''}.", err=True)
