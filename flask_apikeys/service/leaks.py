"""Leak reports in GitHub's secret-scanning partner format: parse, match, revoke.

GitHub (or any scanner speaking its format) POSTs a JSON array of matches,
``[{"token", "type", "url", "source"}]``, signed by one of its keys (checked by
:mod:`flask_apikeys.leak_signatures`). This module

* parses a report, refusing anything but an array of well-typed, bounded, printable
  matches (:func:`parse_leak_report`);
* revokes every usable key a report names and answers in GitHub's feedback format
  (:class:`KeyLeaks`, a part of :class:`~flask_apikeys.KeyService`), also for
  ``flask apikeys report-leak`` (:mod:`flask_apikeys.cli_leaks`).

The endpoint is :mod:`flask_apikeys.views.leaks`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from ..db.models import APIKeyMixin, KeyStatus
from ..keys import format as keyformat
from .context import ServiceContext
from .queries import KeyQueries
from .validation import REASON_MAX_LENGTH, clean_reason
from .verify import KeyVerification

__all__ = [
    "GITHUB_REASON",
    "KeyLeaks",
    "LeakReport",
    "LeakReportRefused",
    "leak_reason",
    "parse_leak_report",
]

#: The revocation reason of a key GitHub reported (the report's URL is appended).
GITHUB_REASON = "leaked: found by GitHub secret scanning"

# Each field of a match: its name, its longest length (far above anything GitHub sends,
# far below harm), and whether it must be there.
_FIELDS = (("token", 1024, True), ("type", 200, True), ("url", 2048, False), ("source", 100, False))


class LeakReportRefused(Exception):
    """A leak report refused as a whole: nothing was changed.

    ``status`` is the HTTP status to answer, ``code`` the ``error`` of the JSON body,
    ``message`` a sentence for whoever reads the logs; ``retry_after`` is set (seconds)
    when trying again later may succeed.
    """

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


# -- the report -----------------------------------------------------------------------


@dataclass(frozen=True)
class LeakReport:
    """One match of a report: a *token* found at *url* (``""`` when GitHub gave none)."""

    token: str = field(repr=False)
    type: str
    url: str = ""
    source: str = ""

    @property
    def token_hash(self) -> str:
        """The hex SHA-256 of the token, as GitHub's feedback format wants it."""
        return hashlib.sha256(self.token.encode("utf-8")).hexdigest()

    def feedback(self, ours: bool) -> dict[str, str]:
        """This match in GitHub's feedback format: ``true_positive`` when *ours*."""
        return {
            "token_hash": self.token_hash,
            "token_type": self.type,
            "label": "true_positive" if ours else "false_positive",
        }


def _refused(message: str) -> LeakReportRefused:
    return LeakReportRefused(400, "invalid_report", message)


def _field(item: dict[str, Any], name: str, limit: int, required: bool, number: int) -> str:
    value = item.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _refused(f"Match {number}: '{name}' must be a string.")
    if not value and required:
        raise _refused(f"Match {number}: '{name}' is empty.")
    if len(value) > limit:
        raise _refused(f"Match {number}: '{name}' is longer than {limit} characters.")
    if not value.isprintable():  # NUL and every other control character
        raise _refused(f"Match {number}: '{name}' contains control characters.")
    return value


