"""What a client controls never reaches the database unchecked: forwarded addresses,
NUL bytes in reasons and searches, absurd dates. (Found by scripts/fuzz.)"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from flask_apikeys import RequestRefused, parse_expiry
from flask_apikeys.keys.network import storable_address
from tests.conftest import bearer


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("demo-pas\x00\x00sword", None),
        ("1" * 300, None),
        ("", None),
        (None, None),
    ],
)
def test_only_real_addresses_are_stored(raw: Any, stored: Any) -> None:
    assert storable_address(raw) == stored


def test_an_expiry_date_near_the_end_of_the_calendar_is_refused() -> None:
    with pytest.raises(RequestRefused, match="before the year 9000"):
        parse_expiry("9999-12-31")


def test_forged_addresses_and_nul_bytes_write_nothing_broken(
    app: Any, client: Any, make_key: Any
) -> None:
    from example_app import apikeys, db
    from example_app.models import User

    secret = make_key("bob@acme.test", ["client.read"])
    forged = {"REMOTE_ADDR": "demo-pas\x00\x00sword"}  # what ProxyFix passes on as-is
    assert client.get("/v1/clients", headers=bearer(secret), environ_base=forged).status_code == 200
    assert apikeys.flush_usage(app) >= 1  # the flush goes through
    with app.app_context():
        alice = db.session.scalar(sa.select(User).where(User.email == "alice@acme.test"))
        key = apikeys.service.queries.list_keys(
            owner=db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        )[0]
        assert key.usage_count >= 1 and key.last_used_ip is None
        with pytest.raises(RequestRefused, match="cannot be shown"):
            apikeys.service.keys.revoke(key, actor=alice, reason="left\x00")
        apikeys.service.keys.revoke(key, actor=alice, reason="left", ip="x\x00y")
        assert [e.ip for e in apikeys.service.queries.events(key) if e.event == "revoked"] == [None]
        found = apikeys.service.queries.list_keys(
            organization_id=key.organization_id, search="te\x00st"
        )
        assert [k.id for k in found] == [key.id]  # "test key": the NUL is left out


# -- integers of any length in the pages' forms (issue #21) ------------------------------

HUGE_NUMBERS = ["9" * 309, "-" + "9" * 309, "9" * 5000, "1e309", "1_000", "+7", " 12 "]


def test_a_policy_of_any_integer_is_a_form_error_never_a_500(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.pages.conftest import Browser, csrf_token

    app.config["PROPAGATE_EXCEPTIONS"] = False
    alice = Browser(app.test_client())
    alice.login("alice@acme.test")
    page = alice.get("/organization/1/policy")
    assert 'type="number"' in page.text and 'min="1"' in page.text  # still drawn as before
    token = csrf_token(page.text)
    for value in HUGE_NUMBERS[:4]:
        for field in ("max_lifetime_days", "idle_expiry_days"):
            response = alice.client.post(
                "/settings/api-keys/organization/1/policy",
                data={field: value, "csrf_token": token},
            )
            assert response.status_code == 400, (field, value[:12])
            assert "Between 1 and" in response.text or "Not a valid integer" in response.text
    saved = alice.client.post(
        "/settings/api-keys/organization/1/policy",
        data={"max_lifetime_days": "30", "idle_expiry_days": " 12 ", "csrf_token": token},
    )
    assert saved.status_code == 302
    here = threading.get_ident()  # not the usage flusher's thread: the requests'
    assert not [
        r for r in caplog.records if (r.exc_info or r.levelno >= logging.ERROR) and r.thread == here
    ]


def test_the_days_range_takes_integers_of_any_size() -> None:
    from wtforms.validators import ValidationError

    from flask_apikeys.web.pages.policy import WholeNumberRange

    check = WholeNumberRange(1, 3650, "Between 1 and 3650 days.")
    assert check.field_flags == {"min": 1, "max": 3650}

    class Field:
        data: Any = None

    field = Field()
    for good in (1, 3650, 12):
        field.data = good
        check(None, field)
    for bad in (0, 3651, 10**309, -(10**309), None, True, 1.5, "12"):
        field.data = bad
        with pytest.raises(ValidationError, match="Between 1 and 3650"):
            check(None, field)


# -- a JSON body is never a form's data (issue #21) --------------------------------------


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "body",
    [b"[1]", b'"x"', b"{", b"[" * 1100 + b"]" * 1100, b'{"name": "x", "csrf_token": "t"}'],
)
def test_a_browser_form_never_reads_a_json_body(body: bytes) -> None:
    """Flask-WTF's own FlaskForm reads ``request.get_json()`` when no form field came; a
    BrowserForm takes the form fields only, with or without the 415 hook in front."""
    from flask import Flask
    from wtforms import StringField

    from flask_apikeys.web.forms import BrowserForm, posted_form_data

    class NameForm(BrowserForm):
        name = StringField()

    app = Flask(__name__)
    app.config.update(SECRET_KEY="x", WTF_CSRF_ENABLED=False)
    with app.test_request_context("/", method="POST", data=body, content_type="application/json"):
        assert posted_form_data() is None
        form = NameForm()
        assert form.is_submitted() and form.name.data is None
        assert not form.validate() or form.name.data is None
    with app.test_request_context("/", method="POST", data={"name": "x"}):
        assert NameForm().name.data == "x"  # a form post is read as ever
    with app.test_request_context("/", method="POST", data={"name": "x"}):
        assert NameForm(formdata=None).name.data is None  # formdata= as in WTForms
    with app.test_request_context("/?name=y"):
        assert NameForm().name.data is None  # a GET reads nothing
