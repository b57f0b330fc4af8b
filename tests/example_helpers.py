"""Signing in to the example app and recognising its pages, for the hardening tests."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.pages.conftest import csrf_token


def sign_in(client: FlaskClient, email: str, password: str = "demo-password", **kw: Any) -> Any:
    """Post the sign-in form as a browser does (with its CSRF token)."""
    page = client.get("/login")
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
        **kw,
    )


def is_site_page(response: Any) -> bool:
    """Whether *response* is an HTML page in the example's own layout."""
    return response.mimetype == "text/html" and 'class="site-header"' in response.text
