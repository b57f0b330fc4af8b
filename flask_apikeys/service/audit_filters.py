"""The values of the audit trail and the checks of what people type to filter it.

Beside the audit trail: event labels, the filter, entries and
pages, keyset cursors, dates, retention, and CSV cells that never run as formulas.
Each check returns the cleaned value or raises :class:`RequestRefused` naming the field.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..keys.format import DISPLAY_LENGTH
from .validation import RequestRefused

__all__ = [
    "CSV_HEADER",
    "EVENT_LABELS",
    "ROLES",
    "AuditEntry",
    "AuditFilter",
    "AuditPage",
    "clean_display_prefix",
    "clean_event_names",
    "csv_cell",
    "details_text",
    "event_label",
    "parse_cursor",
    "parse_moment",
    "retention_cutoff",
]

#: Friendly names of the events flask-apikeys writes. Events not listed here (a host's
#: own, or a newer version's) are shown by their raw name; add yours to label them.
EVENT_LABELS: dict[str, str] = {
    "created": "Created",
    "renamed": "Renamed",
    "rotated": "Rotated",
    "revoked": "Revoked",
    "expired_use": "Used after expiry",
    "ip_allowlist_changed": "IP allowlist changed",
    "rate_limit_changed": "Rate limit changed",
    "quota_changed": "Quota changed",
    "resources_changed": "Resources changed",
    "leaked": "Reported as leaked",
    "policy_changed": "Policy changed",
}

#: Who a person filter matches: the one who acted, the key's owner, or either.
ROLES = ("any", "actor", "owner")

_EVENT_RE = re.compile(r"[a-z][a-z0-9_.]{0,31}\Z")
_DISPLAY_PREFIX_RE = re.compile(r"([a-z][a-z0-9]{0,15})_([0-9A-Za-z]+)\Z")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_DAY_RE = re.compile(r"(\d{1,2})\s+([A-Za-z]{3})[a-z]*\.?,?\s+(\d{4})\Z")
_AGO_RE = re.compile(r"(\d{1,5})\s*([dhm])\Z")
_AGO_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_CURSOR_RE = re.compile(r"(\d{1,17})\.(\d{1,19})\Z")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FIRST_YEAR, _LAST_YEAR = 1970, 8999
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_HEADER = ("time_utc", "event", "event_name", "key", "key_name", "key_owner", "by", "ip")


def event_label(name: str) -> str:
    """The friendly label of event *name*, or the name itself for unknown events."""
    return EVENT_LABELS.get(name, name)


@dataclass(frozen=True)
class AuditFilter:
    """What to show of one organization's events; ``until`` is exclusive.

    Make one with :meth:`~flask_apikeys.KeyService.audit_filter`, which checks what
    people typed.
    """

    organization_id: Any
    person_id: Any = None
    role: str = "any"
    key_id: int | None = None
    events: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One event as the trail shows it, with its key and the people involved."""

    id: int
    at: dt.datetime
    event: str
    ip: str | None
    details: dict[str, Any]
    key_id: int | None
    key_prefix: str | None
    key_name: str | None
    actor_id: Any
    actor: Any  # the host's user, or None for an operator (or a deleted user)
    owner_id: Any
    owner: Any

    @property
    def label(self) -> str:
        return event_label(self.event)

    @property
    def known(self) -> bool:
        """Whether the event has a friendly label."""
        return self.event in EVENT_LABELS

    @property
    def cursor(self) -> str:
        """Where a page that starts or ends at this entry continues."""
        delta = self.at - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return f"{micros}.{self.id}"


@dataclass(frozen=True)
class AuditPage:
    """One page of entries, newest first, and the cursors of its neighbours."""

    entries: list[AuditEntry]
    older: str | None = None  #: pass as ``before=`` for the next (older) page
    newer: str | None = None  #: pass as ``after=`` for the previous (newer) page


