"""The example of docs/usage-and-rate-limits.md, run as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "usage-and-rate-limits.md"


def test_the_usage_and_rate_limits_example_runs(database_url: str) -> None:
    text = DOC.read_text()
    start = text.index("<!-- example:usage -->")
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert match is not None
    namespace: dict[str, object] = {"DATABASE_URL": database_url}
    try:
        exec(compile(match.group(1), str(DOC), "exec"), namespace)
    finally:
        app = namespace.get("app")
        if app is not None:
            from example_app import db

            with app.app_context():  # type: ignore[attr-defined]
                db.session.remove()
                db.drop_all()
                db.engine.dispose()
