"""``flask apikeys policy show|set``: an organization's rules for its keys.

``set`` changes only the rules it is given: ``--max-lifetime 90``, ``--idle-expiry 30``,
``--allow invoice.read --allow client.read``; ``--clear-max-lifetime``,
``--clear-idle-expiry`` and ``--clear-allow`` lift one. Each change is audited as an
operator's ``policy_changed`` event of the organization.
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask import current_app

from ..db.policy import APIKeyPolicyMixin
from ..service.facade import KeyService
from ..service.policies import KEEP
from .common import apikeys_cli, cli_service, format_when, refusals


@apikeys_cli.group("policy")
def policy_cli() -> None:
    """Show or set an organization's key policy."""


def _describe(policy: APIKeyPolicyMixin | None) -> dict[str, Any]:
    rules = policy.rules() if policy is not None else {}
    return {
        "max_lifetime_days": rules.get("max_lifetime_days"),
        "idle_expiry_days": rules.get("idle_expiry_days"),
        "allowed_permissions": rules.get("allowed_permissions"),
    }


def _days(value: int | None) -> str:
    return "no limit" if value is None else f"{value} day{'s' if value != 1 else ''}"


def _print_policy(service: KeyService, organization: str, as_json: bool) -> None:
    policy = service.policies.policy_of(organization)
    rules = _describe(policy)
    outliving = service.policies.keys_outliving_policy(organization)
    if as_json:
        rules["organization"] = organization
        rules["keys_outliving_max_lifetime"] = [k.display_prefix for k in outliving]
        click.echo(json.dumps(rules))
        return
    allowed = rules["allowed_permissions"]
    field = current_app.config["APIKEYS_USER_LOOKUP_FIELD"]
    lines = [
        ("Organization", organization),
        ("Max lifetime", _days(rules["max_lifetime_days"])),
        ("Idle expiry", _days(rules["idle_expiry_days"])),
        ("Permissions", ", ".join(allowed) if allowed is not None else "any"),
    ]
    if policy is not None:
        lines.append(("Updated", format_when(policy.updated_at)))
    for label, value in lines:
        click.echo(f"{label + ':':<14}{value}")
    if outliving:
        click.echo("Keys outliving the maximum lifetime:")
        for key in outliving:
            owner = getattr(key.owner, field, service.context.user_id(key.owner))
            expires = format_when(key.expires_at) if key.expires_at else "never"
            click.echo(f"  {key.display_prefix}  {key.name!r}  {owner}  expires {expires}")


@policy_cli.command("show")
@click.option("--org", "organization", required=True, help="The organization's id.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@refusals
def show_command(organization: str, as_json: bool) -> None:
    """Show an organization's rules and the keys that outlive its maximum lifetime."""
    _print_policy(cli_service(), organization, as_json)


@policy_cli.command("set")
@click.option("--org", "organization", required=True, help="The organization's id.")
@click.option("--max-lifetime", type=int, default=None, help="Days within which new keys expire.")
@click.option("--idle-expiry", type=int, default=None, help="Days of disuse that expire a key.")
@click.option(
    "--allow", "allowed", multiple=True, help="A permission keys may hold; repeat for more."
)
@click.option("--clear-max-lifetime", is_flag=True, help="Lift the maximum lifetime.")
@click.option("--clear-idle-expiry", is_flag=True, help="Lift the idle expiry.")
@click.option("--clear-allow", is_flag=True, help="Let keys hold any permission again.")
@refusals
def set_command(
    organization: str,
    max_lifetime: int | None,
    idle_expiry: int | None,
    allowed: tuple[str, ...],
    clear_max_lifetime: bool,
    clear_idle_expiry: bool,
    clear_allow: bool,
) -> None:
    """Change an organization's rules (only those given) and print the result."""
    for value, clear, name in (
        (max_lifetime, clear_max_lifetime, "max-lifetime"),
        (idle_expiry, clear_idle_expiry, "idle-expiry"),
        (allowed or None, clear_allow, "allow"),
    ):
        if value is not None and clear:
            raise click.UsageError(f"Give --{name} or --clear-{name}, not both.")
    changes: dict[str, Any] = {}
    if max_lifetime is not None or clear_max_lifetime:
        changes["max_lifetime_days"] = max_lifetime
    if idle_expiry is not None or clear_idle_expiry:
        changes["idle_expiry_days"] = idle_expiry
    if allowed or clear_allow:
        changes["allowed_permissions"] = list(allowed) or None
    if not changes:
        raise click.UsageError("Nothing to change: give a rule to set or to clear.")
    service = cli_service()
    before = service.policies.policy_of(organization)
    before_rules = _describe(before)
    service.policies.set_policy(
        organization,
        max_lifetime_days=changes.get("max_lifetime_days", KEEP),
        idle_expiry_days=changes.get("idle_expiry_days", KEEP),
        allowed_permissions=changes.get("allowed_permissions", KEEP),
    )
    changed = before_rules != _describe(service.policies.policy_of(organization))
    click.echo(
        f"{'Changed' if changed else 'Nothing changed in'} the key policy of "
        f"organization {organization}.",
        err=True,
    )
    _print_policy(service, organization, as_json=False)
