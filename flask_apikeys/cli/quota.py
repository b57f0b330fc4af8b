"""``flask apikeys set-quota``, and each key's quota in ``list`` and ``show``.

``set-quota fsk_8fK2mQ9x 1000/month`` (or ``1000/day``, ``50000/total``, ``50000/total
--refill month``) gives a key a quota; ``--clear`` removes it. Like ``set-limit``, it
acts as an operator and is audited (``quota_changed``).

``list`` gains a ``QUOTA`` column (``120/1000 month``) when a listed key has a quota,
and ``--json`` rows gain ``quota``, ``quota_refill``, ``quota_used`` and
``quota_resets_at``; ``show`` gains a ``Quota:`` line. The usage of every listed key
is read at once (one query, or one Redis ``MGET``).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from typing import Any

import click

from ..db.models import APIKeyMixin
from ..service.facade import KeyService
from ..service.quota_rules import Quota, QuotaUsage
from .keys import apikeys_cli, cli_service, find_key, format_when, refusals


def quota_line(service: KeyService, key: APIKeyMixin) -> str:
    """``120 of 1,000 calls this month (resets 2025-07-01 00:00 UTC)``, or ``none``."""
    quota = Quota.of(key)
    if quota is None:
        return "none"
    usage = service.quota_usage(key)
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
    service.set_quota(key, None if clear else quota, refill=refill)
    new = Quota.of(key)
    if new is None:
        click.echo(f"{key.display_prefix} has no quota.", err=True)
    else:
        click.echo(f"{key.display_prefix} may make {new.describe()}.", err=True)
        click.echo(f"Now: {quota_line(service, key)}.", err=True)


def _captured(callback: Callable[..., Any], **kwargs: Any) -> list[str]:
    """The lines *callback* writes to stdout (stderr is left alone)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        callback(**kwargs)
    return out.getvalue().splitlines()


def _wrap(name: str, add: Callable[[Callable[..., Any], dict[str, Any]], None]) -> None:
    command = apikeys_cli.commands[name]
    original = command.callback
    if original is None:  # pragma: no cover - every command of the group has one
        raise RuntimeError(f"flask apikeys {name} has no callback")

    def callback(**kwargs: Any) -> None:
        add(original, kwargs)

    command.callback = callback


def _add_to_show(original: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    lines = _captured(original, **kwargs)
    service = cli_service()
    key = find_key(service, kwargs["display_prefix"])
    line = f"{'Quota:':<14}{quota_line(service, key)}"
    at = lines.index("Events:") if "Events:" in lines else len(lines)
    for text in [*lines[:at], line, *lines[at:]]:
        click.echo(text)


def _add_to_list(original: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    lines = _captured(original, **kwargs)
    service = cli_service()
    owner = None
    if kwargs.get("user_ref"):
        from .keys import find_user

        owner = find_user(service, kwargs["user_ref"])
    keys = service.list_keys(owner=owner, status=kwargs.get("status"))
    quotas = {k.display_prefix: (q, k.id) for k in keys if (q := Quota.of(k)) is not None}
    usages = service.quota_usages([k for k in keys if k.display_prefix in quotas])
    if kwargs.get("as_json"):
        for text in lines:
            row = json.loads(text)
            quota, key_id = quotas.get(row.get("display_prefix"), (None, 0))
            usage = usages.get(key_id)
            row["quota"] = quota.text if quota else None
            row["quota_refill"] = quota.refill if quota else None
            row["quota_used"] = usage.used if usage else None
            resets = usage.resets_at if usage else None
            row["quota_resets_at"] = resets.isoformat() if resets else None
            click.echo(json.dumps(row, default=str))
        return
    if not quotas or not lines:
        for text in lines:
            click.echo(text)
        return
    width = max(len(text) for text in lines)
    click.echo(lines[0].ljust(width) + "  QUOTA")
    for text in lines[1:]:
        quota, key_id = quotas.get(text.split(" ", 1)[0], (None, 0))
        cell = _cell(quota, usages.get(key_id)) if quota else "-"
        click.echo(f"{text.ljust(width)}  {cell}")


_wrap("show", _add_to_show)
_wrap("list", _add_to_list)
