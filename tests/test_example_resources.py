"""The example app with a key limited to one client: every /v1 route, every MCP tool,
and the pages that choose the clients."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import bearer
from tests.docs_examples import example_app_example
from tests.pages.conftest import Browser, csrf_token, shown_secret

MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}


def _ids(app: Flask) -> dict[str, int]:
    """Client ids by name."""
    from example_app.models import Client, db

    with app.app_context():
        return {c.name: c.id for c in db.session.scalars(sa.select(Client))}


@pytest.fixture
def acme(app: Flask, make_key: Any) -> dict[str, Any]:
    """Alice's full-access keys of Acme: one limited to Wayne Enterprises, one not."""
    ids = _ids(app)
    wayne = ids["Wayne Enterprises"]
    return {
        "ids": ids,
        "wayne": wayne,
        "limited": make_key("alice@acme.test", full_access=True, resources={"client": [wayne]}),
        "unlimited": make_key("alice@acme.test", full_access=True),
    }


# -- the JSON API -------------------------------------------------------------------------

#: Every /v1 route and method this module checks with a limited key.
API_ROUTES = {
    ("/v1/clients", "GET"),
    ("/v1/invoices", "GET"),
    ("/v1/invoices", "POST"),
    ("/v1/me/permissions", "GET"),
}


