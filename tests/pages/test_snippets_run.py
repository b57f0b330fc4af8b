"""The show-once page's snippets, run as the person who copies them runs them.

A key is created through the page, from a browser whose address is the example app on
a real server; the page's own snippets (read back from its HTML) then set the
environment variable, and curl, Python, JavaScript (Node's fetch) and Go (net/http)
call the app with it. Node and Go are needed where they are installed: Go comes from
Debian's ``golang-go``, installed here when it is missing and we are root (as
scripts/test does for Chromium). Without them a test skips, saying why, and fails under
``CI``.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import service_unavailable
from tests.pages.conftest import Browser

_SNIPPET = re.compile(r'<textarea id="ak-snippet-([\w-]+)"[^>]*>(.*?)</textarea>', re.S)


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    """The example app served over HTTP on 127.0.0.1, on the test database."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(5)
    httpd.server_close()


@pytest.fixture
def shown(app: Flask, server: str, bob: Browser) -> tuple[str, dict[str, str]]:
    """(the key, the snippets) of a show-once page whose snippets call the real server."""
    app.config["APIKEYS_API_BASE_URL"] = f"{server}/v1/me/permissions"
    response, secret = bob.create("snippets", expires="30d", scopes=["client.read"])
    snippets = {m.group(1): html.unescape(m.group(2)) for m in _SNIPPET.finditer(response.text)}
    assert not [name for name, text in snippets.items() if secret in text]
    assert f"{server}/v1/me/permissions" in snippets["curl"]
    return secret, snippets


def _run(args: list[str], cwd: Path, env: dict[str, str], typed: str = "") -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, input=typed, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr or done.stdout
    return done.stdout


def _answer(output: str) -> dict[str, Any]:
    """The JSON document in *output* (Go prints the status line before it)."""
    return json.loads(output[output.index("{") :])  # type: ignore[no-any-return]


def _env(tmp_path: Path, secret: str | None = None) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    if secret is not None:
        env["FSK_API_KEY"] = secret
    return env


def test_the_env_snippet_then_curl(shown: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        service_unavailable("curl", "the curl snippet runs with curl")
    secret, snippets = shown
    script = snippets["env"] + "\n" + snippets["curl"] + " --silent --fail"
    # The person pastes the key at read's prompt: it shows nowhere, and bash keeps no
    # history of what read reads.
    out = _run(["bash", "-c", script], tmp_path, _env(tmp_path), typed=secret + "\n")
    assert _answer(out)["scopes"] == ["client.read"]


def test_python(shown: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    secret, snippets = shown
    out = _run([sys.executable, "-c", snippets["python"]], tmp_path, _env(tmp_path, secret))
    assert "client.read" in out


def test_javascript_with_node(shown: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        service_unavailable("Node.js", "the JavaScript snippet runs with node (18 or later)")
    secret, snippets = shown
    (tmp_path / "call.js").write_text(snippets["javascript"])
    out = _run([str(node), "call.js"], tmp_path, _env(tmp_path, secret))
    assert "client.read" in out and "snippets" in out  # console.log of the JSON answer


def go_binary() -> str | None:
    """``go``, installed from Debian's golang-go when missing and we are root."""
    go = shutil.which("go")
    if go is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "golang-go"]
        if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=900)
            subprocess.run(install, env=env, capture_output=True, timeout=900)
        go = shutil.which("go")
    return go


def test_go_with_net_http(shown: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    go = go_binary()
    if go is None:
        service_unavailable("Go", "the Go snippet runs with go (apt-get install golang-go)")
    secret, snippets = shown
    (tmp_path / "main.go").write_text(snippets["go"] + "\n")
    env = {
        **_env(tmp_path, secret),
        "GOCACHE": str(tmp_path / "go-cache"),
        "GOPATH": str(tmp_path / "go"),
        "GOPROXY": "off",  # the standard library only: nothing to download
        "GOFLAGS": "-mod=mod",
    }
    out = _run([str(go), "run", "main.go"], tmp_path, env)
    assert out.startswith("200 OK")
    assert _answer(out)["scopes"] == ["client.read"]
