"""Fixtures for the pages: sign in through the real login form, with CSRF on."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

PREFIX = "/settings/api-keys"
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
_SECRET = re.compile(r'id="ak-new-key"[^>]*>([^<]+)</textarea>')


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def shown_secret(html: str) -> str:
    match = _SECRET.search(html)
    assert match, "no key shown on the page"
    return match.group(1)


class Browser:
    """A test client that signs in and posts forms the way a browser does."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, email: str, password: str = "demo-password") -> None:
        page = self.client.get("/login")
        response = self.client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
        )
        assert response.status_code == 302, response.text

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(PREFIX + path, **kwargs)

    def submit(self, page_path: str, action: str, data: dict[str, Any]) -> Any:
        """GET *page_path*, take its CSRF token, POST *data* to *action*."""
        page = self.get(page_path)
        assert page.status_code == 200, page.status_code
        return self.client.post(PREFIX + action, data={**data, "csrf_token": csrf_token(page.text)})

    def create(self, name: str = "ci", **data: Any) -> tuple[Any, str]:
        data = {"name": name, "expires": "90d", "access": "custom", **data}
        response = self.submit("/new", "/new", data)
        assert response.status_code == 200, response.text
        return response, shown_secret(response.text)


@pytest.fixture
def db_key(app: Flask) -> Any:
    """``db_key(secret)`` -> the key row (detached copy of id and fields)."""
    from example_app import apikeys

    def find(secret: str) -> Any:
        with app.app_context():
            key = apikeys.service.verifier.find_by_secret(secret)
            assert key is not None
            return key

    return find


@pytest.fixture
def user_id(app: Flask) -> Any:
    from example_app import db
    from example_app.models import User

    def find(email: str) -> int:
        with app.app_context():
            return int(db.session.scalar(sa.select(User.id).where(User.email == email)))

    return find
