"""Choosing a key's clients in headless Chromium: the script that helps, and axe-core."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect

from tests.browser.conftest import login

pytestmark = pytest.mark.browser


def test_bob_limits_a_key_to_one_client_of_the_organization_he_picks(
    app: Flask, new_page: Any, server: str, check_page: Any
) -> None:
    from example_app.models import Membership, Organization, User, db

    with app.app_context():
        globex = db.session.scalar(sa.select(Organization).where(Organization.name == "Globex"))
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        bob.memberships.append(
            Membership(organization_id=globex.id, permissions="api_key.create client.read")
        )
        db.session.commit()
    page = new_page()
    login(page, "bob@acme.test", "/settings/api-keys/new")
    resources = page.get_by_role("group", name="Resources")
    acme = resources.get_by_role("group", name="Clients in Acme")
    globex_group = resources.get_by_role("group", name="Clients in Globex")
    expect(acme).to_be_visible()
    expect(globex_group).to_be_hidden()  # the other organization's list
    check_page(page, "create-resources")

    page.get_by_label("Organization").select_option(label="Globex")
    expect(acme).to_be_hidden()
    expect(globex_group).to_be_visible()
    only = globex_group.get_by_label("Only select clients")
    expect(only).not_to_be_checked()
    globex_group.get_by_label("Initech").check()
    expect(only).to_be_checked()  # ticking a client means "only these"
    globex_group.get_by_label("All clients").check()
    expect(globex_group.get_by_label("Initech")).not_to_be_checked()
    globex_group.get_by_label("Initech").check()

    page.get_by_label("Name").fill("Initech only")
    page.get_by_label("See clients").check()
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#ak-new-key").input_value()
    answer = requests.get(
        server + "/v1/clients", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert [c["name"] for c in answer.json()["clients"]] == ["Initech"]

    page.goto("/settings/api-keys/")
    page.get_by_role("link", name="Initech only").click()
    expect(page).to_have_url(re.compile(r"/settings/api-keys/\d+$"))
    section = page.locator("#resources")
    expect(section.get_by_label("Initech")).to_be_checked()
    check_page(page, "detail-resources")
    section.get_by_label("All clients").check()
    section.get_by_role("button", name="Save resources").click()
    expect(page.get_by_text("The key's resources were saved.")).to_be_visible()
    answer = requests.get(
        server + "/v1/clients", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert len(answer.json()["clients"]) == 2  # both of Globex's
