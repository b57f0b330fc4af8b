"""The organization's audit trail: every key event, filtered, paged, and as CSV.

For admins (the manage permission) of the organization only; another organization's
id answers 404. Filters come in the query string, so a filtered view can be bookmarked
and shared; a filter that cannot be read answers 400 with the page and its message.
Both answers are ``Cache-Control: no-store``: an audit trail stays off shared disks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    make_response,
    render_template,
    request,
    stream_with_context,
)
from flask.typing import ResponseReturnValue

from ...db.models import utcnow
from ...service.audit_details import describe_details
from ...service.audit_filters import EVENT_LABELS, AuditFilter, AuditPage, clean_event_names
from ...service.context import Organization
from ...service.validation import RequestRefused
from .common import page_service, signed_in_user, user_label
from .organization import managed_org_or_404

#: The query-string filters, as the form names them.
FILTERS = ("person", "role", "key", "event", "since", "until")
ROLE_CHOICES = {"any": "Either role", "actor": "Did it", "owner": "Owns the key"}


@dataclass
class _Asked:
    """What an admin asked to see, as typed and as understood."""

    org: Organization
    managed: list[Organization]
    people: list[Any]
    values: dict[str, str]
    audit: AuditFilter | None = None
    error: RequestRefused | None = None
    links: dict[str, Any] = field(default_factory=dict)


def _read_request() -> _Asked:
    service, user = page_service(), signed_in_user()
    managed = service.context.managed_organizations(user)
    if not managed:
        abort(403, "You need to manage an organization to see its audit trail.")
    org = managed_org_or_404(request.args["org"]) if request.args.get("org") else managed[0]
    people = service.audit_trail.audit_people(org.id)
    if all(service.context.user_id(p) != service.context.user_id(user) for p in people):
        people.append(user)
    values = {name: request.args.get(name, "").strip()[:200] for name in FILTERS}
    values["role"] = values["role"] or "any"
    asked = _Asked(org=org, managed=managed, people=people, values=values)
    person = None
    try:
        if values["person"]:
            person = next(
                (p for p in people if str(service.context.user_id(p)) == values["person"]), None
            )
            if person is None:
                raise RequestRefused("Choose a person from the list.", field="person")
        asked.audit = service.audit_trail.audit_filter(
            org.id,
            person=person,
            role=values["role"],
            key=values["key"],
            events=values["event"],
            since=values["since"],
            until=values["until"],
        )
    except RequestRefused as exc:
        asked.error = exc
    links = {"org": org.id if len(managed) > 1 else None}
    for name in FILTERS:
        if values[name] and not (name == "role" and (values[name] == "any" or not person)):
            links[name] = values[name]
    asked.links = {k: v for k, v in links.items() if v is not None}
    return asked


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def audit() -> ResponseReturnValue:
    """The trail of one organization, newest first, a keyset page at a time."""
    service, asked = page_service(), _read_request()
    page = AuditPage(entries=[])
    if asked.audit is not None:
        try:
            page = service.audit_trail.audit_page(
                asked.audit,
                limit=int(current_app.config.get("APIKEYS_AUDIT_PAGE_SIZE") or 50),
                before=request.args.get("before") or None,
                after=request.args.get("after") or None,
            )
        except RequestRefused as exc:
            asked.error = exc
    events = list(EVENT_LABELS.items())
    chosen = asked.values["event"]
    if chosen and chosen not in EVENT_LABELS and _well_formed_event(chosen):
        events.append((chosen, chosen))
    html = render_template(
        "apikeys/audit.html",
        asked=asked,
        org=asked.org,
        managed=asked.managed,
        values=asked.values,
        error=asked.error,
        people=[(str(service.context.user_id(p)), user_label(p)) for p in asked.people],
        roles=ROLE_CHOICES,
        events=events,
        page=page,
        unknown_event=bool(chosen and chosen not in EVENT_LABELS),
        paged=bool(request.args.get("before") or request.args.get("after")),
        links=asked.links,
        retention=current_app.config.get("APIKEYS_AUDIT_RETENTION_DAYS"),
        describe=describe_details,
    )
    return _no_store(make_response(html, 400 if asked.error else 200))


def audit_csv() -> ResponseReturnValue:
    """Every event the same filters show, as CSV, streamed row by row."""
    asked = _read_request()
    if asked.error is not None or asked.audit is None:
        abort(400, asked.error.message if asked.error else "Bad filter.")
    rows = page_service().audit_trail.audit_csv(asked.audit, user_label)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", asked.org.name).strip("-").lower()[:40]
    name = f"audit-{slug or 'organization'}-{utcnow():%Y-%m-%d}.csv"
    response = Response(stream_with_context(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return _no_store(response)


def _well_formed_event(name: str) -> bool:
    try:
        return bool(clean_event_names(name))
    except RequestRefused:
        return False
