"""The example's plans, through the creation policy: Free gets no keys (with an upgrade
link), Team gets Read-only and Full access keys only, Business gets everything."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_apikeys import RequestRefused
from tests.pages.conftest import Browser, shown_secret

PAID_PLANS = "API keys are available on paid plans."


def _user(email: str) -> Any:
    from example_app.models import User, db

    return db.session.scalar(sa.select(User).where(User.email == email))


def _keys(app: Flask) -> list[Any]:
    from example_app import apikeys

    with app.app_context():
        return list(apikeys.service.queries.list_keys())


def test_the_seed_has_an_organization_on_each_plan(app: Flask) -> None:
    from example_app.models import Organization, db

    with app.app_context():
        plans = dict(db.session.execute(sa.select(Organization.name, Organization.plan)).all())
        assert plans == {
            "Acme": "business",
            "Globex": "business",
            "Hooli": "team",
            "Bluth Company": "free",
        }
        assert _user("dana@bluth.test").permissions_in(
            db.session.scalar(
                sa.select(Organization.id).where(Organization.name == "Bluth Company")
            )
        ) >= {"api_key.create"}  # the plan refuses, not a missing permission


def test_a_free_organization_is_told_to_upgrade_on_the_key_pages(
    app: Flask, browser: Browser
) -> None:
    browser.login("dana@bluth.test")
    upgrade = f'{PAID_PLANS} <a href="/plans">Upgrade</a>'
    index = browser.get("/").text  # the list's banner
    assert upgrade in index
    assert "Create API key</a>" not in index
    page = browser.get("/new")
    assert page.status_code == 200
    # One banner with the link, and the form read-only: no field to fill, no button.
    assert page.text.count(PAID_PLANS) == 1
    assert '<a class="ak-btn ak-btn-primary" href="/plans">Upgrade</a>' in page.text
    assert '<fieldset class="ak-form-body" disabled' in page.text
    assert "Create key</button>" not in page.text
    response = browser.submit("/new", "/new", {"name": "x", "expires": "90d", "access": "read"})
    assert response.status_code == 403 and response.text.count(PAID_PLANS) == 1
    assert _keys(app) == []
    plans = browser.client.get("/plans")
    assert plans.status_code == 200 and "Bluth Company is on the Free plan." in plans.text


def test_every_link_on_the_refusal_is_this_sites_plans_page(browser: Browser) -> None:
    """The link comes from the app, never from the request: a ?next= changes nothing."""
    browser.login("dana@bluth.test")
    page = browser.get("/new?next=https://evil.test/&upgrade=//evil.test").text
    banner = re.search(r'<div class="ak-alert[^"]*ak-banner">(.*?)</div>', page, re.S)
    assert banner is not None
    assert re.findall(r'href="([^"]*)"', banner.group(1)) == ["/plans"]
    assert "evil.test" not in page


def test_a_free_organization_gets_no_key_from_the_service_or_the_cli(app: Flask) -> None:
    from example_app import apikeys

    with app.app_context(), pytest.raises(RequestRefused, match=PAID_PLANS):
        apikeys.service.keys.issue(_user("dana@bluth.test"), "x", [], full_access=True)
    result = app.test_cli_runner().invoke(
        args=["apikeys", "create", "--user", "dana@bluth.test", "--name", "x", "--full-access"]
    )
    assert result.exit_code == 1 and PAID_PLANS in result.stderr
    assert _keys(app) == []


@pytest.mark.parametrize("access", ["read", "full"])
def test_the_team_plan_allows_read_only_and_full_access(
    app: Flask, browser: Browser, access: str
) -> None:
    browser.login("erin@hooli.test")
    _response, secret = browser.create("team", access=access)
    (key,) = _keys(app)
    if access == "full":
        assert key.full_access
    else:
        assert not key.full_access
        assert set(key.scopes) == {"invoice.read", "client.read"}
    assert secret.startswith("fsk_")


def test_the_team_plan_refuses_custom_scopes_and_chosen_clients(
    app: Flask, browser: Browser
) -> None:
    from example_app import apikeys
    from example_app.models import Client, db

    browser.login("erin@hooli.test")
    page = browser.get("/new").text
    assert PAID_PLANS not in page  # the form is there: the plan refuses what is chosen
    # Said before anything is sent: "Choose permissions" and "Only select clients" are
    # locked, with why and a link to the plans; Read-only, which the plan allows, is the
    # default.
    for name, value in (("access", "custom"), ('resources-[^"]*-mode', "only")):
        radio = re.search(rf'<input[^>]*name="{name}"[^>]*value="{value}"[^>]*>', page)
        assert radio and "disabled" in radio.group(0), value
    assert page.count("is available on the Business plan.") == 2
    assert page.count('<a href="/plans">Compare plans</a>') == 2
    read = re.search(r'<input[^>]*name="access"[^>]*value="read"[^>]*>', page)
    assert read and "checked" in read.group(0) and "disabled" not in read.group(0)
    assert 'name="scopes"' not in page  # no grid of permissions to pick one by one
    custom = browser.submit(
        "/new",
        "/new",
        {"name": "x", "expires": "90d", "access": "custom", "scopes": ["invoice.read"]},
    )
    assert custom.status_code == 400
    assert "Choosing permissions one by one is available on the Business plan." in custom.text
    with app.app_context():
        erin = _user("erin@hooli.test")
        org_id = erin.memberships[0].organization_id
        client_id = db.session.scalar(sa.select(Client.id).where(Client.organization_id == org_id))
        with pytest.raises(RequestRefused, match="Limiting a key to some clients"):
            apikeys.service.keys.issue(
                erin, "x", [], full_access=True, resources={"client": [client_id]}
            )
        key = apikeys.service.keys.issue(erin, "x", [], full_access=True).key
        with pytest.raises(RequestRefused, match="Limiting a key to some clients"):
            apikeys.service.resources.set_resources(key, {"client": [client_id]}, actor=erin)
        assert key.resources is None


def test_the_business_plan_allows_custom_scopes(app: Flask, browser: Browser) -> None:
    browser.login("bob@acme.test")
    response, secret = browser.create("business", scopes=["invoice.read"])
    assert shown_secret(response.text) == secret
    (key,) = _keys(app)
    assert key.scopes == ["invoice.read"]
