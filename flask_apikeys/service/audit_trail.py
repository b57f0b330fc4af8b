"""An organization's audit trail: filter its key events, page through them, export, prune.

Every query names one organization (``organization_id`` on the events, copied
from the key when the event was written) and walks the ``(organization_id, at)`` index
newest first; pages are keyset pages (a cursor of the last row's time and id), so a page
far back costs what the first one does. Whoever calls decides who may see which
organization: pages ask :meth:`~flask_apikeys.KeyService.can_manage_organization`.
What people type to filter is checked (:mod:`~flask_apikeys.audit_filters`) and refused
with a :class:`RequestRefused` naming the field, never passed on as it came.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from ..db.models import APIKeyMixin
from .audit_details import CSV_DETAILS, csv_details, csv_time
from .audit_filters import (
    CSV_HEADER,
    ROLES,
    AuditEntry,
    AuditFilter,
    AuditPage,
    clean_display_prefix,
    clean_event_names,
    csv_cell,
    parse_cursor,
    parse_moment,
)
from .context import ServiceContext
from .queries import KeyQueries, KeySelect
from .validation import RequestRefused

__all__ = ["AuditTrail"]


class AuditTrail:
    """The audit-trail part of :class:`~flask_apikeys.KeyService`."""

    def __init__(self, context: ServiceContext, queries: KeyQueries) -> None:
        self.context = context
        self.queries = queries

    def audit_filter(
        self,
        organization_id: Any,
        *,
        person: Any = None,
        role: str = "any",
        key: str | None = None,
        events: Iterable[str] | str = (),
        since: str | dt.datetime | None = None,
        until: str | dt.datetime | None = None,
    ) -> AuditFilter:
        """Check what someone asked to see of *organization_id*'s events.

        *person* is a user (matched as the one who acted, the key's owner, or either:
        *role* ``"actor"``, ``"owner"`` or ``"any"``); *key* a display prefix of a key
        of the organization; *events* event names; *since* and *until* what
        :func:`parse_moment` reads (*until* includes the day it names). Raises
        :class:`RequestRefused` naming the field at fault.
        """
        org = self.context.models.coerce_organization_id_or_none(organization_id)
        if org is None or not _storable(org):
            raise RequestRefused("Not an organization id.", field="org")
        if role not in ROLES:
            raise RequestRefused("Match the person as actor, owner or either.", field="role")
        cleaned = clean_event_names(events)
        start = parse_moment(since, field="since")
        stop = parse_moment(until, end=True, field="until")
        if start is not None and stop is not None and start >= stop:
            raise RequestRefused("The start must be before the end.", field="until")
        found = self.audit_key(org, key) if key and key.strip() else None
        return AuditFilter(
            organization_id=org,
            person_id=self.context.user_id(person) if person is not None else None,
            role=role,
            key_id=found.id if found is not None else None,
            events=cleaned,
            since=start,
            until=stop,
        )

    def audit_key(self, organization_id: Any, display_prefix: str) -> APIKeyMixin:
        """The key of *organization_id* shown as *display_prefix* (a trailing ``…`` is
        fine), or :class:`RequestRefused` naming the field ``key``."""
        text = clean_display_prefix(display_prefix)
        APIKey = self.context.models.APIKey
        key = self.context.session.execute(
            sa.select(APIKey).where(
                APIKey.display_prefix == text, APIKey.organization_id == organization_id
            )
        ).scalar_one_or_none()
        if key is None:
            raise RequestRefused(f"No key {text} in this organization.", field="key")
        return key

    def audit_people(self, organization_id: Any) -> list[Any]:
        """Users who own, created, revoked or restricted a key of *organization_id*:
        the people a person filter offers, from the (small) keys table."""
        APIKey, User = self.context.models.APIKey, self.context.models.User
        org = self.context.models.coerce_organization_id_or_none(organization_id)
        columns = (
            APIKey.owner_id,
            APIKey.created_by_id,
            APIKey.revoked_by_id,
            APIKey.ip_allowlist_set_by_id,
            APIKey.rate_limit_set_by_id,
        )
        # One pass over the organization's keys (their few distinct combinations of
        # people), then one SELECT of those people.
        found = self.context.session.execute(
            sa.select(*columns).where(APIKey.organization_id == org).distinct()
        )
        ids = {person for row in found for person in row if person is not None}
        if not ids:
            return []
        user_pk = getattr(User, self.context.user_pk)
        stmt = sa.select(User).where(user_pk.in_(ids)).order_by(user_pk)
        return list(self.context.session.execute(stmt).unique().scalars())

    def audit_query(self, audit: AuditFilter) -> KeySelect:
        """The SELECT of *audit*'s events with their key, newest first (unpaginated)."""
        Event, APIKey = self.context.models.APIKeyEvent, self.context.models.APIKey
        stmt = (
            sa.select(
                Event.id,
                Event.at,
                Event.event,
                Event.ip,
                Event.details,
                Event.key_id,
                Event.actor_id,
                APIKey.display_prefix,
                APIKey.name,
                APIKey.owner_id,
            )
            .outerjoin(APIKey, APIKey.id == Event.key_id)
            .where(Event.organization_id == audit.organization_id)
        )
        if audit.key_id is not None:
            stmt = stmt.where(Event.key_id == audit.key_id)
        if audit.events:
            stmt = stmt.where(Event.event.in_(audit.events))
        if audit.since is not None:
            stmt = stmt.where(Event.at >= audit.since)
        if audit.until is not None:
            stmt = stmt.where(Event.at < audit.until)
        if audit.person_id is not None:
            by, owns = Event.actor_id == audit.person_id, APIKey.owner_id == audit.person_id
            stmt = stmt.where({"actor": by, "owner": owns}.get(audit.role, sa.or_(by, owns)))
        return stmt.order_by(Event.at.desc(), Event.id.desc())

    def audit_page(
        self,
        audit: AuditFilter,
        *,
        limit: int = 50,
        before: str | None = None,
        after: str | None = None,
    ) -> AuditPage:
        """Up to *limit* events of *audit*, newest first: the newest ones, those
        older than the cursor *before*, or those newer than the cursor *after*."""
        Event = self.context.models.APIKeyEvent
        limit = max(1, min(int(limit), 1000))
        stmt = self.audit_query(audit)
        if before:
            at, id_ = parse_cursor(before, "before")
            stmt = stmt.where(
                Event.at <= at, sa.or_(Event.at < at, sa.and_(Event.at == at, Event.id < id_))
            )
        elif after:
            at, id_ = parse_cursor(after, "after")
            stmt = (
                stmt.where(
                    Event.at >= at, sa.or_(Event.at > at, sa.and_(Event.at == at, Event.id > id_))
                )
                .order_by(None)
                .order_by(Event.at.asc(), Event.id.asc())
            )
        rows = list(self.context.session.execute(stmt.limit(limit + 1)))
        more = len(rows) > limit
        if after and not more:  # back at the newest: show a whole first page
            return self.audit_page(audit, limit=limit)
        rows = rows[:limit]
        if after:
            rows.reverse()
        entries = self._entries(rows, {})
        if not entries:
            return AuditPage(entries=[])
        # Paging back from a newer page: older rows exist (the cursor's, at least);
        # paging on from an older one: newer rows exist.
        older = entries[-1].cursor if more or after else None
        newer = entries[0].cursor if before or after else None
        return AuditPage(entries=entries, older=older, newer=newer)

    def iter_audit(
        self, audit: AuditFilter, *, batch_size: int = 500
    ) -> Generator[AuditEntry, None, None]:
        """Every event of *audit*, newest first, read *batch_size* rows at a time
        (a server-side cursor where the driver has one) for exports of any size."""
        people: dict[Any, Any] = {}
        result = self.context.session.execute(
            self.audit_query(audit).execution_options(yield_per=batch_size)
        )
        try:
            for rows in result.partitions():
                yield from self._entries(rows, people)
                if len(people) > 10_000:
                    people.clear()
        finally:
            result.close()

    def audit_csv(
        self, audit: AuditFilter, user_label: Callable[[Any], str] = str
    ) -> Iterator[str]:
        """The CSV of *audit*'s events, a header line then one line per event: its
        time (ISO 8601, UTC), what happened, to which key, by whom, from where, then a
        column per detail (:data:`~flask_apikeys.service.audit_details.CSV_DETAILS`)
        and ``other_details`` (JSON).

        Cells that start like a formula (``=``, ``+``, ``-``, ``@``) are prefixed with
        ``'`` so spreadsheets show them as text. *user_label* names the people
        (the actor is empty for operators).
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")

        def line(cells: Sequence[Any]) -> str:
            writer.writerow([csv_cell(c) for c in cells])
            text = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            return text

        yield line([*CSV_HEADER, *dict.fromkeys(CSV_DETAILS.values()), "other_details"])
        for entry in self.iter_audit(audit):
            yield line(
                [
                    csv_time(entry.at),
                    entry.label,
                    entry.event,
                    entry.key_prefix,
                    entry.key_name,
                    user_label(entry.owner) if entry.owner is not None else "",
                    user_label(entry.actor) if entry.actor is not None else "",
                    entry.ip,
                    *csv_details(entry.event, entry.details),
                ]
            )

    def prune_events(
        self,
        before: dt.datetime,
        *,
        batch_size: int = 1000,
        dry_run: bool = False,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Delete every event older than *before*, *batch_size* at a time, each batch
        in its own transaction (short locks; a stop halfway keeps what is done).
        Returns how many went (or would go, with *dry_run*)."""
        Event = self.context.models.APIKeyEvent
        if before.tzinfo is None:
            raise RequestRefused("Give the time a time zone.")
        old = Event.at < before
        if dry_run:
            return int(
                self.context.session.execute(sa.select(sa.func.count()).where(old)).scalar_one()
            )
        batch_size = max(1, int(batch_size))
        total = 0
        while True:
            ids = list(
                self.context.session.scalars(
                    sa.select(Event.id).where(old).order_by(Event.id).limit(batch_size)
                )
            )
            if not ids:
                break
            self.context.session.execute(sa.delete(Event).where(Event.id.in_(ids)))
            self.context.session.commit()
            total += len(ids)
            if on_batch is not None:
                on_batch(total)
            if len(ids) < batch_size:
                break
        return total

    def _entries(self, rows: Iterable[Any], people: dict[Any, Any]) -> list[AuditEntry]:
        rows = list(rows)
        wanted = {r.actor_id for r in rows} | {r.owner_id for r in rows}
        self._load_people(wanted - set(people) - {None}, people)
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                event=r.event,
                ip=r.ip,
                details=dict(r.details or {}),
                key_id=r.key_id,
                key_prefix=r.display_prefix,
                key_name=r.name,
                actor_id=r.actor_id,
                actor=people.get(r.actor_id),
                owner_id=r.owner_id,
                owner=people.get(r.owner_id),
            )
            for r in rows
        ]

    def _load_people(self, ids: Collection[Any], people: dict[Any, Any]) -> None:
        if not ids:
            return
        User = self.context.models.User
        user_pk = getattr(User, self.context.user_pk)
        for user in (
            self.context.session.execute(sa.select(User).where(user_pk.in_(ids))).unique().scalars()
        ):
            people[self.context.user_id(user)] = user


def _storable(value: Any) -> bool:
    """Whether an id fits a column: a 64-bit integer, or a short printable string."""
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, str):
        return len(value) <= 64 and value.isprintable()
    return True