def test_every_api_route_is_checked_here(app: Flask) -> None:
    routes = {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/v1/")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert routes == API_ROUTES, "a new /v1 route: check what a limited key sees there"


def test_a_limited_key_lists_only_its_clients_and_their_invoices(client: Any, acme: Any) -> None:
    limited, wayne = bearer(acme["limited"]), acme["wayne"]
    clients = client.get("/v1/clients", headers=limited).json["clients"]
    assert [c["id"] for c in clients] == [wayne]
    invoices = client.get("/v1/invoices", headers=limited).json["invoices"]
    assert len(invoices) == 2 and {i["client"]["id"] for i in invoices} == {wayne}
    everything = bearer(acme["unlimited"])
    assert len(client.get("/v1/clients", headers=everything).json["clients"]) == 2
    assert len(client.get("/v1/invoices", headers=everything).json["invoices"]) == 3


def test_a_limited_key_invoices_only_its_clients_and_learns_nothing_of_others(
    client: Any, acme: Any
) -> None:
    limited, ids = bearer(acme["limited"]), acme["ids"]
    made = client.post(
        "/v1/invoices", json={"client_id": acme["wayne"], "amount_cents": 500}, headers=limited
    )
    assert made.status_code == 201 and made.json["invoice"]["client"]["id"] == acme["wayne"]
    answers = []
    # Acme's other client, another tenant's, one that does not exist: the same answer.
    for other in (ids["Stark Industries"], ids["Initech"], 999_999):
        refused = client.post(
            "/v1/invoices", json={"client_id": other, "amount_cents": 500}, headers=limited
        )
        assert refused.status_code == 404
        answers.append(refused.json["message"].replace(str(other), "N"))
    assert answers == ["This API key can use no client N."] * 3
    stark = client.post(
        "/v1/invoices",
        json={"client_id": ids["Stark Industries"], "amount_cents": 500},
        headers=bearer(acme["unlimited"]),
    )
    assert stark.status_code == 201


def test_introspection_tells_a_key_its_clients(client: Any, acme: Any) -> None:
    from jsonschema import Draft202012Validator

    me = client.get("/v1/me/permissions", headers=bearer(acme["limited"])).json
    assert me["resources"] == {"client": [str(acme["wayne"])]}
    everything = client.get("/v1/me/permissions", headers=bearer(acme["unlimited"])).json
    assert everything["resources"] is None
    # ... and both answers are what the API's description promises.
    operation = client.get("/openapi.json").json["paths"]["/v1/me/permissions"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert "resources" in schema["properties"]
    for answer in (me, everything):
        Draft202012Validator(schema).validate(answer)


# -- the MCP server (mounted at /mcp, spoken to in JSON-RPC as the SDK's client does) --------


def _mcp(client: Any, secret: str, method: str, params: dict[str, Any]) -> Any:
    from mcp.types import CallToolResult, ListToolsResult

    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = client.post("/mcp", data=json.dumps(body), headers={**MCP_HEADERS, **bearer(secret)})
    assert response.status_code == 200, response.text
    result = response.json["result"]
    return (ListToolsResult if method == "tools/list" else CallToolResult).model_validate(result)


def _call(client: Any, secret: str, tool: str, **arguments: Any) -> Any:
    return _mcp(client, secret, "tools/call", {"name": tool, "arguments": arguments})


def test_every_mcp_tool_sees_only_the_keys_clients(client: Any, acme: Any) -> None:
    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    limited, wayne, ids = acme["limited"], acme["wayne"], acme["ids"]
    tools = {tool.name for tool in _mcp(client, limited, "tools/list", {}).tools}
    assert tools == {  # every tool: below
        "list_clients",
        "list_invoices",
        "search_invoices",
        "get_invoice",
        "create_invoice",
    }

    clients = _call(client, limited, "list_clients").structured_content["result"]
    assert [c["id"] for c in clients] == [wayne]
    invoices = _call(client, limited, "list_invoices").structured_content["result"]
    assert len(invoices) == 2 and {i["client"]["id"] for i in invoices} == {wayne}
    found = _call(client, limited, "search_invoices").structured_content["invoices"]
    assert sorted(i["id"] for i in found) == sorted(i["id"] for i in invoices)
    search = {"name": "search_invoices", "arguments": {"client": "stark"}}
    stark = _mcp(client, limited, "tools/call", search).structured_content
    assert stark == {"invoices": [], "more": False}
    everyones = _call(client, acme["unlimited"], "list_invoices").structured_content["result"]
    for invoice in everyones:
        got = _call(client, limited, "get_invoice", invoice_id=invoice["id"])
        assert got.is_error is (invoice["client"]["id"] != wayne), invoice

    made = _call(client, limited, "create_invoice", client_id=wayne, amount_cents=700)
    assert not made.is_error and made.structured_content["client"]["id"] == wayne
    for other in (ids["Stark Industries"], ids["Initech"], 999_999):
        refused = _call(client, limited, "create_invoice", client_id=other, amount_cents=700)
        assert refused.is_error
        assert refused.content[0].text.endswith(f": This API key can use no client {other}.")

    everything = acme["unlimited"]
    assert len(_call(client, everything, "list_clients").structured_content["result"]) == 2
    assert len(_call(client, everything, "list_invoices").structured_content["result"]) == 4


# -- the pages --------------------------------------------------------------------------------


def _key(app: Flask, secret: str) -> Any:
    from example_app import apikeys, db

    with app.app_context():
        key = apikeys.service.verifier.find_by_secret(secret)
        db.session.expunge(key)
        return key


def _field(app: Flask, email: str) -> str:
    """The form field of the Acme clients of *email*'s only organization."""
    from example_app.models import User, db

    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        return f"resources-{user.memberships[0].organization_id}-client"


def test_the_create_page_offers_all_clients_or_some(app: Flask, browser: Browser) -> None:
    browser.login("bob@acme.test")
    page = browser.get("/new").text
    field = _field(app, "bob@acme.test")
    assert f'name="{field}-mode" value="all" data-ak-resource-mode checked' in page
    assert "All clients" in page and "Only select clients" in page
    assert "Wayne Enterprises" in page and "Stark Industries" in page
    assert "Initech" not in page  # Globex's

    stark = _ids(app)["Stark Industries"]
    _response, secret = browser.create(
        "stark only", scopes=["client.read"], **{f"{field}-mode": "only", field: [str(stark)]}
    )
    assert _key(app, secret).resources == {"client": [str(stark)]}
    _, everything = browser.create("all", scopes=["client.read"], **{f"{field}-mode": "all"})
    assert _key(app, everything).resources is None


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["Initech"], "There is no client"),  # another tenant's client, forged into the form
        (["999999"], "There is no client &#39;999999&#39; you can choose."),
        ([], "Choose at least one client, or all of them."),
    ],
)
def test_the_create_page_refuses_forged_or_empty_choices(
    app: Flask, browser: Browser, ids: list[str], message: str
) -> None:
    from example_app import apikeys

    browser.login("bob@acme.test")
    field = _field(app, "bob@acme.test")
    chosen = [str(_ids(app)[i]) if i in _ids(app) else i for i in ids]
    data = {"name": "x", "expires": "90d", "access": "custom", "scopes": ["client.read"]}
    response = browser.submit("/new", "/new", {**data, f"{field}-mode": "only", field: chosen})
    assert response.status_code == 400
    assert message in response.text
    with app.app_context():
        assert apikeys.service.queries.list_keys() == []


