"""The package's shape: layers that only import downwards (``lint-imports`` checks the
contracts in pyproject.toml), no import cycle anywhere, no module reaching into another's
underscore names, a key-format layer that loads no framework, old import paths that
still work for one release."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import grimp
import pytest

pytestmark = pytest.mark.backend_independent

PACKAGE = Path(__file__).resolve().parent.parent / "flask_apikeys"


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_of_the_package_is_part_of_an_import_cycle() -> None:
    graph = grimp.build_graph("flask_apikeys")
    assert len(graph.modules) > 60
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert _cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_layer_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=PACKAGE.parent, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Layers: extension, then cli | contrib, web, service, db, keys KEPT" in done.stdout
    assert "broken" not in done.stdout.replace("0 broken", "")


def _underscore_imports() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.level or "").__class__ is int:
                module = node.module or ""
                if node.level == 0 and not module.startswith("flask_apikeys"):
                    continue  # another library's names are checked by review, not here
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(PACKAGE)}: {module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_underscore_names() -> None:
    assert _underscore_imports() == []


def test_the_key_format_loads_neither_flask_nor_sqlalchemy() -> None:
    code = (
        "import sys, flask_apikeys.keys.format, flask_apikeys.keys.network, "
        "flask_apikeys.keys.drafts\n"
        "print(sorted(m for m in ('flask', 'werkzeug', 'sqlalchemy', 'click') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_public_names_load_on_first_use() -> None:
    import flask_apikeys

    for name in flask_apikeys.__all__:
        assert getattr(flask_apikeys, name) is not None, name
    assert "require_key" in dir(flask_apikeys)
    with pytest.raises(AttributeError):
        flask_apikeys.no_such_name


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("flask_apikeys.models", "flask_apikeys.db.models", "APIKeyMixin"),
        ("flask_apikeys.models", "flask_apikeys.db.schema", "build_models"),
        ("flask_apikeys.views", "flask_apikeys.web.pages", "create_blueprint"),
        ("flask_apikeys.views.leaks", "flask_apikeys.web.leaks", "create_leak_blueprint"),
        ("flask_apikeys.usage", "flask_apikeys.service.usage", "flush_all"),
        ("flask_apikeys.openapi", "flask_apikeys.contrib.openapi", "security_schemes"),
        ("flask_apikeys.openapi", "flask_apikeys.contrib.apispec", "APIKeysPlugin"),
        ("flask_apikeys.mcp", "flask_apikeys.contrib.mcp", "MCPKeys"),
        ("flask_apikeys.introspection", "flask_apikeys.web.introspection", "introspect"),
        ("flask_apikeys.auth", "flask_apikeys.web.authenticate", "is_key_request"),
        ("flask_apikeys.apispec_plugin", "flask_apikeys.contrib.apispec", "APIKeysPlugin"),
        ("flask_apikeys.policies", "flask_apikeys.service.policies", "key_status"),
    ],
)
def test_an_old_import_path_still_works_and_says_where_to_go(old: str, new: str, name: str) -> None:
    for module in (old, old.rpartition(".")[0]):
        if module != "flask_apikeys":
            sys.modules.pop(module, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    said = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert any(f"{old} is deprecated: import from flask_apikeys." in s for s in said), said
    assert getattr(module, name) is getattr(importlib.import_module(new), name)


@pytest.mark.parametrize("name", ["AuditEntry", "AuditFilter", "AuditPage", "EVENT_LABELS"])
def test_page_types_moved_off_the_top_level_warn(name: str) -> None:
    import flask_apikeys
    from flask_apikeys.service import audit_filters

    with pytest.warns(DeprecationWarning, match="audit_filters"):
        value = getattr(flask_apikeys, name)
    assert value is getattr(audit_filters, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert flask_apikeys.require_key is not None