def parse_moment(
    text: str | dt.datetime | None,
    *,
    end: bool = False,
    field: str = "since",
    now: dt.datetime | None = None,
) -> dt.datetime | None:
    """A time from ``YYYY-MM-DD``, ``7 Mar 2027`` (or ``7 March 2027``), an ISO 8601
    time, or ``7d``/``24h``/``30m`` ago.

    A date is a whole UTC day: with *end*, the bound is the next midnight, so
    ``until=2026-03-01`` includes that day. A time without a zone is UTC. Empty
    gives ``None``; anything else raises :class:`RequestRefused` naming *field*.
    """
    if text is None or isinstance(text, dt.datetime):
        if isinstance(text, dt.datetime) and text.tzinfo is None:
            raise RequestRefused("Give the time a time zone.", field=field)
        return text
    value = str(text).strip()
    if not value:
        return None
    shown = value[:30]
    if len(value) > 40 or not value.isascii() or not value.isprintable():
        raise RequestRefused(f"{shown!r} is not a date: use YYYY-MM-DD.", field=field)
    try:
        if _DATE_RE.match(value):
            day = dt.date.fromisoformat(value)
            if not _FIRST_YEAR <= day.year <= _LAST_YEAR:
                raise _out_of_range(field)
            moment = dt.datetime.combine(day, dt.time(), dt.UTC)
            if end:
                moment += dt.timedelta(days=1)
        elif match := _DAY_RE.match(value):  # 7 Mar 2027, as the pages write days
            day = dt.datetime.strptime(" ".join(match.groups()), "%d %b %Y").date()
            if not _FIRST_YEAR <= day.year <= _LAST_YEAR:
                raise _out_of_range(field)
            moment = dt.datetime.combine(day, dt.time(), dt.UTC)
            if end:
                moment += dt.timedelta(days=1)
        elif match := _AGO_RE.match(value.lower()):
            amount, unit = match.groups()
            ago = dt.timedelta(**{_AGO_UNITS[unit]: int(amount)})
            if ago > dt.timedelta(days=36_500):
                raise RequestRefused("Look back at most 100 years.", field=field)
            moment = (now or dt.datetime.now(dt.UTC)) - ago
        else:
            moment = dt.datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            moment = moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise RequestRefused(
            f"{shown!r} is not a date: use 7 Mar 2026, 2026-03-07, a time like "
            "2026-03-07T09:30Z, or 7d, 24h, 30m ago.",
            field=field,
        ) from None
    if not _FIRST_YEAR <= moment.year <= _LAST_YEAR + 1:
        raise _out_of_range(field)
    return moment


def _out_of_range(field: str) -> RequestRefused:
    return RequestRefused(f"Choose a date between {_FIRST_YEAR} and {_LAST_YEAR}.", field=field)


def retention_cutoff(days: Any, now: dt.datetime | None = None) -> dt.datetime | None:
    """The time before which events go, when they are kept *days* days (a number, a
    string of digits or a timedelta). ``None``, ``""`` and 0 keep them forever."""
    if days is None or days == "" or days == 0:
        return None
    if isinstance(days, dt.timedelta):
        span = days
    elif isinstance(days, int) and not isinstance(days, bool):
        span = dt.timedelta(days=days) if 0 < days <= 36_500 else dt.timedelta(0)
    elif isinstance(days, str) and days.strip().isascii() and days.strip().isdigit():
        return retention_cutoff(int(days.strip()), now)
    else:
        raise RequestRefused(f"{str(days)[:20]!r} is not a number of days.")
    if not dt.timedelta(0) < span <= dt.timedelta(days=36_500):
        raise RequestRefused("Keep events between 1 day and 100 years (0: forever).")
    return (now or dt.datetime.now(dt.UTC)) - span


def csv_cell(value: Any) -> str:
    """*value* as a CSV cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def clean_event_names(events: Iterable[str] | str) -> tuple[str, ...]:
    """Event names to filter by, without blanks and repeats. Any well-formed name is
    accepted (events of a host or a newer version have no label here)."""
    names = (events,) if isinstance(events, str) else tuple(events)
    cleaned: list[str] = []
    for name in names:
        name = (name or "").strip()
        if not name:
            continue
        if not _EVENT_RE.match(name):
            raise RequestRefused(
                f"{name[:40]!r} is not an event name; known events: "
                + ", ".join(EVENT_LABELS)
                + ".",
                field="event",
            )
        if name not in cleaned:
            cleaned.append(name)
    return tuple(cleaned)


def clean_display_prefix(text: str) -> str:
    """A key's display prefix as typed (a trailing ``…`` is fine), checked for shape.
    A whole key is refused without being repeated back."""
    text = text.strip().removesuffix("…").removesuffix("...").strip()
    match = _DISPLAY_PREFIX_RE.match(text) if text.isascii() else None
    if match is not None and len(match.group(2)) > DISPLAY_LENGTH:
        raise RequestRefused(
            "Type only the key's display prefix (like fsk_8fK2mQ9x), never the whole key.",
            field="key",
        )
    if match is None:
        raise RequestRefused(
            f"{text[:32]!r} is not a key's display prefix (like fsk_8fK2mQ9x).", field="key"
        )
    return text


def parse_cursor(text: str, name: str) -> tuple[dt.datetime, int]:
    """The time and id of a cursor made by :attr:`AuditEntry.cursor`."""
    match = _CURSOR_RE.match(text) if isinstance(text, str) else None
    try:
        if match is None:
            raise ValueError
        at = _EPOCH + dt.timedelta(microseconds=int(match.group(1)))
        id_ = int(match.group(2))
        if id_ >= 2**63:
            raise ValueError
    except (ValueError, OverflowError):
        raise RequestRefused(
            "That page link is broken: start again from the newest events.", field=name
        ) from None
    return at, id_


def details_text(details: dict[str, Any]) -> str:
    """An event's details as one line of JSON (empty when there are none)."""
    return json.dumps(details, sort_keys=True, ensure_ascii=False, default=str) if details else ""
