"""What ``flask apikeys list`` and ``show`` print about a key: one registered part each.

A feature adds to those commands here, never by wrapping them or reading their output:

* a :class:`ListColumn` is a column of ``list``'s table (``header`` and ``cell``) and
  fields of its ``--json`` rows (``fields``). Both get the :class:`ListedKeys` too, whose
  :meth:`~ListedKeys.load` reads what a column needs for every listed key in one call;
* a :class:`ShowField` is a line of ``show`` (``label`` and ``text``) and fields of
  ``show --json``.

Register them in :data:`list_columns` and :data:`show_fields`. Both commands walk them by
``order``, then ``name``: the key's own columns and lines take 100 to 1000 (keys.py),
quotas 1100 (quota.py), resources 1200 (resources.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from ..db.models import APIKeyMixin
from ..service.facade import KeyService

T = TypeVar("T")


@dataclass
class ListedKeys:
    """The keys one ``list`` prints, with what the columns share about them."""

    service: KeyService
    keys: Sequence[APIKeyMixin]
    now: datetime
    _loaded: dict[Callable[..., Any], Any] = field(default_factory=dict, repr=False)

    def load(self, loader: Callable[[KeyService, Sequence[APIKeyMixin]], T]) -> T:
        """``loader(service, keys)`` for all the listed keys, called once per listing."""
        if loader not in self._loaded:
            self._loaded[loader] = loader(self.service, self.keys)
        result: T = self._loaded[loader]
        return result


@dataclass(frozen=True)
class ListColumn:
    """A column of ``flask apikeys list``.

    ``cell(key, listed)`` is the table's text (``None`` prints ``-``); with ``header``
    ``None`` the column is in ``--json`` only. ``fields(key, listed)`` are the column's
    fields of the key's ``--json`` row. With ``only_when_used``, the table leaves the
    column out when no listed key has a cell.
    """

    name: str
    order: int
    header: str | None = None
    cell: Callable[[APIKeyMixin, ListedKeys], str | None] | None = None
    fields: Callable[[APIKeyMixin, ListedKeys], Mapping[str, Any]] | None = None
    only_when_used: bool = False

    def __post_init__(self) -> None:
        if (self.header is None) != (self.cell is None):
            raise ValueError(f"list column {self.name!r}: give a header and a cell, or neither")


@dataclass(frozen=True)
class ShowField:
    """A line of ``flask apikeys show``: ``Label:  text(key, service)``, and the
    ``fields(key, service)`` it adds to ``show --json``. Either may be left out."""

    name: str
    order: int
    label: str | None = None
    text: Callable[[APIKeyMixin, KeyService], Any] | None = None
    fields: Callable[[APIKeyMixin, KeyService], Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        if (self.label is None) != (self.text is None):
            raise ValueError(f"show field {self.name!r}: give a label and a text, or neither")


class Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def order(self) -> int: ...


N = TypeVar("N", bound=Named)


class Registry(Generic[N]):
    """Parts by name, walked by ``order`` then ``name``."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.by_name: dict[str, N] = {}

    def register(self, *parts: N) -> None:
        """Add *parts*; a name already taken is an error (unregister it first)."""
        names = [part.name for part in parts]
        for name in names:
            if name in self.by_name or names.count(name) > 1:
                raise ValueError(f"a {self.what} named {name!r} is already registered")
        self.by_name.update(zip(names, parts, strict=True))

    def unregister(self, name: str) -> N:
        """Remove the part named *name* and return it."""
        return self.by_name.pop(name)

    def __iter__(self) -> Iterator[N]:
        return iter(sorted(self.by_name.values(), key=lambda part: (part.order, part.name)))

    def __contains__(self, name: object) -> bool:
        return name in self.by_name


#: The columns of ``flask apikeys list``.
list_columns: Registry[ListColumn] = Registry("list column")
#: The lines of ``flask apikeys show``.
show_fields: Registry[ShowField] = Registry("show field")


def table_lines(columns: Sequence[ListColumn], listed: ListedKeys) -> list[str]:
    """``list``'s table: a header line, then a line per key, columns two spaces apart."""
    table: list[list[str]] = []  # a list of texts per column, its header first
    for column in columns:
        if column.header is None or column.cell is None:
            continue
        cells = [column.cell(key, listed) for key in listed.keys]
        if column.only_when_used and all(cell is None for cell in cells):
            continue
        table.append([column.header, *("-" if cell is None else cell for cell in cells)])
    widths = [max(len(text) for text in texts) for texts in table]
    lines = zip(*table, strict=True)
    return [
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]


def list_row(parts: Sequence[ListColumn], key: APIKeyMixin, listed: ListedKeys) -> dict[str, Any]:
    """One ``list --json`` row: every column's fields, in order."""
    row: dict[str, Any] = {}
    for part in parts:
        if part.fields is not None:
            row.update(part.fields(key, listed))
    return row


def show_lines(fields: Sequence[ShowField], key: APIKeyMixin, service: KeyService) -> list[str]:
    """``show``'s ``Label:  text`` lines, labels padded to 14 characters."""
    return [
        f"{part.label + ':':<14}{part.text(key, service)}"
        for part in fields
        if part.label is not None and part.text is not None
    ]


def show_object(
    fields: Sequence[ShowField], key: APIKeyMixin, service: KeyService
) -> dict[str, Any]:
    """``show --json``'s object: every field's fields, in order."""
    shown: dict[str, Any] = {}
    for part in fields:
        if part.fields is not None:
            shown.update(part.fields(key, service))
    return shown
