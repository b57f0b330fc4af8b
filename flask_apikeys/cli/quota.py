"""``flask apikeys set-quota``, and each key's quota in ``list`` and ``show``.

``set-quota fsk_8fK2mQ9x 1000/month`` (or ``1000/day``, ``50000/total``, ``50000/total
--refill month``) gives a key a quota; ``--clear`` removes it. Like ``set-limit``, it
acts as an operator and is audited (``quota_changed``).

``list`` gains a ``QUOTA`` column (``120/1000 month``) when a listed key has a quota,
and ``--json`` rows gain ``quota``, ``quota_refill``, ``quota_used`` and
``quota_resets_at``; ``show`` gains a ``Quota:`` line (and ``show --json`` the same
fields). Both are registered in :mod:`.columns`. The usage of every listed key is read
at once (one query, or one Redis ``MGET``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ..db.models import APIKeyMixin
from ..service.facade import KeyService
from ..service.quota_rules import Quota, QuotaUsage
from .columns import ListColumn, ListedKeys, ShowField, list_columns, show_fields
from .common import apikeys_cli, cli_service, find_key, format_when, refusals


def quota_line(service: KeyService, key: APIKeyMixin) -> str:
    """``120 of 1,000 calls this month (resets 2025-07-01 00:00 UTC)``, or ``none``."""
    quota = Quota.of(key)
    if quota is None:
        return "none"
    usage = service.quotas.quota_usage(key)
    if usage is None:
        return f"{quota.describe()} (usage unavailable)"
    if usage.resets_at is None:
        return usage.summary()
    verb = "next refill" if quota.period == "total" else "resets"
    return f"{usage.summary()} ({verb} {format_when(usage.resets_at)})"


def _cell(quota: Quota, usage: QuotaUsage | None) -> str:
    used = "?" if usage is None else str(usage.used)
    period = f"total, refill {quota.refill}" if quota.refill else quota.period
    return f"{used}/{quota.limit} {period}"


@apikeys_cli.command("set-quota")
@click.argument("display_prefix")
@click.argument("quota", required=False)
@click.option(
    "--refill",
    type=click.Choice(["day", "month"]),
    default=None,
    help="Refill a total to its limit every day or month.",
)
@click.option("--clear", is_flag=True, help="Remove the key's quota.")
@refusals
def set_quota_command(
    display_prefix: str, quota: str | None, refill: str | None, clear: bool
) -> None:
    """Give a key a quota: QUOTA is 1000/day, 1000/month or 50000/total."""
    if clear == bool(quota):
        raise click.UsageError("Give a quota (like 1000/month), or --clear (not both).")
    if clear and refill:
        raise click.UsageError("--refill goes with a quota, not with --clear.")
    service = cli_service()
    key = find_key(service, display_prefix)
    service.quotas.set_quota(key, None if clear else quota, refill=refill)
    new = Quota.of(key)
    if new is None:
        click.echo(f"{key.display_prefix} has no quota.", err=True)
    else:
        click.echo(f"{key.display_prefix} may make {new.describe()}.", err=True)
        click.echo(f"Now: {quota_line(service, key)}.", err=True)


# -- the quota in `list` and `show` ------------------------------------------------------


def _usages(service: KeyService, keys: Sequence[APIKeyMixin]) -> dict[int, QuotaUsage]:
    """The quota usage of every listed key that has a quota, by key id, in one call."""
    return service.quotas.quota_usages([key for key in keys if Quota.of(key) is not None])


def _fields(quota: Quota | None, usage: QuotaUsage | None) -> dict[str, Any]:
    """``quota``, ``quota_refill``, ``quota_used`` and ``quota_resets_at`` (or ``None``)."""
    resets = usage.resets_at if usage else None
    return {
        "quota": quota.text if quota else None,
        "quota_refill": quota.refill if quota else None,
        "quota_used": usage.used if usage else None,
        "quota_resets_at": resets.isoformat() if resets else None,
    }


def _list_cell(key: APIKeyMixin, listed: ListedKeys) -> str | None:
    quota = Quota.of(key)
    return None if quota is None else _cell(quota, listed.load(_usages).get(key.id))


def _list_fields(key: APIKeyMixin, listed: ListedKeys) -> dict[str, Any]:
    quota = Quota.of(key)
    return _fields(quota, listed.load(_usages).get(key.id) if quota else None)


def _show_fields(key: APIKeyMixin, service: KeyService) -> dict[str, Any]:
    quota = Quota.of(key)
    return _fields(quota, service.quotas.quota_usage(key) if quota else None)


list_columns.register(
    ListColumn(
        name="quota",
        order=1100,
        header="QUOTA",
        cell=_list_cell,
        fields=_list_fields,
        only_when_used=True,
    )
)
show_fields.register(
    ShowField(
        name="quota",
        order=1100,
        label="Quota",
        text=lambda key, service: quota_line(service, key),
        fields=_show_fields,
    )
)
