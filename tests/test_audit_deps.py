"""scripts/audit-deps never prints a green line when it could audit nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent  # no database

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "audit-deps"


def test_an_unreachable_vulnerability_service_is_reported_as_not_audited():
    # Every HTTPS request goes to a closed local port: the service cannot answer.
    env = {**os.environ, "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    env["PIP_AUDIT_PYTHON"] = sys.executable
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr  # an unreachable database does not fail CI
    assert result.stdout.startswith("dependencies were NOT audited: "), result.stdout
    assert "pypi.org" in result.stdout
    assert "No known vulnerabilities found" not in result.stdout + result.stderr
