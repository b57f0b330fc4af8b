"""docs/configuration.md documents exactly the settings of flask_apikeys/config.py.

Each row of its tables is ``| `APIKEYS_X` | type | `default` | meaning |``; the default
is written as Python writes it, so it is compared with the code's.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from flask_apikeys.web.config import DEFAULTS

pytestmark = pytest.mark.backend_independent  # reads the docs and the code only

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
ROW = re.compile(r"^\|\s*`(APIKEYS_\w+)`\s*\|(.*)\|\s*$")


def documented() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            name, rest = match.groups()
            assert name not in rows, f"{name} has two rows in {DOC.name}"
            rows[name] = [cell.strip() for cell in rest.split("|")]
    return rows


def test_every_setting_in_the_code_has_a_row_and_every_row_a_setting() -> None:
    rows = documented()
    missing = sorted(set(DEFAULTS) - set(rows))
    unknown = sorted(set(rows) - set(DEFAULTS))
    assert not missing, f"settings missing from docs/configuration.md: {missing}"
    assert not unknown, f"docs/configuration.md names settings the code lacks: {unknown}"


def test_each_row_gives_a_type_the_code_default_and_a_meaning() -> None:
    for name, cells in documented().items():
        if name not in DEFAULTS:
            continue  # reported by the test above
        assert len(cells) == 3, f"{name}: expected type | default | meaning, got {cells}"
        type_, default, meaning = cells
        assert type_ and meaning, f"{name}: the type and the meaning must be filled in"
        assert default.startswith("`") and default.endswith("`"), name
        try:
            value = ast.literal_eval(default.strip("`"))
        except (ValueError, SyntaxError):
            raise AssertionError(f"{name}: write the default as a Python literal") from None
        assert value == DEFAULTS[name], f"{name}: documented {value!r}, code {DEFAULTS[name]!r}"
