"""Issue #20, a key's page and how revoked and rotating keys read: sections, one form
for the restrictions, the actual default rate limit, every bad allowlist line named, the
quota meter and a used-up quota flagged, refused calls in the request log, "see all"
links, and no reason or expiry that is not so."""

from __future__ import annotations

import re

import sqlalchemy as sa

from tests.conftest import bearer


def _key_page(browser, key_id: int, query: str = "") -> str:
    page = browser.get(f"/{key_id}{query}")
    assert page.status_code == 200
    return page.text


def _refresh(app, **config) -> None:
    app.config.update(config)
    app.extensions["apikeys"].refresh(app)


# -- revoked and rotating keys -----------------------------------------------------------------


def test_a_revoke_without_a_reason_invents_none_anywhere(app, bob, alice, db_key):
    from example_app import apikeys

    _, secret = bob.create("no reason", scopes=["client.read"])
    key = db_key(secret)
    done = bob.submit(f"/{key.id}/revoke", f"/{key.id}/revoke", {"reason": ""})
    assert done.status_code == 302
    assert db_key(secret).revoked_reason is None
    pages = {
        "detail": _key_page(bob, key.id),
        "mine": bob.get("/?revoked=1").text,
        "organization": alice.get("/organization?status=revoked").text,
        "audit": alice.get("/organization/audit").text,
    }
    for name, page in pages.items():
        assert "ak-reason" not in page and "“revoked”" not in page, name
        assert "reason:" not in page, name
    with app.app_context():
        assert "reason" not in (apikeys.service.queries.events(db_key(secret))[0].details or {})
    shown = app.test_cli_runner().invoke(args=["apikeys", "show", key.display_prefix])
    revoked = next(line for line in shown.stdout.splitlines() if line.startswith("Revoked"))
    assert "(" not in revoked and "None" not in revoked


def test_a_reason_reads_the_same_on_the_key_the_lists_and_the_trail(bob, alice, db_key):
    _, secret = bob.create("with reason", scopes=["client.read"])
    key = db_key(secret)
    bob.submit(f"/{key.id}/revoke", f"/{key.id}/revoke", {"reason": "left the team"})
    for page in (
        _key_page(bob, key.id),
        bob.get("/?revoked=1").text,
        alice.get("/organization?status=revoked").text,
    ):
        assert "“left the team”" in page
    assert "left the team" in alice.get("/organization/audit").text


def test_expiry_reads_right_for_new_revoked_and_rotating_keys(app, bob, db_key):
    _, secret = bob.create("thirty", scopes=["client.read"], expires="30d")
    key = db_key(secret)
    assert "(in 30 days)" in _key_page(bob, key.id)  # not 29: whole days to the nearest
    rotated = bob.submit(f"/{key.id}", f"/{key.id}/rotate", {"grace": "24h"})
    assert rotated.status_code == 200
    old = _key_page(bob, key.id)
    expires = re.search(r"<dt>Expires</dt><dd>(.*?)</dd>", old, re.S).group(1)
    assert expires.startswith('<span class="ak-stops">Stops <time')  # when the old key stops
    _, other = bob.create("gone", scopes=["client.read"], expires="30d")
    gone = db_key(other)
    bob.submit(f"/{gone.id}/revoke", f"/{gone.id}/revoke", {})
    expires = re.search(r"<dt>Expires</dt><dd>(.*?)</dd>", _key_page(bob, gone.id), re.S)
    assert "(in " not in expires.group(1) and "—" in expires.group(1)


# -- the key's page -----------------------------------------------------------------------------


def test_the_page_is_in_sections_with_one_form_for_the_restrictions(alice, make_key, db_key):
    key = db_key(make_key("bob@acme.test", ["client.read"], name="sections"))
    page = _key_page(alice, key.id)
    ids = re.findall(r'<section class="ak-card[^"]*" id="(\w+)"', page)
    assert ids == ["overview", "usage", "requests", "activity", "settings"]
    nav = re.search(r'<nav class="ak-sections"[^>]*>(.*?)</nav>', page, re.S).group(1)
    assert re.findall(r'href="#(\w+)"', nav) == ids
    actions = re.findall(r'<form method="post" action="[^"]*/(\w[\w-]*)"', page)
    assert actions.count("restrictions") == 1
    assert not {"ip-allowlist", "rate-limit", "quota"} & set(actions)
    form = page[page.index(f'action="/settings/api-keys/{key.id}/restrictions"') :]
    form = form[: form.index("</form>")]
    for field in ("ip_allowlist", "rate_limit", "quota", "refill"):
        assert f'name="{field}"' in form


def test_the_actual_default_rate_limit_is_shown(app, bob, alice, make_key, db_key):
    _refresh(app, APIKEYS_DEFAULT_RATE_LIMIT="1000/hour")
    key = db_key(make_key("bob@acme.test", ["client.read"], name="default"))
    assert '1000/hour <span class="ak-muted">(default)</span>' in _key_page(bob, key.id)
    assert "(the site\u2019s default)" in _key_page(bob, key.id)
    assert "Empty: the site&#39;s default, 1000/hour." in _key_page(alice, key.id)
    _refresh(app, APIKEYS_DEFAULT_RATE_LIMIT=None)
    assert "the site\u2019s default: no limit" in _key_page(bob, key.id)


