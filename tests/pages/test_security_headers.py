"""The blueprint itself sends a Content-Security-Policy and its companions on every page,
whatever the host does (issue #10, item 8). The browser suite checks that the pages
break no rule of it (tests/browser/test_csp.py)."""

from __future__ import annotations

import re
from pathlib import Path

from flask_login import LoginManager

from flask_apikeys.web.config import DEFAULTS
from flask_apikeys.web.pages import create_blueprint

TEMPLATES = Path(__file__).resolve().parents[2] / "flask_apikeys" / "templates" / "apikeys"


def _mount(host, **config):
    """The blueprint on the bare host app of tests/hostapp.py (no headers of its own)."""
    host.app.config.update(config)
    login = LoginManager(host.app)
    login.user_loader(lambda user_id: None)
    host.app.register_blueprint(create_blueprint(), url_prefix="/keys")
    return host.app.test_client()


def test_the_blueprint_sends_the_policy_on_every_answer(host):
    client = _mount(host)
    policy = DEFAULTS["APIKEYS_CONTENT_SECURITY_POLICY"]
    for path in ("/keys/", "/keys/new", "/keys/1", "/keys/organization"):
        response = client.get(path)
        assert response.status_code == 401  # signed out: refused, still with the headers
        assert response.headers["Content-Security-Policy"] == policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
    script = client.get("/keys/static/apikeys/apikeys.js")
    assert script.status_code == 200
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    script.close()
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'"):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_a_host_widens_or_drops_the_policy(host):
    wider = DEFAULTS["APIKEYS_CONTENT_SECURITY_POLICY"].replace(
        "style-src 'self'", "style-src 'self' https://fonts.example.test"
    )
    client = _mount(host, APIKEYS_CONTENT_SECURITY_POLICY=wider)
    assert client.get("/keys/").headers["Content-Security-Policy"] == wider
    host.app.config["APIKEYS_CONTENT_SECURITY_POLICY"] = None
    response = client.get("/keys/")
    assert "Content-Security-Policy" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_templates_hold_no_inline_script_or_style():
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|javascript:", re.I
    )
    for template in sorted(TEMPLATES.glob("*.html")):
        found = inline.findall(template.read_text())
        assert not found, f"{template.name}: {found}"
