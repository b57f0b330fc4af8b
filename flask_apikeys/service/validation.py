"""Checks of what people type: names, expiries, durations, rate limits, networks.

Each function returns the cleaned value or raises :class:`RequestRefused`
with a sentence for the person who typed it (``field`` names the form field).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import unicodedata
from collections.abc import Iterable

from ..db.models import utcnow

__all__ = [
    "NAME_MAX_LENGTH",
    "REASON_MAX_LENGTH",
    "RequestRefused",
    "clean_ip_allowlist",
    "clean_name",
    "clean_rate_limit",
    "clean_reason",
    "parse_duration",
    "parse_expiry",
]

NAME_MAX_LENGTH = 100
REASON_MAX_LENGTH = 200


class RequestRefused(Exception):
    """A request to create or change a key was refused; the message says why.

    The message is written for the person who asked, so pages and the CLI show it
    as it is. ``field`` names the form field at fault, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


_EXPIRY_SHORTCUTS = {"30d": 30, "90d": 90, "1y": 365}
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def parse_expiry(text: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """Turn ``30d``, ``90d``, ``1y``, ``YYYY-MM-DD`` or ``never`` into an expiry time.

    A date means "valid through that day": the key expires at the following
    midnight UTC. ``never`` gives ``None``. Anything else raises :class:`RequestRefused`.
    """
    now = now or utcnow()
    value = text.strip().lower()
    if value == "never":
        return None
    if value in _EXPIRY_SHORTCUTS:
        return now + dt.timedelta(days=_EXPIRY_SHORTCUTS[value])
    if _DATE_RE.match(value):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise RequestRefused(f"{text!r} is not a valid date.", field="expires") from None
        if day <= now.date():
            raise RequestRefused("The expiry date must be after today.", field="expires")
        if day >= dt.date(9000, 1, 1):  # beyond any real key's life, and near date.max
            raise RequestRefused("Choose an expiry date before the year 9000.", field="expires")
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    raise RequestRefused(
        f"Unknown expiry {text!r}: use 30d, 90d, 1y, a date (YYYY-MM-DD) or never.",
        field="expires",
    )


_DURATION_RE = re.compile(r"(\d{1,6})\s*([smhd])\Z")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> dt.timedelta:
    """Turn ``now``, ``0``, ``90s``, ``30m``, ``1h``, ``24h`` or ``7d`` into a timedelta."""
    value = text.strip().lower()
    if value in {"now", "0"}:
        return dt.timedelta(0)
    match = _DURATION_RE.match(value)
    if match is None:
        raise RequestRefused(
            f"Unknown duration {text!r}: use now, or a number with s, m, h or d (e.g. 1h, 7d).",
            field="grace",
        )
    amount, unit = match.groups()
    duration = dt.timedelta(**{_DURATION_UNITS[unit]: int(amount)})
    if duration > dt.timedelta(days=365):
        raise RequestRefused("A grace period can be at most a year.", field="grace")
    return duration


def clean_rate_limit(value: str | None) -> str | None:
    """Check a rate limit in the ``limits`` notation (``100/minute``, ``10 per second``)."""
    if value is None or not str(value).strip():
        return None
    from limits import parse_many

    text = " ".join(str(value).split())
    try:
        items = parse_many(text)
    except ValueError:
        items = []
    if not items or len(text) > 64:
        raise RequestRefused(
            f"{text[:40]!r} is not a rate limit: write e.g. 100/minute or 5000/day.",
            field="rate_limit",
        )
    return text


def clean_ip_allowlist(networks: Iterable[str] | str | None) -> list[str] | None:
    """Check CIDRs (IPv4 or IPv6; a bare address means just that address)."""
    if networks is None:
        return None
    items: list[tuple[int, str]]
    if isinstance(networks, str):  # lines, or items separated by commas or spaces
        lines = networks.splitlines()
        items = [
            (n, item) for n, line in enumerate(lines, 1) for item in line.replace(",", " ").split()
        ]
        numbered = len(lines) > 1
    else:
        items, numbered = [(0, item) for item in networks], False
    cleaned: list[str] = []
    bad: list[str] = []
    for line, item in items:
        item = item.strip()
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            bad.append(f"line {line} ({item[:50]!r})" if numbered else repr(item[:50]))
            continue
        if str(network) not in cleaned:
            cleaned.append(str(network))
    if bad:  # every one of them, so that one round of fixes is enough
        shown = bad[:10] + ([f"{len(bad) - 10} more"] if len(bad) > 10 else [])
        named = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
        named = named[:1].upper() + named[1:]
        verb = (
            "is not an IP address or network"
            if len(bad) == 1
            else "are not IP addresses or networks"
        )
        raise RequestRefused(f"{named} {verb} (e.g. 203.0.113.0/24).", field="ip_allowlist")
    if len(cleaned) > 100:
        raise RequestRefused("At most 100 networks per key.", field="ip_allowlist")
    return cleaned or None


def clean_name(name: str) -> str:
    """Trim *name* and check it is a printable, non-empty, bounded key name."""
    if not isinstance(name, str):
        raise RequestRefused("Give the key a name.", field="name")
    name = " ".join(name.split())
    if not name:
        raise RequestRefused("Give the key a name.", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise RequestRefused(f"The name can be at most {NAME_MAX_LENGTH} characters.", field="name")
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in name):
        raise RequestRefused("The name contains characters that cannot be shown.", field="name")
    return name


def clean_reason(reason: str | None) -> str | None:
    """Collapse whitespace in a revocation reason; ``None`` when empty."""
    if reason is None:
        return None
    reason = " ".join(str(reason).split())
    if not reason.isprintable():
        raise RequestRefused("The reason contains characters that cannot be shown.", field="reason")
    if len(reason) > REASON_MAX_LENGTH:
        raise RequestRefused(
            f"The reason can be at most {REASON_MAX_LENGTH} characters.", field="reason"
        )
    return reason or None


def check_expiry(
    expires_at: dt.datetime | None, now: dt.datetime, max_lifetime: dt.timedelta | None
) -> None:
    """Refuse an expiry in the past, without a time zone, or past *max_lifetime*."""
    if expires_at is None:
        if max_lifetime is not None:
            raise RequestRefused(
                f"Keys must expire within {max_lifetime.days} days.", field="expires"
            )
        return
    if expires_at.tzinfo is None:
        raise RequestRefused("The expiry needs a time zone.", field="expires")
    if expires_at <= now:
        raise RequestRefused("The expiry must be in the future.", field="expires")
    if max_lifetime is not None and expires_at > now + max_lifetime + dt.timedelta(days=1):
        raise RequestRefused(f"Keys must expire within {max_lifetime.days} days.", field="expires")
