"""The example of docs/usage-and-rate-limits.md, run as written."""

from __future__ import annotations

from pathlib import Path

from tests.docs_examples import example_app_example

DOC = Path(__file__).resolve().parent.parent / "docs" / "usage-and-rate-limits.md"


def test_the_usage_and_rate_limits_example_runs(database_url: str) -> None:
    with example_app_example("usage-and-rate-limits.md", "usage", database_url):
        pass  # the example asserts what it shows
