"""The ``flask apikeys`` group and what its commands share: the service, one-line
refusals, and finding users and keys by what operators type."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from ..db.models import APIKeyMixin
from ..service.facade import KeyService
from ..service.validation import RequestRefused
from ..web.state import app_keys

F = TypeVar("F", bound=Callable[..., Any])

apikeys_cli = AppGroup("apikeys", help="Create, list, rotate and revoke API keys.")


def cli_service() -> KeyService:
    """The key service of the current app's extension."""
    ext = app_keys()
    service: KeyService = ext.service
    return service


def refusals(func: F) -> F:
    """Turn a refused request into a one-line error and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RequestRefused as exc:
            cli_service().session.rollback()
            raise click.ClickException(exc.message) from None

    return wrapper  # type: ignore[return-value]


def find_user(service: KeyService, identity: str) -> Any:
    """The user whose ``APIKEYS_USER_LOOKUP_FIELD`` is *identity*, or a one-line error."""
    field = current_app.config["APIKEYS_USER_LOOKUP_FIELD"]
    User = service.context.models.User
    column = getattr(User, field, None)
    if column is None:
        raise click.ClickException(f"APIKEYS_USER_LOOKUP_FIELD names no column: {field!r}")
    user = service.session.execute(sa.select(User).where(column == identity)).scalars().first()
    if user is None:
        raise click.ClickException(f"No user with {field} {identity!r}.")
    return user


def find_key(service: KeyService, display_prefix: str) -> Any:
    """The key with *display_prefix*, or a one-line error."""
    key = service.queries.get_by_display_prefix(display_prefix.strip())
    if key is None:
        raise click.ClickException(f"No key with display prefix {display_prefix!r}.")
    return key


def owner_label(service: KeyService, key: APIKeyMixin) -> str:
    """*key*'s owner as operators name them: the ``APIKEYS_USER_LOOKUP_FIELD`` (or the id)."""
    field = current_app.config["APIKEYS_USER_LOOKUP_FIELD"]
    owner = key.owner
    return str(getattr(owner, field, service.context.user_id(owner)))


def format_when(value: Any) -> str:
    """``2025-07-01 00:00 UTC``, or ``-`` for none."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "-"