def parse_leak_report(body: bytes) -> list[LeakReport]:
    """The matches of a report *body*, or :class:`LeakReportRefused` (400) saying what is
    wrong with it. All or nothing: one bad match refuses the whole report."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise _refused("The report is not UTF-8.") from None
    except (ValueError, RecursionError):
        raise _refused("The report is not valid JSON.") from None
    if not isinstance(data, list):
        raise _refused("The report must be a JSON array of matches.")
    reports = []
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise _refused(f"Match {number} is not an object.")
        token, type_, url, source = (_field(item, *spec, number) for spec in _FIELDS)
        reports.append(LeakReport(token=token, type=type_, url=url, source=source))
    return reports


# -- revoking -----------------------------------------------------------------------


def leak_reason(reason: str | None = None, url: str | None = None) -> str:
    """The revocation reason of a leaked key: *reason* (default ``leaked``) and where
    the key was found, shortened to fit the column."""
    text = clean_reason(reason) or "leaked"
    if url:
        text = f"{text} at {url}"
    if len(text) > REASON_MAX_LENGTH:
        text = text[: REASON_MAX_LENGTH - 1] + "…"
    return text


class KeyLeaks:
    """Leaked keys (GitHub's reports, the CLI), revoked at once: ``service.leaks``."""

    def __init__(
        self, context: ServiceContext, queries: KeyQueries, verifier: KeyVerification
    ) -> None:
        self.context = context
        self.queries = queries
        self.verifier = verifier

    def find_leaked_key(self, token: str) -> APIKeyMixin | None:
        """The key whose secret is *token*, usable or not; ``None`` when it is none of
        ours (no query for text that is not a well-formed key with our prefix)."""
        if not keyformat.is_well_formed(token, self.context.prefix):
            return None
        return self.verifier.find_by_secret(token)

    def revoke_leaked(
        self,
        key: APIKeyMixin,
        *,
        url: str | None = None,
        source: str | None = None,
        token_type: str | None = None,
        reason: str | None = None,
        actor: Any = None,
        ip: str | None = None,
    ) -> bool:
        """Revoke *key*, whose secret leaked, now; ``False`` if it was no longer usable.

        One transaction writes the revocation (reason: *reason*, default ``leaked``, and
        *url*), a ``revoked`` and a ``leaked`` audit event (with *url*, *source* and
        *token_type*); then ``key_revoked`` and ``key_leaked`` are sent. A key already
        revoked or expired is left as it is and nobody is told again, also when two
        reports race: the revocation is one conditional UPDATE, which only one wins.
        """
        self.context.refuse_unless_may_change(key, actor)
        url, source, token_type = url or None, source or None, token_type or None
        reason = leak_reason(reason, url)
        now = self.context.clock()
        if key.status_at(now) != KeyStatus.ACTIVE:
            return False
        APIKey = self.context.models.APIKey
        actor_id = self.context.actor_id(actor)
        result = self.context.session.execute(
            sa.update(APIKey)
            .where(APIKey.id == key.id, self.queries.usable_clause(now))
            .values(revoked_at=now, revoked_reason=reason, revoked_by_id=actor_id)
            .execution_options(synchronize_session=False)
        )
        if cast("sa.CursorResult[Any]", result).rowcount != 1:
            self.context.session.commit()  # revoked elsewhere a moment ago: end our transaction
            return False
        for name, value in (
            ("revoked_at", now),
            ("revoked_reason", reason),
            ("revoked_by_id", actor_id),
        ):
            set_committed_value(key, name, value)
        self.context.record_event(key, "revoked", actor, ip, now, reason=reason)
        self.context.record_event(
            key,
            "leaked",
            actor,
            ip,
            now,
            url=url,
            source=source,
            type=token_type,
        )
        self.context.session.commit()
        self.context.emit("revoked", key, actor=actor, reason=reason)
        self.context.emit(
            "leaked", key, actor=actor, url=url, source=source, token_type=token_type, reason=reason
        )
        return True

    def handle_leak_report(
        self, reports: Iterable[LeakReport], *, ip: str | None = None
    ) -> list[dict[str, str]]:
        """Revoke every usable key *reports* name; return GitHub's feedback, one entry
        per match in order: ``true_positive`` for a key of ours (also one revoked
        already, so a report delivered twice gets the same answer), else
        ``false_positive``."""
        feedback = []
        ours: dict[str, bool] = {}
        for report in reports:
            if report.token not in ours:
                key = self.find_leaked_key(report.token)
                ours[report.token] = key is not None
                if key is not None:
                    self.revoke_leaked(
                        key,
                        url=report.url,
                        source=report.source,
                        token_type=report.type,
                        reason=GITHUB_REASON,
                        ip=ip,
                    )
            feedback.append(report.feedback(ours[report.token]))
        return feedback
