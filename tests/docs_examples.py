"""Run a docs page's example as written: the ```python block after an HTML marker."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent / "docs"
_PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def example_code(page: str, marker: str) -> str:
    """The first ```python block after ``<!-- example:<marker> -->`` in ``docs/<page>``."""
    text = (DOCS / page).read_text()
    found = _PYTHON_BLOCK.search(text, text.index(f"<!-- example:{marker} -->"))
    assert found is not None, f"no python block after the {marker!r} marker in {page}"
    return found.group(1)


def run_example(page: str, marker: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute the example in *namespace* (its globals) and return that namespace."""
    exec(compile(example_code(page, marker), str(DOCS / page), "exec"), namespace)
    return namespace


@contextmanager
def example_app_example(
    page: str, marker: str, database_url: str, namespace: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Run an example that builds the example app as ``app`` on ``DATABASE_URL`` (in
    *namespace*, if given); yield its namespace, then write its usage and drop its tables,
    whether it passed or not."""
    namespace = {} if namespace is None else namespace
    namespace["DATABASE_URL"] = database_url
    try:
        run_example(page, marker, namespace)
        yield namespace
    finally:
        app = namespace.get("app")
        if app is not None:
            from example_app import db

            with app.app_context():
                app.extensions["apikeys"].flush_usage(app)
                db.session.remove()
                db.drop_all()
                db.engine.dispose()
