"""What the list pages (your keys, the organization's) share: the filters, sort and
page a URL asks for, and the URLs of the other pages, sorts and filters.

Everything comes from the query string, so a list can be bookmarked and shared; what
cannot be read falls back to the default (the first page, newest first, active keys).
Pages are keyset pages (:meth:`~flask_apikeys.listing.KeyListing.key_page`): a page's
link carries the cursor of the row before it and its number, for show only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, request, url_for

from ...service.keyset import SORT_DIRECTIONS, KeyPage, StatusCounts
from ...service.listing import POLICY_RULES

__all__ = ["STATUSES", "KeyList", "read_key_list"]

#: The status filter's choices; "all" shows every key, revoked ones included.
STATUSES = ("active", "expired", "revoked", "all")
#: The most a search box reads.
SEARCH_MAX = 100


@dataclass
class KeyList:
    """One list page as asked: filters, sort, paging, and (once read) its page."""

    endpoint: str
    search: str = ""
    status: str = "active"
    sort: str = "created"
    direction: str = "desc"
    breaks: str = ""
    after: str | None = None
    before: str | None = None
    last: bool = False
    number: int = 1
    #: Other filters of the page (``owner``, ``org``), as they go in its URLs.
    extra: dict[str, Any] = field(default_factory=dict)
    page: KeyPage | None = None
    counts: StatusCounts = field(default_factory=StatusCounts)

    # -- reading -----------------------------------------------------------------------

    @property
    def service_status(self) -> str | None:
        """The status as the service takes it (``None`` for every key)."""
        return None if self.status == "all" else self.status

    @property
    def filtered(self) -> bool:
        """Whether anything but the status narrows the list."""
        return bool(self.search or self.breaks or any(v for v in self.extra.values()))

    def per_page(self) -> int:
        try:
            return max(1, min(int(current_app.config.get("APIKEYS_PAGE_SIZE") or 25), 500))
        except (TypeError, ValueError):
            return 25

    # -- URLs ----------------------------------------------------------------------------

    def args(self) -> dict[str, Any]:
        """The query string of this list, without its page."""
        args = dict(self.extra)
        args["q"] = self.search or None
        args["status"] = None if self.status == "active" else self.status
        args["policy"] = self.breaks or None
        if (self.sort, self.direction) != ("created", "desc"):
            args["sort"] = sort_arg(self.sort, self.direction)
        return {k: v for k, v in args.items() if v not in (None, "")}

    def url(self, **changes: Any) -> str:
        """This list's URL (first page) with *changes* (``None`` drops an argument)."""
        args = {**self.args(), **changes}
        return url_for(self.endpoint, **{k: v for k, v in args.items() if v not in (None, "")})

    def page_url(self, link: Mapping[str, Any]) -> str:
        """The URL of the page *link* (a :class:`KeyPage` link) opens."""
        return url_for(self.endpoint, **{**self.args(), **link})

    def status_url(self, status: str) -> str:
        return self.url(status=None if status == "active" else status)

    def sort_url(self, sort: str) -> str:
        """A header's link: the sorted column reverses, another sorts in its own way."""
        if sort == self.sort:
            direction = "asc" if self.direction == "desc" else "desc"
        else:
            direction = SORT_DIRECTIONS[sort]
        value = sort_arg(sort, direction)
        return self.url(sort=None if value == "created" else value)

    def next_direction(self, sort: str) -> str:
        if sort == self.sort:
            return "asc" if self.direction == "desc" else "desc"
        return SORT_DIRECTIONS[sort]

    def hidden_fields(self, *names: str) -> list[tuple[str, Any]]:
        """(name, value) of this list's arguments among *names*, for a form's hidden inputs."""
        args = self.args()
        return [(name, args[name]) for name in names if name in args]


def sort_arg(sort: str, direction: str) -> str:
    """The ``sort`` argument: ``usage``, or ``usage:asc`` when reversed."""
    return sort if direction == SORT_DIRECTIONS[sort] else f"{sort}:{direction}"


def read_key_list(endpoint: str, *, sorts: tuple[str, ...] | None = None) -> KeyList:
    """The list the request's query string asks for; what cannot be read is left at
    its default. *sorts* are the sorts the page offers (default: all)."""
    args = request.args
    listed = KeyList(endpoint=endpoint)
    listed.search = "".join(ch for ch in args.get("q", "").strip() if ch.isprintable())[:SEARCH_MAX]
    status = args.get("status", "")
    if not status and args.get("revoked") == "1":  # the old "Show revoked" link
        status = "all"
    listed.status = status if status in STATUSES else "active"
    sort, _, direction = args.get("sort", "created").partition(":")
    if sort not in SORT_DIRECTIONS or (sorts is not None and sort not in sorts):
        sort, direction = "created", ""
    listed.sort = sort
    listed.direction = direction if direction in ("asc", "desc") else SORT_DIRECTIONS[sort]
    breaks = args.get("policy", "")
    listed.breaks = breaks if breaks in POLICY_RULES else ""
    listed.after = args.get("after") or None
    listed.before = args.get("before") or None
    page = args.get("page", "")
    listed.last = page == "last"
    if page.isascii() and page.isdigit() and len(page) <= 9:
        listed.number = max(1, int(page))
    return listed
