"""``flask apikeys report-leak``: revoke keys found in the open, read from stdin.

Registered on :data:`~flask_apikeys.cli.apikeys_cli`. The keys are read from stdin (one
per line), never from the command line, where ``ps`` and the shell history would keep
them; the output names each by its display prefix, never by its secret.
"""

from __future__ import annotations

import sys

import click

from ..db.models import KeyStatus
from ..keys import format as keyformat
from ..service.validation import clean_reason
from .common import apikeys_cli, cli_service, refusals

__all__ = ["EXIT_NOT_OURS", "report_leak_command"]

#: Exit status when some lines were not keys of this app (the others were handled).
EXIT_NOT_OURS = 3
_MAX_URL_LENGTH = 2048


def _clean_url(url: str | None) -> str | None:
    if url is None or not url.strip():
        return None
    url = url.strip()
    if len(url) > _MAX_URL_LENGTH or not url.isprintable():
        raise click.BadParameter(
            f"give a printable URL of at most {_MAX_URL_LENGTH} characters", param_hint="--url"
        )
    return url


@apikeys_cli.command("report-leak")
@click.option("--url", default=None, help="Where the keys were found, for the reason and audit.")
@click.option("--reason", default=None, help="Why, for the audit trail (default: leaked).")
@refusals
def report_leak_command(url: str | None, reason: str | None) -> None:
    """Revoke leaked keys read from stdin, one per line, and tell their owners.

    Prints one line per key: its display prefix (or "line N" for text that is no key),
    true_positive or false_positive as GitHub's feedback says it, and what happened.
    Exit status: 0 when every line was a key of this app (now revoked, or unusable
    already); 3 when some were not (the others were handled); 1 when nothing was done
    (no keys on stdin, a bad --reason).
    """
    url = _clean_url(url)
    clean_reason(reason)  # a bad --reason is refused before anything is read
    service = cli_service()
    stdin = sys.stdin
    if stdin.isatty():
        click.echo("Paste the leaked keys, one per line, then Ctrl-D.", err=True)
    seen = not_ours = 0
    for number, line in enumerate(stdin, start=1):
        token = line.strip()
        if not token:
            continue
        seen += 1
        key = service.leaks.find_leaked_key(token)
        if key is None:
            not_ours += 1
            label = (
                keyformat.parse_key(token).display_prefix
                if keyformat.is_well_formed(token)
                else f"line {number}"
            )
            click.echo(f"{label}\tfalse_positive\tnot a key of this app")
            continue
        if service.leaks.revoke_leaked(key, url=url, reason=reason):
            outcome = "revoked"
        else:
            status = key.status
            outcome = f"already {status}" if status != KeyStatus.ACTIVE else "already revoked"
        click.echo(f"{key.display_prefix}\ttrue_positive\t{outcome}")
    if not seen:
        raise click.ClickException("No keys on stdin: give one key per line.")
    if not_ours:
        raise click.exceptions.Exit(EXIT_NOT_OURS)
