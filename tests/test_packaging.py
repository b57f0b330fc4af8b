"""The package as published: one version, a license, a changelog, and an sdist and a
wheel that hold what they should and build without a warning.

The build runs once per module (``python -m build``, about 10 s); ``scripts/check-dist``
builds into ``dist/`` and points ``CHECK_DIST_DIR`` at it so that these checks read the
files it then installs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import flask_apikeys

pytestmark = pytest.mark.backend_independent  # the files of the package, no database

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once_in_the_package() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "flask_apikeys.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?", flask_apikeys.__version__)


def test_the_changelog_has_a_dated_entry_for_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    version = re.escape(flask_apikeys.__version__)
    assert re.search(rf"^## \[{version}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)
    assert re.search(rf"^\[{version}\]: https://", changelog, re.M)


def test_the_license_is_mit_and_declared() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 The flask-apikeys developers" in text
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert "Framework :: Flask" in PYPROJECT["project"]["classifiers"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("CHECK_DIST_DIR")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    log = (result.stdout + result.stderr).splitlines()
    warnings = [
        line
        for line in log
        # Not the file list: "copying docs/expiry-warnings.md" is no warning.
        if not line.startswith(("copying ", "adding "))
        and re.search(r"warning|would be ignored", line, re.I)
        and "byte-compiling is disabled" not in line  # PYTHONDONTWRITEBYTECODE
        and "WARNING: Location" not in line  # pip's index configuration
    ]
    assert not warnings, "\n".join(warnings)
    return out


def one(dist: Path, pattern: str) -> Path:
    (found,) = dist.glob(pattern)
    return found


def test_the_wheel_holds_the_package_its_templates_and_static_files_only(dist: Path) -> None:
    with zipfile.ZipFile(one(dist, "*.whl")) as wheel:
        names = wheel.namelist()
    assert "flask_apikeys/py.typed" in names
    assert "flask_apikeys/templates/apikeys/layout.html" in names
    assert "flask_apikeys/static/apikeys/apikeys.css" in names
    assert "flask_apikeys/static/apikeys/apikeys.js" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    strays = [
        name
        for name in names
        if (name.split("/")[0] != "flask_apikeys" and ".dist-info/" not in name)
        or "__pycache__" in name
    ]
    assert not strays, strays  # no tests, no benchmarks, no example app


def test_the_wheel_metadata_says_what_pypi_shows(dist: Path) -> None:
    with zipfile.ZipFile(one(dist, "*.whl")) as wheel:
        (metadata_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = wheel.read(metadata_name).decode()
    assert f"Version: {flask_apikeys.__version__}\n" in metadata
    assert "License-Expression: MIT\n" in metadata
    assert "Requires-Python: >=3.11\n" in metadata
    assert "Classifier: Framework :: Flask\n" in metadata
    assert "Project-URL: Documentation, https://flask-apikeys.readthedocs.io/" in metadata
    assert "Provides-Extra: docs" in metadata


def test_the_sdist_holds_what_its_tests_and_docs_need(dist: Path) -> None:
    sdist = one(dist, "*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    needed = {
        "LICENSE",
        "CHANGELOG.md",
        "README.md",
        "pyproject.toml",
        "flask_apikeys/py.typed",
        "docs/conf.py",
        "docs/index.md",
        "benchmarks/README.md",  # docs/performance.md includes it
        "scripts/test",  # and what it reads: constraints/lowest.txt, the other scripts
    }
    for folder in ("tests", "example_app", "docs", "flask_apikeys", "scripts", "constraints"):
        needed |= {
            path.relative_to(ROOT).as_posix()
            for path in (ROOT / folder).rglob("*")
            if path.is_file()
            and "__pycache__" not in path.parts
            and "_build" not in path.parts
            and _tracked(path)
        }
    missing = sorted(needed - members)
    assert not missing, missing
    strays = [m for m in members if "__pycache__" in m or "/_build/" in m or m.endswith(".pyc")]
    assert not strays, strays


def test_the_unpacked_sdist_runs_its_test_script_and_collects_its_tests(
    dist: Path, tmp_path: Path
) -> None:
    """Unpacked, the sdist is a project of its own: ``./scripts/test --help`` answers
    without installing anything, and pytest collects the tests from the unpacked files
    (flask_apikeys, the helpers and the example app included)."""
    with tarfile.open(one(dist, "*.tar.gz")) as archive:
        # The "data" filter where Python has it (3.12 warns without a filter).
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(tmp_path, **safe)
    (root,) = tmp_path.iterdir()

    usage = subprocess.run(
        ["./scripts/test", "--help"], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 0, usage.stdout + usage.stderr
    assert usage.stdout.startswith("Usage: ./scripts/test")
    for name in ("TEST_POSTGRES_URL", "TEST_REDIS_URL", "TEST_WORKERS", "CHECK_DIST", "CI"):
        assert name in usage.stdout
    assert not (root / ".venv").exists()  # --help installed nothing

    # This venv's packages; the project itself from the unpacked directory.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(root)
    where = subprocess.run(
        [sys.executable, "-c", "import flask_apikeys, tests; print(flask_apikeys.__file__)"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(root), where.stdout
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:schemathesis"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = collected.stdout + collected.stderr
    assert collected.returncode == 0, output[-4000:]
    ids = set(collected.stdout.splitlines())
    for test_id in (
        "tests/test_readme.py::test_the_quickstart_works_as_written",
        "tests/test_ratelimit.py::test_a_verified_request_without_a_limit_sends_redis_nothing",
        "tests/test_audit_deps.py",  # runs scripts/audit-deps
        "tests/test_openapi_schemathesis.py",  # runs scripts/schemathesis
    ):
        assert any(i == test_id or i.startswith(test_id + "::") for i in ids), test_id
    count = re.search(r"^(\d+) tests? collected", collected.stdout, re.M)
    assert count is not None and int(count.group(1)) > 500, output[-2000:]


def _tracked(path: Path) -> bool:
    """Committed files only, in a checkout: the sdist need not carry work in progress."""
    return _TRACKED is None or path.relative_to(ROOT).as_posix() in _TRACKED


def _git_files() -> set[str] | None:
    result = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0 or not (ROOT / ".git").exists():
        return None  # an unpacked sdist: every file counts
    return set(result.stdout.splitlines())


_TRACKED = _git_files()
