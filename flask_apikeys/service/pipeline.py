"""The steps of the per-request key check, and what each reads of the key's row.

The verifier (:mod:`.verify`) puts every column the steps declare into one Core
``SELECT`` and walks the steps over the row it returns. A feature adds steps through
the context's :class:`~flask_apikeys.service.context.ExtensionPoints`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

__all__ = [
    "AuthenticationFailed",
    "Columns",
    "KeyCheck",
    "KeyField",
    "KeyPermissionLimit",
    "KeyRow",
    "OwnerSQL",
    "permission_names",
]

#: The lookup's row: one attribute per declared label (``row.revoked_at``).
KeyRow = sa.Row[Any]
#: Labels of the lookup's row → the SQL expressions that fill them.
Columns = Mapping[str, sa.ColumnElement[Any]]


class AuthenticationFailed(Exception):
    """A presented key was refused. ``code`` is the error code of the contract; ``key``
    is the refused key when it was found (revoked, expired, inactive owner); ``reason``
    says more when the code does not (``"idle"``: expired by its organization's idle expiry)."""

    def __init__(
        self, code: str, message: str, key: Any = None, *, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class KeyCheck:
    """A check on a presented key: ``check(row, now)`` raises
    :class:`AuthenticationFailed` to refuse it, reading only its *columns*."""

    columns: Columns
    check: Callable[[KeyRow, dt.datetime], None]


@dataclass(frozen=True)
class KeyPermissionLimit:
    """The permissions a key may use now: ``allowed(row)``, ``None`` for no limit."""

    columns: Columns
    allowed: Callable[[KeyRow], frozenset[str] | None]


@dataclass(frozen=True)
class KeyField:
    """``VerifiedKey.<name>``, read from the row by ``read(row)``."""

    name: str
    columns: Columns
    read: Callable[[KeyRow], Any]


@dataclass(frozen=True)
class OwnerSQL:
    """What the host declared of its users as SQL, for the lookup's one SELECT.

    *permissions* is ``permissions(owner_id, organization_id)``: a scalar SQL expression
    over the host's tables, given the key's owner and organization columns;
    *to_names* turns its value into permission names. *active* is a boolean
    expression over the user model (``User.active``). ``None``: not declared.
    """

    permissions: Callable[[Any, Any], sa.ColumnElement[Any]] | None = None
    to_names: Callable[[Any], Iterable[str]] | None = None
    active: sa.ColumnElement[Any] | None = None

    def declared(
        self,
        permissions: Callable[[Any, Any], sa.ColumnElement[Any]] | None,
        to_names: Callable[[Any], Iterable[str]] | None,
        active: sa.ColumnElement[Any] | None,
    ) -> OwnerSQL:
        """This declaration with what was given (``None`` keeps the rest)."""
        if permissions is None:
            permissions, to_names = self.permissions, self.to_names
        return OwnerSQL(permissions, to_names, self.active if active is None else active)

    def names(self, value: Any) -> frozenset[str]:
        """The permission names the declared expression's *value* stands for."""
        return frozenset((self.to_names or permission_names)(value))


def permission_names(value: Any) -> Iterable[str]:
    """The default ``to_names``: nothing for ``NULL``, the words of a string (spaces or
    commas between them), the items of anything else."""
    if value is None:
        return ()
    if isinstance(value, str):
        return value.replace(",", " ").split()
    return (str(name) for name in value)
