"""``flask apikeys set-resources``, and each key's resources in ``show``.

``set-resources fsk_8fK2mQ9x --resource client=3 --resource client=7`` limits a key to
those resources (the ids the host's resource loader lists for the key's owner);
``--all`` lifts the limit. Like ``set-ips``, it acts as an operator and is audited
(``resources_changed``). ``create --resource client=3`` limits a new key from the start.
``show`` gains a ``Resources:`` line (``resources`` in ``show --json``).
"""

from __future__ import annotations

import click

from ..service.resources import Selection, parse_resource_specs
from .columns import ShowField, show_fields
from .common import apikeys_cli, cli_service, find_key, refusals


def describe(selection: Selection | None) -> str:
    """``client 3, 7`` (one kind after another), or ``all`` when not limited."""
    if not selection:
        return "all"
    return "; ".join(f"{kind} {', '.join(ids)}" for kind, ids in selection.items())


@apikeys_cli.command("set-resources")
@click.argument("display_prefix")
@click.option("--resource", "specs", multiple=True, help="KIND=ID, e.g. client=3; repeat for more.")
@click.option("--all", "every", is_flag=True, help="Lift the limit: every resource.")
@refusals
def set_resources_command(display_prefix: str, specs: tuple[str, ...], every: bool) -> None:
    """Limit a key to chosen resources of the app (or, with --all, to none in particular)."""
    if every == bool(specs):
        raise click.UsageError("Give --resource KIND=ID (repeat for more), or --all (not both).")
    service = cli_service()
    key = find_key(service, display_prefix)
    changed = service.resources.set_resources(key, None if every else parse_resource_specs(specs))
    if key.resources:
        what = f"is limited to {describe(key.resources)}"
    else:
        what = "can reach every resource its permissions allow"
    click.echo(f"{key.display_prefix} {what}{'' if changed else ' (unchanged)'}.", err=True)


show_fields.register(
    ShowField(
        name="resources",
        order=1200,
        label="Resources",
        text=lambda key, _: describe(key.resources),
        fields=lambda key, _: {"resources": key.resources or None},
    )
)
