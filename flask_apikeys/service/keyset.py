"""Keyset pages of keys: orders, cursors, and the pages around the one shown.

A list of keys is ordered by one column (``created``, ``name``, ``last_used``,
``expires`` or ``usage``) in either direction, ties broken by id. A page is found from
the row before it (``after=``) or after it (``before=``), never by an OFFSET, so page
1,800 costs what page 1 does. A cursor is the sort, the direction, the row's value of
the column and its id, as text: ``created:desc:t1767225600000000:4012``. A cursor of
another order, or one that cannot be read, is ignored (the list starts again).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

__all__ = [
    "COUNT_CAP",
    "SORT_DIRECTIONS",
    "KeyPage",
    "Order",
    "StatusCounts",
    "make_cursor",
    "read_cursor",
]

#: Each sort and the direction it takes when none is asked for.
SORT_DIRECTIONS: dict[str, str] = {
    "created": "desc",
    "name": "asc",
    "last_used": "desc",
    "expires": "asc",
    "usage": "desc",
}
#: Sorts whose column may be empty (never used, never expires).
NULLABLE = frozenset({"last_used", "expires"})
#: Counts stop here: a list of more keys says "100,000+" and costs no more.
COUNT_CAP = 100_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CURSOR = re.compile(
    r"([a-z_]{1,16}):(asc|desc):(-|t-?\d{1,19}|n-?\d{1,19}|s[A-Za-z0-9_-]*):(\d{1,19})\Z"
)
_MAX_CURSOR = 1200


@dataclass(frozen=True)
class Order:
    """How a list is ordered: *column* (``sort``'s) ascending or not, empty values
    last or first, then the id the same way."""

    sort: str
    direction: str
    column: Any
    id_column: Any
    nullable: bool
    ascending: bool
    nulls_last: bool

    @classmethod
    def of(cls, sort: str, direction: str, column: Any, id_column: Any) -> Order:
        natural = direction == SORT_DIRECTIONS[sort]
        return cls(
            sort=sort,
            direction=direction,
            column=column,
            id_column=id_column,
            nullable=sort in NULLABLE,
            ascending=direction == "asc",
            # Keys without a value come last in the natural direction, first reversed.
            nulls_last=natural,
        )

    def reversed(self) -> Order:
        return Order(
            self.sort,
            self.direction,
            self.column,
            self.id_column,
            self.nullable,
            not self.ascending,
            not self.nulls_last,
        )

    def clauses(self) -> list[Any]:
        """The ORDER BY. Columns that cannot be empty keep a plain order, which an
        index on the column can serve."""
        if self.ascending:
            order = [self.column.asc(), self.id_column.asc()]
        else:
            order = [self.column.desc(), self.id_column.desc()]
        if self.nullable:
            empty = self.column.is_(None) if self.nulls_last else self.column.is_not(None)
            order.insert(0, empty)
        return order

    def beyond(self, value: Any, id_: int) -> sa.ColumnElement[bool]:
        """The rows that come after the row (*value*, *id_*) in this order."""
        col, ident = self.column, self.id_column

        def past(a: Any, b: Any) -> Any:
            return a > b if self.ascending else a < b

        if self.nullable and value is None:  # the cursor is among the empty values
            among = sa.and_(col.is_(None), past(ident, id_))
            return among if self.nulls_last else sa.or_(among, col.is_not(None))
        # "col >= value" (or <=) bounds an index scan; the OR breaks the tie.
        bound = col >= value if self.ascending else col <= value
        after = sa.and_(bound, sa.or_(past(col, value), past(ident, id_)))
        if self.nullable and self.nulls_last:
            return sa.or_(after, col.is_(None))
        return after


def make_cursor(order: Order, value: Any, id_: int) -> str:
    """The cursor of the row (*value*, *id_*) in *order*."""
    if value is None:
        part = "-"
    elif isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        delta = moment - _EPOCH
        part = f"t{(delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds}"
    elif isinstance(value, int):
        part = f"n{value}"
    else:
        part = "s" + base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")
    return f"{order.sort}:{order.direction}:{part}:{id_}"


def read_cursor(text: str | None, order: Order) -> tuple[Any, int] | None:
    """The value and id of a cursor of *order*, or ``None`` when it is of another
    order or cannot be read."""
    if not text or len(text) > _MAX_CURSOR:
        return None
    match = _CURSOR.match(text)
    if match is None or (match.group(1), match.group(2)) != (order.sort, order.direction):
        return None
    part, id_ = match.group(3), int(match.group(4))
    if id_ >= 2**63:
        return None
    try:
        if part == "-":
            return (None, id_) if order.nullable else None
        if part[0] == "t" and order.sort in ("created", "last_used", "expires"):
            return _EPOCH + dt.timedelta(microseconds=int(part[1:])), id_
        if part[0] == "n" and order.sort == "usage":
            number = int(part[1:])
            return (number, id_) if -(2**63) <= number < 2**63 else None
        if part[0] == "s" and order.sort == "name":
            padded = part[1:] + "=" * (-len(part[1:]) % 4)
            return base64.urlsafe_b64decode(padded).decode(), id_
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        return None
    return None


@dataclass(frozen=True)
class StatusCounts:
    """How many keys a list holds in each status (up to :data:`COUNT_CAP` in all)."""

    active: int = 0
    expired: int = 0
    revoked: int = 0
    #: Whether counting stopped at :data:`COUNT_CAP`: there are more.
    capped: bool = False

    @property
    def all(self) -> int:
        return self.active + self.expired + self.revoked

    def of(self, status: str | None) -> int:
        return int(getattr(self, status)) if status else self.all

    @classmethod
    def from_rows(cls, rows: Mapping[str, int], cap: int = COUNT_CAP) -> StatusCounts:
        counts = {name: int(rows.get(name, 0)) for name in ("active", "expired", "revoked")}
        total = sum(counts.values())
        return cls(**counts, capped=total >= cap)


@dataclass(frozen=True)
class KeyPage:
    """One page of a list of keys and the links to the pages around it.

    A link is the query-string arguments that open that page: ``{}`` for the first,
    ``{"after": cursor, "page": n}`` for one after it, ``{"page": "last"}`` for the last.
    """

    keys: list[Any]
    number: int
    per_page: int
    #: Keys in the list (capped; see :attr:`capped`) and pages they fill.
    total: int
    pages: int
    capped: bool = False
    previous: dict[str, Any] | None = None
    next: dict[str, Any] | None = None
    #: Page numbers near this one and their links, in order, this one included.
    nearby: list[tuple[int, dict[str, Any] | None]] = field(default_factory=list)
    #: The link to the last page, when it is not among :attr:`nearby`.
    last: dict[str, Any] | None = None

    @property
    def first_number(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.keys else 0

    @property
    def last_number(self) -> int:
        return self.first_number + len(self.keys) - 1 if self.keys else 0


def page_links(
    order: Order,
    number: int,
    per_page: int,
    rows_before: Sequence[tuple[Any, int]],
    rows_after: Sequence[tuple[Any, int]],
    window: int,
) -> tuple[int, list[tuple[int, dict[str, Any] | None]]]:
    """Page numbers near page *number* and their links (``None`` for the page itself).

    *rows_before* are (value, id) of the page's first row, then of the rows before it,
    going back; *rows_after* of its last row, then of the rows after it. Returns the
    page's number too, corrected when the rows say it is nearer the start.
    """
    back: list[tuple[int, dict[str, Any]]] = []
    for k in range(1, window + 1):
        if (k - 1) * per_page + 1 >= len(rows_before):  # page number-k has no row
            break
        opener = k * per_page + 1  # the row just before page number-k, if any
        if opener >= len(rows_before):
            back.append((k, {}))  # the first page
            number = k + 1
            break
        value, id_ = rows_before[opener]
        back.append((k, {"after": make_cursor(order, value, id_)}))
    if len(rows_before) <= 1:
        number = 1
    elif back and back[-1][1]:  # the first page is further back than the window
        number = max(number, len(back) + 2)
    nearby: list[tuple[int, dict[str, Any] | None]] = [
        (number - k, {**link, "page": number - k} if link else {}) for k, link in reversed(back)
    ]
    nearby.append((number, None))
    for k in range(1, window + 1):
        opener_index = (k - 1) * per_page  # the row just before page number+k
        if opener_index + 1 >= len(rows_after):
            break
        value, id_ = rows_after[opener_index]
        nearby.append((number + k, {"after": make_cursor(order, value, id_), "page": number + k}))
    return number, nearby
