"""The details of audit events in words, for the pages and the CSV.

An event keeps its details as JSON (``{"expires_at": "2027-03-07T00:00:00+00:00",
"bulk": true}``); :func:`describe_details` says them as people read them ("Expiry:
7 Mar 2027", "Offboarding"), and :func:`csv_details` gives the CSV a column per detail,
every time in ISO 8601 UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .audit_filters import details_text

__all__ = [
    "CSV_DETAILS",
    "DETAIL_LABELS",
    "Detail",
    "csv_details",
    "csv_time",
    "day_text",
    "describe_details",
]

#: What the pages call each detail of an event flask-apikeys writes. A host's own
#: details (or a newer version's) are shown by their name, underscores as spaces.
DETAIL_LABELS: dict[str, str] = {
    "scopes": "Permissions",
    "expires_at": "Expiry",
    "resources": "Resources",
    "rotated_from": "Rotated from",
    "replaced_by": "Replaced by",
    "works_until": "Works until",
    "reason": "Reason",
    "bulk": "Offboarding",
    "old_name": "Old name",
    "new_name": "New name",
    "old": "Before",
    "new": "After",
    "before": "Before",
    "after": "After",
    "url": "Found at",
    "source": "Reported by",
    "type": "Kind of token",
}
#: The CSV's detail columns, after :data:`CSV_HEADER`: one per detail (``old`` and
#: ``before`` share ``before``), then ``other_details``, the rest as JSON.
CSV_DETAILS: dict[str, str] = {
    "scopes": "permissions",
    "expires_at": "expiry",
    "resources": "resources",
    "rotated_from": "rotated_from",
    "replaced_by": "replaced_by",
    "works_until": "works_until",
    "reason": "reason",
    "bulk": "offboarding",
    "old_name": "old_name",
    "new_name": "new_name",
    "old": "before",
    "before": "before",
    "new": "after",
    "after": "after",
    "url": "found_at",
    "source": "reported_by",
    "type": "token_type",
}
#: Details that are a day (a time is shown without its hour).
_DAYS = frozenset({"expires_at"})
#: A policy's rules as its events keep them, in words, and what an empty one means.
_POLICY_RULES = {
    "max_lifetime_days": ("maximum lifetime", "no maximum lifetime"),
    "idle_expiry_days": ("idle expiry", "no idle expiry"),
    "allowed_permissions": ("only", "any permission"),
}


@dataclass(frozen=True)
class Detail:
    """One detail of an event in words: ``Expiry: 7 Mar 2027``, or a flag
    (``Offboarding``) when :attr:`text` is empty. A time is in :attr:`moment` too, for
    pages that show it their way; :attr:`day` says only its date matters."""

    name: str
    label: str
    text: str
    moment: dt.datetime | None = None
    day: bool = False


def describe_details(event: str, details: dict[str, Any] | None) -> list[Detail]:
    """The details of an *event* in words, in the order they were written."""
    described = []
    for name, value in (details or {}).items():
        label = DETAIL_LABELS.get(name) or str(name).replace("_", " ").capitalize()
        if name == "bulk":
            if value:
                described.append(Detail(name, label, ""))
            continue
        moment = _as_moment(value)
        if moment is not None:
            day = name in _DAYS
            described.append(Detail(name, label, day_text(moment, time=not day), moment, day))
            continue
        described.append(Detail(name, label, _in_words(event, name, value)))
    return described


def day_text(moment: dt.datetime | dt.date, *, time: bool = False) -> str:
    """A day as the pages show it, ``7 Mar 2027`` (UTC), with *time* ``7 Mar 2027, 14:05``."""
    if isinstance(moment, dt.datetime):
        moment = moment.astimezone(dt.UTC) if moment.tzinfo else moment
        if time:
            return f"{moment.day} {moment:%b %Y, %H:%M}"
    return f"{moment.day} {moment:%b %Y}"


def csv_time(moment: dt.datetime) -> str:
    """A time as the CSV writes every time: ISO 8601 in UTC, ``2027-03-07T14:05:09Z``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_details(event: str, details: dict[str, Any] | None) -> list[str]:
    """The detail cells of one CSV line: a cell per :data:`CSV_DETAILS` column, then
    what is left as JSON."""
    columns = list(dict.fromkeys(CSV_DETAILS.values()))
    cells = dict.fromkeys(columns, "")
    other: dict[str, Any] = {}
    for item in describe_details(event, details):
        column = CSV_DETAILS.get(item.name)
        if column is None:
            other[item.name] = (details or {})[item.name]
        elif item.moment is not None:
            cells[column] = csv_time(item.moment)
        else:
            cells[column] = "yes" if item.name == "bulk" else item.text
    return [*cells.values(), details_text(other)]


def _as_moment(value: Any) -> dt.datetime | None:
    """*value* when it is an ISO 8601 time (as events keep times), parsed."""
    if not isinstance(value, str) or len(value) < 16 or value[10:11] != "T":
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _in_words(event: str, name: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if name == "expires_at" and value == "never":
        return "Never"
    if name == "scopes" and value == "full access":
        return "Full access"
    if isinstance(value, str) and value in ("all", "none", "default"):
        if event == "ip_allowlist_changed" or (event == "resources_changed" and value == "all"):
            return "Any" if event == "resources_changed" else "Any address"
        return value.capitalize()
    if isinstance(value, dict):
        if set(value) <= set(_POLICY_RULES):
            return ", ".join(
                _policy_rule(rule, value[rule]) for rule in _POLICY_RULES if rule in value
            )
        return "; ".join(f"{k}: {_in_words(event, str(k), v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if not value:
            return "Any address" if event == "ip_allowlist_changed" else "None"
        return ", ".join(_in_words(event, name, v) for v in value)
    return str(value)


def _policy_rule(rule: str, value: Any) -> str:
    words, empty = _POLICY_RULES[rule]
    if value is None:
        return empty
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{words} {value:,} day{'s' if value != 1 else ''}"
    if isinstance(value, (list, tuple)):
        return f"{words} {', '.join(map(str, value)) or 'none'}"
    return f"{words} {value}"
