"""Quotas for people: ``flask apikeys set-quota``, ``list`` and ``show``; the key page's
meter and an admin's form; the lists; and the docs' example."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from flask_apikeys import QuotaExceeded
from tests.docs_examples import example_app_example
from tests.pages.conftest import Browser, csrf_token
from tests.quota_helpers import get_clients, issue_key, quota_usage_of
from tests.statements import recorded_statements

# -- the command line -------------------------------------------------------------------


def _cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["apikeys", *args])


def test_the_cli_sets_shows_lists_and_clears_a_quota(app: Flask, client: FlaskClient) -> None:
    secret, _, prefix = issue_key(app, None)
    _, _, other = issue_key(app, None)
    plain_list = _cli(app, "list")
    result = _cli(app, "set-quota", prefix, "1000/month")
    assert result.exit_code == 0, result.output
    assert f"{prefix} may make 1,000 calls a month." in result.stderr
    assert "Now: 0 of 1,000 calls this month (resets " in result.stderr
    assert result.stdout == ""
    assert get_clients(client, secret).status_code == 200

    shown = _cli(app, "show", prefix).stdout.splitlines()
    quota_line = next(line for line in shown if line.startswith("Quota:"))
    assert re.fullmatch(
        r"Quota: +1 of 1,000 calls this month \(resets \d{4}-\d\d-01 00:00 UTC\)", quota_line
    )
    assert shown.index("Usage:        0") < shown.index(quota_line) < shown.index("Events:")
    assert any("quota_changed" in line for line in shown)

    table = _cli(app, "list").stdout.splitlines()
    assert table[0].split()[-1] == "QUOTA"
    rows = {line.split()[0]: line for line in table[1:]}
    assert rows[prefix].endswith("  1/1000 month")
    assert rows[other].endswith("  -")
    rows_json = [_json(line) for line in _cli(app, "list", "--json").stdout.splitlines()]
    mine = next(r for r in rows_json if r["display_prefix"] == prefix)
    assert (mine["quota"], mine["quota_refill"], mine["quota_used"]) == ("1000/month", None, 1)
    assert mine["quota_resets_at"].endswith("T00:00:00+00:00")
    assert next(r for r in rows_json if r["display_prefix"] == other)["quota"] is None

    result = _cli(app, "set-quota", prefix, "500/total", "--refill", "day")
    assert "500 calls, refilled every day" in result.stderr
    result = _cli(app, "set-quota", prefix, "--clear")
    assert result.exit_code == 0 and f"{prefix} has no quota." in result.stderr
    assert _cli(app, "list").stdout == plain_list.stdout  # no quota listed: no column
    assert any(
        line.startswith("Quota:") and line.endswith("none")
        for line in _cli(app, "show", prefix).stdout.splitlines()
    )


def test_the_cli_refuses_bad_quotas(app: Flask) -> None:
    _, key_id, prefix = issue_key(app, None)
    for args, message in [
        ([], "Give a quota"),
        (["10/day", "--clear"], "Give a quota"),
        (["--clear", "--refill", "day"], "--refill goes with a quota"),
        (["10/day", "--refill", "day"], "Only a total is refilled"),
        (["10/fortnight"], "Unknown quota"),
    ]:
        result = _cli(app, "set-quota", prefix, *args)
        assert result.exit_code != 0
        assert message in result.stderr, (args, result.stderr)
    assert _cli(app, "set-quota", "fsk_nosuchkey", "1/day").exit_code == 1
    assert quota_usage_of(app, key_id) is None


def _json(line: str) -> dict[str, Any]:
    import json

    value: dict[str, Any] = json.loads(line)
    return value


# -- the pages --------------------------------------------------------------------------


def _detail(browser: Browser, key_id: int) -> str:
    page = browser.get(f"/{key_id}")
    assert page.status_code == 200
    return str(page.text)


def test_the_owner_sees_calls_this_period_and_cannot_change_the_quota(
    app: Flask, bob: Browser
) -> None:
    secret, key_id, _ = issue_key(app, "3/day")
    assert get_clients(app.test_client(), secret).status_code == 200
    html = _detail(bob, key_id)
    assert "<strong>1</strong> of 3 calls today" in html
    assert 'max="3" value="1"' in html
    assert "An organization admin can change the rate limit and the quota." in html
    assert 'action="/settings/api-keys/' + str(key_id) + '/quota"' not in html
    assert 'name="quota"' not in html  # the restrictions form has no quota field for bob
    page = bob.get(f"/{key_id}")
    response = bob.client.post(
        f"/settings/api-keys/{key_id}/quota",
        data={"quota": "100/day", "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 403


def test_an_admin_sets_and_clears_a_quota_on_the_page(app: Flask, alice: Browser) -> None:
    _, key_id, _ = issue_key(app, None)
    html = _detail(alice, key_id)
    assert "any address · no quota" in html
    path = f"/{key_id}"
    response = alice.submit(path, f"{path}/quota", {"quota": "50000/total", "refill": "month"})
    assert response.status_code == 302 and response.headers["Location"].endswith("#settings")
    html = _detail(alice, key_id)
    assert "of 50,000 calls since this month&#39;s refill" in html
    assert "50,000 calls, refilled every month." in html
    assert 'value="50000/total"' in html

    refused = alice.submit(path, f"{path}/quota", {"quota": "50000/week", "refill": ""})
    assert refused.status_code == 400
    assert "Unknown quota" in refused.text
    assert 'value="50000/week"' in refused.text  # what was typed stays in the field
    no_csrf = alice.client.post(f"/settings/api-keys{path}/quota", data={"quota": "1/day"})
    assert no_csrf.status_code == 400

    response = alice.submit(path, f"{path}/quota", {"quota": "", "refill": ""})
    assert response.status_code == 302
    assert "no quota" in _detail(alice, key_id)
    with app.app_context():
        from example_app import apikeys

        events = apikeys.service.queries.events(apikeys.service.queries.get_key(key_id))
        assert [e.event for e in events[:2]] == ["quota_changed", "quota_changed"]


def test_the_list_shows_each_quota_from_one_query(app: Flask, bob: Browser) -> None:
    secrets = [issue_key(app, f"{n + 2}/day")[0] for n in range(3)]
    issue_key(app, None)
    client = app.test_client()
    for secret in secrets:
        assert get_clients(client, secret).status_code == 200
    with recorded_statements() as statements:
        page = bob.get("/")
    assert page.status_code == 200
    for n in range(3):
        assert f"1 of {n + 2} today" in page.text
    assert len([s for s in statements if "quota_counters" in s]) == 1


# -- the docs ----------------------------------------------------------------------------


def test_the_quotas_example_runs(database_url: str) -> None:
    with example_app_example("quotas.md", "quotas", database_url):
        pass  # the example asserts what it shows


def test_quota_exceeded_is_an_api_key_error_of_its_own() -> None:
    from flask_apikeys import APIKeyError, RateLimited

    error = QuotaExceeded(limit=5, period="day", retry_after=0)
    assert isinstance(error, APIKeyError) and not isinstance(error, RateLimited)
    assert error.code == 429 and error.retry_after == 1
    assert ("Retry-After", "1") in error.get_headers()
