"""The organization's audit trail (issue #14, item 2), the admin page and its CSV: what
an admin sees and who else may not, the filters as query parameters and the 400 that
refuses bad ones, the pager, the page's cost in queries, and the streamed CSV that
neutralises formulas. The data comes from tests/audit_helpers.py.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.audit_helpers import (
    ACME_SERVICE_EVENTS,
    INJECTION,
    POLICY_AT,
    seeded_fixture,  # noqa: F401 (the seeded fixture)
)
from tests.statements import recorded_statements

PAGE = "/settings/api-keys/organization/audit"
CSV = "/settings/api-keys/organization/audit.csv"
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
ROW = re.compile(r'<th scope="row" data-label="When"><time datetime="([^"]+)"')


def login(client: FlaskClient, email: str) -> FlaskClient:
    page = client.get("/login")
    token = _CSRF.search(page.text)
    assert token
    response = client.post(
        "/login",
        data={"email": email, "password": "demo-password", "csrf_token": token.group(1)},
    )
    assert response.status_code == 302
    return client


@pytest.fixture
def alice(app: Flask) -> FlaskClient:
    return login(app.test_client(), "alice@acme.test")


# -- the page -----------------------------------------------------------------------------


def test_the_admin_sees_the_trail_with_labels_people_and_headers(app, seeded, alice):
    response = alice.get(PAGE)
    assert response.status_code == 200
    text = response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert 'aria-current="page">Audit trail</a>' in text
    for words in ("Revoked", "Rotated", "Used after expiry", "IP allowlist changed"):
        assert words in text
    assert '<code class="ak-event-raw">host.exported</code>' in text
    assert "Whole organization" in text and "After:</span> maximum lifetime 90 days" in text
    assert "Bob Keller (bob@acme.test)" in text and "Alice Martin (alice@acme.test)" in text
    assert "lost laptop" in text
    assert seeded.globex_key not in text and "Globex" not in text and "globex only" not in text
    assert "Events are kept for 365 days." in text
    assert len(ROW.findall(text)) == min(50, ACME_SERVICE_EVENTS + seeded.week)


def test_only_admins_of_the_organization_see_it(app, seeded, alice):
    bob = login(app.test_client(), "bob@acme.test")
    assert bob.get(PAGE).status_code == 403
    assert bob.get(CSV).status_code == 403
    assert "Audit trail" not in bob.get("/settings/api-keys/").text
    assert alice.get(f"{PAGE}?org={seeded.globex}").status_code == 404
    assert alice.get(f"{CSV}?org={seeded.globex}").status_code == 404
    assert alice.get(f"{PAGE}?org={'9' * 30}").status_code == 404
    assert alice.get(f"{PAGE}?org={seeded.acme}").status_code == 200
    carol = login(app.test_client(), "carol@globex.test")
    text = carol.get(PAGE).text
    assert seeded.globex_key in text and seeded.export not in text
    assert app.test_client().get(PAGE).status_code in (302, 401)


def test_the_page_filters_as_asked(app, seeded, alice):
    text = alice.get(f"{PAGE}?person={seeded.alice}&role=actor").text
    assert 'value="actor" selected' in text
    assert "Laptop script" in text and "ak-event-expired-use" not in text
    text = alice.get(f"{PAGE}?event=revoked").text
    assert len(ROW.findall(text)) == 1 and "lost laptop" in text
    text = alice.get(f"{PAGE}?key={seeded.laptop}").text
    assert len(ROW.findall(text)) == 2 + 7  # created, revoked and the host's week
    day = POLICY_AT.date().isoformat()
    text = alice.get(f"{PAGE}?since={day}&until={day}").text
    assert set(ROW.findall(text)) and all(at.startswith(day) for at in ROW.findall(text))
    text = alice.get(f"{PAGE}?event=nothing.like.this").text
    assert "No events match" in text and "No event called" in text


BAD_QUERIES = [
    "since=2026-02-30",
    "since=%00",
    "until=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-01-01",
    "since=99999999999999999999",
    "event=%27%3B+DROP+TABLE+api_keys%3B--",
    "event=" + "x" * 500,
    "key=fsk_%00",
    "key=%E2%80%AEfsk_x",
    "person=99999999999999999999999999",
    "person=abc",
    "role=admin",
    "before=99999999999999999999.1",
    "after=abc",
    "before=1.99999999999999999999",
]


def test_bad_filters_answer_400_with_the_reason_never_500(app, seeded, alice):
    for query in BAD_QUERIES:
        response = alice.get(f"{PAGE}?{query}")
        assert response.status_code == 400, (query, response.status_code)
        if "%00" not in query:  # the example app refuses control characters before any view
            assert response.headers["Cache-Control"] == "no-store"
            assert 'class="ak-field-errors"' in response.text or "ak-alert-error" in response.text
        if not query.startswith(("before=", "after=")):  # the CSV has no pages
            assert alice.get(f"{CSV}?{query}").status_code == 400, query


def test_the_pager_walks_every_event(app, seeded, alice):
    app.config["APIKEYS_AUDIT_PAGE_SIZE"] = 5
    seen: list[str] = []
    url = PAGE
    for _ in range(20):
        text = alice.get(url).text
        seen += ROW.findall(text)
        older = re.search(r'rel="next" href="([^"]+)"', text)
        if older is None:
            break
        url = older.group(1).replace("&amp;", "&")
    assert len(seen) == ACME_SERVICE_EVENTS + seeded.week
    assert seen == sorted(seen, reverse=True)
    newer = re.search(r'rel="prev" href="([^"]+)"', text)
    assert newer is not None and "Newest" in text


def test_the_page_costs_the_same_queries_for_5_or_50_events(app, seeded, alice):
    app.config["APIKEYS_AUDIT_PAGE_SIZE"] = 5
    with recorded_statements() as few:
        assert alice.get(PAGE).status_code == 200
    app.config["APIKEYS_AUDIT_PAGE_SIZE"] = 50
    with recorded_statements() as many:
        assert alice.get(PAGE).status_code == 200
    assert len(many) == len(few)


def test_the_csv_streams_the_same_filters_and_neutralises_formulas(app, seeded, alice):
    response = alice.get(CSV)
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"
    assert re.fullmatch(
        r'attachment; filename="audit-acme-\d{4}-\d{2}-\d{2}\.csv"',
        response.headers["Content-Disposition"],
    )
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:3] == ["time_utc", "event", "event_name"]
    assert len(rows) - 1 == ACME_SERVICE_EVENTS + seeded.week
    created = next(r for r in rows if r[3] == seeded.formula)
    assert created[4] == "'" + INJECTION
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert not any(seeded.globex_key in cell for row in rows for cell in row)
    revoked = list(csv.DictReader(io.StringIO(alice.get(f"{CSV}?event=revoked").text)))
    assert [r["event_name"] for r in revoked] == ["revoked"]
    assert revoked[0]["by"] == "Alice Martin (alice@acme.test)"
    assert revoked[0]["key_owner"] == "Bob Keller (bob@acme.test)"
    assert revoked[0]["reason"] == "lost laptop"  # a column per detail
    assert revoked[0]["other_details"] == "" and revoked[0]["offboarding"] == ""
