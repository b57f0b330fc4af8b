"""Organization policies for people: the policy page (admins only, CSRF, bad input),
the create form's allowed expiries, ``flask apikeys policy``, and the docs' examples."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.pages.conftest import PREFIX, Browser
from tests.policy_helpers import key_service, org_id_of, policy_events_of, set_rules, user_named

# -- the page ---------------------------------------------------------------------------


def test_the_organization_page_links_to_the_policy_page(alice: Browser) -> None:
    page = alice.get("/organization")
    assert f'href="{PREFIX}/organization/' in page.text and "/policy" in page.text


def test_only_admins_of_the_organization_see_its_policy_page(app: Flask, bob: Browser) -> None:
    with app.app_context():
        acme, globex = org_id_of("Acme"), org_id_of("Globex")
    assert bob.get(f"/organization/{acme}/policy").status_code in (403, 404)
    carol = Browser(app.test_client())
    carol.login("carol@globex.test")
    assert carol.get(f"/organization/{acme}/policy").status_code == 404
    assert carol.get(f"/organization/{globex}/policy").status_code == 200
    assert carol.get("/organization/nope/policy").status_code == 404


def test_an_admin_sets_the_policy_on_its_page(app: Flask, alice: Browser, make_key: Any) -> None:
    with app.app_context():
        acme = org_id_of("Acme")
    make_key("bob@acme.test", ["client.read"], name="Old forever key", expires_at=None)
    path = f"/organization/{acme}/policy"
    page = alice.get(path)
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.text and 'value="invoice.write"' in page.text
    assert 'value="api_key.manage"' not in page.text  # keys can never hold it anyway
    response = alice.submit(
        path,
        path,
        {
            "max_lifetime_days": "30",
            "idle_expiry_days": "",
            "limit_permissions": "y",
            "allowed_permissions": ["invoice.read", "client.read"],
        },
    )
    assert response.status_code == 302
    with app.app_context():
        rules = key_service().policies.policy_of(acme).rules()
    assert rules == {
        "max_lifetime_days": 30,
        "idle_expiry_days": None,
        "allowed_permissions": ["client.read", "invoice.read"],
    }
    page = alice.get(path).text
    assert "Saved the key policy of Acme." in page
    assert 'value="30"' in page
    assert "Old forever key" in page  # outlives the new maximum
    assert "maximum lifetime 30 days" in page  # the change, in the page's history
    (event,) = policy_events_of(app)
    assert event[0] is None and event[2]["after"]["max_lifetime_days"] == 30


def test_the_policy_form_refuses_bad_input_and_posts_without_a_token(
    app: Flask, alice: Browser
) -> None:
    with app.app_context():
        acme = org_id_of("Acme")
    path = f"/organization/{acme}/policy"
    response = alice.submit(path, path, {"max_lifetime_days": "-3"})
    assert response.status_code == 400
    assert "Between 1 and 3650 days." in response.text
    response = alice.submit(path, path, {"max_lifetime_days": "ninety"})
    assert response.status_code == 400
    response = alice.submit(path, path, {"limit_permissions": "y"})
    assert response.status_code == 400
    assert "Allow at least one permission" in response.text
    forged = alice.client.post(PREFIX + path, data={"max_lifetime_days": "1"})
    assert forged.status_code == 400
    assert policy_events_of(app) == []


def test_the_create_form_locks_what_the_organization_refuses(app: Flask, bob: Browser) -> None:
    set_rules(app, max_lifetime_days=30, allowed_permissions=["client.read"])
    page = bob.get("/new").text
    assert re.search(r'<input[^>]*checked[^>]*value="30d"', page)  # the default: allowed
    for longer in ("90d", "1y", "never"):  # shown, locked, with why
        tag = re.search(rf'<input[^>]*value="{longer}"[^>]*>', page)
        assert tag and "disabled" in tag.group(0), longer
    assert "Acme\u2019s key policy: keys expire within 30 days." in page
    assert 'value="invoice.read"' in page and 'id="scope-invoice-read"' in page
    tag = page[page.rindex("<input", 0, page.index('id="scope-invoice-read"')) :]
    assert "disabled" in tag[: tag.index(">")]  # not grantable in this organization
    # A forged POST with a longer expiry, or a disallowed permission, is refused.
    for data, message in (
        ({"expires": "never"}, "This organization&#39;s keys must expire within 30 days."),
        ({"expires": "1y"}, "This organization&#39;s keys must expire within 30 days."),
        ({"expires": "forever"}, "Unknown expiry"),
        ({"scopes": ["invoice.read"]}, "policy does not allow keys to hold &#39;invoice.read&#39;"),
    ):
        form = {"name": "x", "access": "custom", "expires": "30d", "scopes": ["client.read"]}
        response = bob.submit("/new", "/new", {**form, **data})
        assert response.status_code == 400, data
        assert "fsk_" not in response.text
        assert message in response.text
    response, secret = bob.create("fine", expires="30d", scopes=["client.read"])
    assert secret.startswith("fsk_")


# -- the command line -------------------------------------------------------------------


def _cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["apikeys", "policy", *args])


def test_the_cli_shows_sets_and_clears_a_policy(app: Flask, make_key: Any) -> None:
    with app.app_context():
        acme = str(org_id_of("Acme"))
    make_key("bob@acme.test", ["client.read"], name="forever", expires_at=None)
    result = _cli(app, "show", "--org", acme)
    assert result.exit_code == 0, result.output
    assert "Max lifetime: no limit" in result.stdout and "Permissions:  any" in result.stdout
    result = _cli(
        app,
        *("set", "--org", acme, "--max-lifetime", "90", "--idle-expiry", "30"),
        *("--allow", "invoice.read", "--allow", "client.read"),
    )
    assert result.exit_code == 0, result.output
    assert "Changed the key policy" in result.stderr
    assert "Max lifetime: 90 days" in result.stdout
    assert "Permissions:  client.read, invoice.read" in result.stdout
    assert "forever" in result.stdout  # outlives the maximum
    shown = json.loads(_cli(app, "show", "--org", acme, "--json").stdout)
    assert shown["idle_expiry_days"] == 30 and len(shown["keys_outliving_max_lifetime"]) == 1
    result = _cli(app, "set", "--org", acme, "--clear-allow", "--clear-idle-expiry")
    assert result.exit_code == 0, result.output
    shown = json.loads(_cli(app, "show", "--org", acme, "--json").stdout)
    assert (shown["max_lifetime_days"], shown["idle_expiry_days"]) == (90, None)
    assert shown["allowed_permissions"] is None
    assert len(policy_events_of(app)) == 2


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--max-lifetime", "0"], "between 1 and 3650", 1),
        (["--allow", "nope.read"], "Unknown permission", 1),
        (["--max-lifetime", "5", "--clear-max-lifetime"], "not both", 2),
        ([], "Nothing to change", 2),
    ],
)
def test_the_cli_refuses_bad_rules_with_one_line(
    app: Flask, args: list[str], message: str, code: int
) -> None:
    with app.app_context():
        acme = str(org_id_of("Acme"))
    result = _cli(app, "set", "--org", acme, *args)
    assert result.exit_code == code
    assert message in result.stderr
    assert policy_events_of(app) == []


# -- the docs ---------------------------------------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "policies.md"


def test_the_policies_doc_example_runs(app: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    from example_app import apikeys, db
    from example_app.models import Organization

    text = DOC.read_text()
    start = text.index("<!-- example:policies -->")
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert match is not None
    with app.app_context():
        namespace: dict[str, Any] = {
            "apikeys": apikeys,
            "acme": db.session.scalar(sa.select(Organization).filter_by(name="Acme")),
            "alice": user_named("alice@acme.test"),
            "bob": user_named("bob@acme.test"),
        }
        exec(compile(match.group(1), str(DOC), "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "This organization's keys must expire within 90 days."
    assert "'idle_expiry_days': 30" in out[1]
    assert out[2].startswith("[{'max_lifetime_days': 90")


def test_the_policies_doc_commands_run_as_shown(app: Flask) -> None:
    """The console session of docs/policies.md, on the example's first organization."""
    text = DOC.read_text()
    session = text[text.index("```console\n") + 11 :].split("```")[0]
    session = session.replace("\\\n", " ")
    commands: list[tuple[list[str], list[str]]] = []
    for line in session.splitlines():
        if line.startswith("$ "):
            commands.append((shlex.split(line[2:].split("#")[0]), []))
        else:
            commands[-1][1].append(line)
    with app.app_context():
        assert org_id_of("Acme") == 1
    for args, shown in commands:
        assert args[:2] == ["flask", "apikeys"]
        result = app.test_cli_runner().invoke(args=args[1:])
        assert result.exit_code == 0, result.output
        output = (result.stderr + result.stdout).splitlines()
        for expected in shown:
            prefix = expected.split("...")[0]
            assert any(line.startswith(prefix) for line in output), (expected, output)