def test_the_owner_changes_a_keys_clients_on_its_page(app: Flask, browser: Browser) -> None:
    browser.login("bob@acme.test")
    field, ids = _field(app, "bob@acme.test"), _ids(app)
    _response, secret = browser.create("ci", scopes=["client.read"])
    key_id = _key(app, secret).id
    page = browser.get(f"/{key_id}").text
    assert 'id="resources"' in page and "Save resources" in page
    data = {f"{field}-mode": "only", field: [str(ids["Wayne Enterprises"])]}
    saved = browser.submit(f"/{key_id}", f"/{key_id}/resources", data)
    assert saved.status_code == 302 and saved.headers["Location"].endswith("#resources")
    assert _key(app, secret).resources == {"client": [str(ids["Wayne Enterprises"])]}
    page = browser.get(f"/{key_id}").text
    assert "Resources changed" in page  # the audit event, on the key's page

    forged = {f"{field}-mode": "only", field: [str(ids["Initech"])]}
    refused = browser.submit(f"/{key_id}", f"/{key_id}/resources", forged)
    assert refused.status_code == 400 and "There is no client" in refused.text
    assert _key(app, secret).resources == {"client": [str(ids["Wayne Enterprises"])]}
    no_csrf = browser.client.post(f"/settings/api-keys/{key_id}/resources", data=forged)
    assert no_csrf.status_code == 400

    admin = Browser(app.test_client())
    admin.login("alice@acme.test")  # an admin of Acme sees the clients, cannot change them
    page = admin.get(f"/{key_id}").text
    assert "Save resources" not in page
    assert re.search(r"<dt>Clients</dt><dd>Wayne Enterprises</dd>", page)
    token = csrf_token(page)
    changed = admin.client.post(
        f"/settings/api-keys/{key_id}/resources", data={**data, "csrf_token": token}
    )
    assert changed.status_code == 403


def test_a_shown_secret_is_the_limited_key(app: Flask, browser: Browser, client: Any) -> None:
    """End to end: chosen on the page, enforced by the API."""
    browser.login("alice@acme.test")
    field, ids = _field(app, "alice@acme.test"), _ids(app)
    response = browser.submit(
        "/new",
        "/new",
        {
            "name": "wayne",
            "expires": "30d",
            "access": "full",
            f"{field}-mode": "only",
            field: [str(ids["Wayne Enterprises"])],
        },
    )
    secret = shown_secret(response.text)
    names = [c["name"] for c in client.get("/v1/clients", headers=bearer(secret)).json["clients"]]
    assert names == ["Wayne Enterprises"]


def test_the_docs_example_runs(database_url: str) -> None:
    with example_app_example("resources.md", "resources", database_url):
        pass  # the example asserts what it shows


def test_with_several_organizations_each_lists_its_own_clients(
    app: Flask, browser: Browser
) -> None:
    """One list per organization; the one chosen in the form is the one that counts."""
    from example_app.models import Membership, Organization, User, db

    with app.app_context():
        globex = db.session.scalar(sa.select(Organization).where(Organization.name == "Globex"))
        bob = db.session.scalar(sa.select(User).where(User.email == "bob@acme.test"))
        acme_id = bob.memberships[0].organization_id
        bob.memberships.append(
            Membership(organization_id=globex.id, permissions="api_key.create client.read")
        )
        db.session.commit()
        globex_id = globex.id
    ids = _ids(app)
    browser.login("bob@acme.test")
    page = browser.get("/new").text
    assert f'data-ak-resource-org="{acme_id}"' in page
    assert f'data-ak-resource-org="{globex_id}"' in page
    assert 'Clients <span class="ak-muted">in Globex</span>' in page
    acme, globex_field = f"resources-{acme_id}-client", f"resources-{globex_id}-client"
    data = {
        "name": "globex",
        "expires": "30d",
        "access": "custom",
        "scopes": ["client.read"],
        "organization": str(globex_id),
        # Acme's list, left ticked by a browser without JavaScript, does not count.
        f"{acme}-mode": "only",
        acme: [str(ids["Wayne Enterprises"])],
        f"{globex_field}-mode": "only",
        globex_field: [str(ids["Initech"])],
    }
    response = browser.submit("/new", "/new", data)
    assert response.status_code == 200, response.text
    assert _key(app, shown_secret(response.text)).resources == {"client": [str(ids["Initech"])]}
