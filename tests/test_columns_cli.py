"""``flask apikeys list`` and ``show`` print the registered columns and lines, in order;
a feature joins through the registry, never by wrapping a command or reading its output."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_apikeys.cli.columns import (
    ListColumn,
    ListedKeys,
    Registry,
    ShowField,
    list_columns,
    show_fields,
)
from tests.docs_examples import example_app_example
from tests.quota_helpers import issue_key

CLI_PACKAGE = Path(__file__).resolve().parent.parent / "flask_apikeys" / "cli"


def _cli(app: Flask, *args: str) -> Any:
    result = app.test_cli_runner().invoke(args=["apikeys", *args])
    assert result.exit_code == 0, result.output
    return result


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


class TeamColumn:
    """A test's column between the display prefix (100) and the name (200)."""

    loads: list[int]

    def __init__(self) -> None:
        self.loads = []

    def teams(self, service: Any, keys: Sequence[Any]) -> dict[str, str]:
        self.loads.append(len(keys))
        return {key.display_prefix: f"team-{key.id}" for key in keys}

    def cell(self, key: Any, listed: ListedKeys) -> str:
        return listed.load(self.teams)[key.display_prefix]


def test_a_registered_column_is_in_list_and_show_with_and_without_json(app: Flask) -> None:
    _, first_id, first = issue_key(app, None)
    _, second_id, _ = issue_key(app, "10/day")
    before = {
        args: _cli(app, *args).stdout
        for args in [("list",), ("list", "--json"), ("show", first), ("show", first, "--json")]
    }
    column = TeamColumn()
    list_columns.register(
        ListColumn(
            name="team",
            order=150,
            header="TEAM",
            cell=column.cell,
            fields=lambda key, listed: {"team": column.cell(key, listed)},
        )
    )
    show_fields.register(
        ShowField(
            name="team",
            order=150,
            label="Team",
            text=lambda key, service: f"team-{key.id}",
            fields=lambda key, service: {"team": f"team-{key.id}"},
        )
    )
    try:
        table = _cli(app, "list").stdout.splitlines()
        assert table[0].split()[:3] == ["DISPLAY_PREFIX", "TEAM", "NAME"]
        assert table[0].split()[-1] == "QUOTA"  # the quota column still comes last
        assert {line.split()[1] for line in table[1:]} == {f"team-{first_id}", f"team-{second_id}"}
        assert column.loads == [2]  # one load for the whole list

        rows = _json_lines(_cli(app, "list", "--json").stdout)
        assert [list(row)[:3] for row in rows] == [["display_prefix", "team", "name"]] * 2
        assert {row["team"] for row in rows} == {f"team-{first_id}", f"team-{second_id}"}
        assert column.loads == [2, 2]

        shown = _cli(app, "show", first).stdout.splitlines()
        assert shown[0] == f"Key:          {first}"
        assert shown[1] == f"Team:         team-{first_id}"
        assert shown[2].startswith("Name:")
        shown_json = json.loads(_cli(app, "show", first, "--json").stdout)
        assert list(shown_json)[:3] == ["display_prefix", "team", "name"]
        assert shown_json["team"] == f"team-{first_id}"
    finally:
        list_columns.unregister("team")
        show_fields.unregister("team")
    after = {args: _cli(app, *args).stdout for args in before}
    assert after == before  # unregistered: as if it had never been


def test_a_column_only_when_used_leaves_the_table_when_no_key_has_a_cell(app: Flask) -> None:
    issue_key(app, None)
    plain = _cli(app, "list").stdout
    list_columns.register(
        ListColumn(
            name="never",
            order=2000,
            header="NEVER",
            cell=lambda key, listed: None,
            fields=lambda key, listed: {"never": None},
            only_when_used=True,
        )
    )
    try:
        assert _cli(app, "list").stdout == plain
        assert _json_lines(_cli(app, "list", "--json").stdout)[0]["never"] is None
    finally:
        list_columns.unregister("never")


def test_show_json_has_the_keys_fields_its_quota_resources_and_events(app: Flask) -> None:
    _, _, prefix = issue_key(app, "1000/month", resources={"client": ["1"]})
    listed = _json_lines(_cli(app, "list", "--json").stdout)[0]
    shown = json.loads(_cli(app, "show", prefix, "--json").stdout)
    assert {name: shown[name] for name in listed} == listed  # a list row, and more
    assert shown["revoked"] == "-" and shown["revoked_reason"] is None
    assert (shown["quota"], shown["quota_used"]) == ("1000/month", 0)
    assert shown["resources"] == {"client": ["1"]}
    assert [event["event"] for event in shown["events"]] == ["quota_changed", "created"]
    assert list(shown)[-1] == "events"


def test_the_registry_refuses_a_name_twice_and_walks_by_order_then_name() -> None:
    registry: Registry[ShowField] = Registry("show field")
    registry.register(ShowField("b", 20), ShowField("a", 20), ShowField("c", 10))
    assert [part.name for part in registry] == ["c", "a", "b"]
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ShowField("a", 5))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ShowField("d", 5), ShowField("d", 6))
    assert "d" not in registry  # nothing of a refused registration is kept
    with pytest.raises(ValueError, match="a header and a cell"):
        ListColumn("half", 1, header="HALF")


def test_the_features_register_their_columns_through_the_registry() -> None:
    assert [column.name for column in list_columns][-2:] == ["usage", "quota"]
    assert [field.name for field in show_fields][-3:] == ["usage", "quota", "resources"]


def test_no_command_is_wrapped_or_its_output_parsed() -> None:
    """The cheap guard of issue #19: features join through cli/columns.py."""
    for path in sorted(CLI_PACKAGE.glob("*.py")):
        source = path.read_text()
        assert "redirect_stdout" not in source, path.name
        assert not re.search(r"\.callback\s*=", source), path.name


def test_the_docs_column_example_runs(database_url: str) -> None:
    try:
        with example_app_example("cli.md", "cli-column", database_url):
            pass  # the example asserts what it shows
    finally:
        for registry, name in ((list_columns, "event_count"), (show_fields, "rate_limit")):
            if name in registry:
                registry.unregister(name)