def test_restrictions_save_all_or_nothing_naming_every_bad_line(alice, db_key, make_key):
    key = db_key(make_key("bob@acme.test", ["client.read"], name="restricted"))
    sent = {
        "ip_allowlist": "10.0.0.1\nfoo\n10.0.0.300\n192.0.2.0/24",
        "rate_limit": "10/minute",
        "quota": "",
        "refill": "",
    }
    bad = alice.submit(f"/{key.id}", f"/{key.id}/restrictions", sent)
    assert bad.status_code == 400
    assert "Line 2 (&#39;foo&#39;) and line 3 (&#39;10.0.0.300&#39;) are not IP" in bad.text
    assert db_key_rate(alice, key.id) is None  # nothing saved
    good = alice.submit(
        f"/{key.id}",
        f"/{key.id}/restrictions",
        {**sent, "ip_allowlist": "10.0.0.1\n192.0.2.0/24", "quota": "500/day"},
    )
    assert good.status_code == 302 and good.location.endswith("#settings")
    page = _key_page(alice, key.id)
    assert "10/minute" in page and "quota 500/day" in page and "2 allowed networks" in page


def db_key_rate(browser, key_id: int) -> str | None:
    from example_app import apikeys, db

    app = browser.client.application
    with app.app_context():
        return db.session.get(apikeys.models.APIKey, key_id).rate_limit


def test_an_owner_saves_the_allowlist_and_never_the_rate_limit(bob, make_key, db_key):
    key = db_key(make_key("bob@acme.test", ["client.read"], name="mine"))
    page = _key_page(bob, key.id)
    assert 'name="rate_limit"' not in page and 'name="quota"' not in page
    sent = {"ip_allowlist": "192.0.2.7", "rate_limit": "100000/second", "quota": "1/total"}
    assert bob.submit(f"/{key.id}", f"/{key.id}/restrictions", sent).status_code == 302
    assert db_key_rate(bob, key.id) is None
    assert "1 allowed network" in _key_page(bob, key.id)


def test_a_used_up_quota_is_flagged_on_the_page_and_in_the_lists(
    app, bob, alice, client, make_key, db_key
):
    secret = make_key("bob@acme.test", ["client.read"], name="metered", quota="2/day")
    key = db_key(secret)
    codes = [client.get("/v1/clients", headers=bearer(secret)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    page = _key_page(bob, key.id)
    assert '<span class="ak-badge ak-badge-expired ak-badge-quota">Quota used up</span>' in page
    usage = page[page.index('id="usage"') : page.index('id="requests"')]
    assert 'class="ak-quota-meter"' in usage and 'value="2"' in usage
    for listing in (bob.get("/").text, alice.get("/organization").text):
        assert "ak-quota-used-up" in listing and "Quota used up</span>" in listing


def test_refused_calls_are_in_the_request_log_and_stand_out(app, bob, client, make_key, db_key):
    _refresh(app, APIKEYS_USAGE_FLUSH_INTERVAL=0, APIKEYS_REQUEST_LOG_READ_SAMPLE=0)
    secret = make_key("bob@acme.test", ["client.read"], name="busy", rate_limit="2/minute")
    codes = [client.get("/v1/clients", headers=bearer(secret)).status_code for _ in range(5)]
    assert codes == [200, 200, 429, 429, 429]
    forbidden = client.get("/v1/invoices", headers=bearer(secret))  # rate limited first
    assert forbidden.status_code == 429
    app.extensions["apikeys"].flush_request_log(app)
    page = _key_page(bob, db_key(secret).id)
    rows = re.findall(r'<tr class="ak-req-(\w+)">', page)
    assert rows == ["refused"] * 4  # the reads that passed were not sampled
    assert page.count('429<span class="ak-status-word"> too many requests</span>') == 4
    assert "No requests recorded yet" not in page


def test_the_request_log_bounds_refusals_per_key_between_flushes():
    from flask_apikeys.service.requestlog import REFUSALS_PER_FLUSH, RequestLogBuffer

    table = sa.Table(
        "requests",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_id", sa.Integer),
        sa.Column("at", sa.DateTime),
        sa.Column("method", sa.String),
        sa.Column("path", sa.String),
        sa.Column("status", sa.Integer),
        sa.Column("ip", sa.String),
    )
    log = RequestLogBuffer(lambda: sa.create_engine("sqlite://"), table, read_sample=0, interval=0)
    kept = [log.record(1, "GET", "/v1/x", 429) for _ in range(REFUSALS_PER_FLUSH + 5)]
    assert kept.count(True) == REFUSALS_PER_FLUSH
    assert log.record(2, "GET", "/v1/x", 403)  # another key has its own bound
    assert not log.record(1, "GET", "/v1/x", 200)  # a read that passed: sampled (0 here)
    log.snapshot()  # a flush takes the rows: the bound starts again
    assert log.record(1, "GET", "/v1/x", 429)
    log.discard()  # nothing to write at exit


def test_see_all_leads_to_the_audit_trail_for_an_admin_and_to_more_for_the_owner(
    app, bob, alice, db_key
):
    _, secret = bob.create("busy key", scopes=["client.read"])
    key = db_key(secret)
    for n in range(6):  # created + 6 renames: more than the 5 shown
        bob.submit(f"/{key.id}", f"/{key.id}/rename", {"name": f"busy key {n}"})
    mine = _key_page(bob, key.id)
    events = mine[mine.index('id="activity"') :]
    assert events.count("<tr>") == 1 + 5  # the header row and the newest five
    see_all = f'href="/settings/api-keys/{key.id}?activity=all#activity">See all</a>'
    assert see_all in mine
    assert _key_page(bob, key.id, "?activity=all").count("Renamed") == 6
    admin = _key_page(alice, key.id)
    link = re.search(r'<a href="([^"]+)">See all in the audit trail</a>', admin).group(1)
    assert link.startswith("/settings/api-keys/organization/audit?")
    assert f"key={key.display_prefix}" in link
    trail = alice.client.get(link.replace("&amp;", "&")).text
    assert trail.count("Renamed") >= 6
