"""The example app's member page, where offboarding sends an admin to take away a
person's permission to create keys (APIKEYS_MEMBER_PERMISSIONS_URL)."""

from __future__ import annotations

from tests.pages.conftest import csrf_token


def test_offboarding_links_to_the_member_page_where_the_admin_removes_create(
    app, alice, bob, carol, user_id, make_key
):
    make_key("bob@acme.test", ["client.read"], name="laptop")
    bob_id = user_id("bob@acme.test")
    offboard = alice.get(f"/organization/1/users/{bob_id}/revoke-all").text
    assert "Bob Keller can still create keys." in offboard
    assert f'href="/settings/members/{bob_id}?org=1"' in offboard

    page = alice.client.get(f"/settings/members/{bob_id}?org=1")
    assert page.status_code == 200 and "Bob Keller in Acme" in page.text
    assert 'value="api_key.create" id="perm-5" checked' in page.text
    kept = ["invoice.read", "client.read"]
    done = alice.client.post(
        f"/settings/members/{bob_id}?org=1",
        data={"permissions": kept, "csrf_token": csrf_token(page.text)},
    )
    assert done.status_code == 302
    from example_app import db
    from example_app.models import Membership

    with app.app_context():
        membership = db.session.get(Membership, (bob_id, 1))
        assert membership.permissions == "invoice.read client.read"
    assert (
        "can still create keys" not in alice.get(f"/organization/1/users/{bob_id}/revoke-all").text
    )

    # Only the organization's admins open it; nobody takes their own admin right away.
    assert bob.client.get(f"/settings/members/{bob_id}?org=1").status_code == 404
    assert carol.client.get(f"/settings/members/{bob_id}?org=1").status_code == 404
    assert alice.client.get(f"/settings/members/{bob_id}").status_code == 404
    alice_id = user_id("alice@acme.test")
    own = alice.client.get(f"/settings/members/{alice_id}?org=1")
    refused = alice.client.post(
        f"/settings/members/{alice_id}?org=1",
        data={"permissions": kept, "csrf_token": csrf_token(own.text)},
        follow_redirects=True,
    )
    assert "You cannot take away your own right to manage" in refused.text
    no_token = alice.client.post(f"/settings/members/{bob_id}?org=1", data={"permissions": kept})
    assert no_token.status_code == 400


def test_without_a_member_page_offboarding_says_where_to_go(app, alice, user_id, make_key):
    make_key("bob@acme.test", ["client.read"], name="laptop")
    app.config["APIKEYS_MEMBER_PERMISSIONS_URL"] = None
    page = alice.get(f"/organization/1/users/{user_id('bob@acme.test')}/revoke-all").text
    assert "where you manage your members' permissions" in page
    assert "/settings/members/" not in page
    app.config["APIKEYS_MEMBER_PERMISSIONS_URL"] = lambda user, org_id: f"/people/{user.email}"
    page = alice.get(f"/organization/1/users/{user_id('bob@acme.test')}/revoke-all").text
    assert 'href="/people/bob@acme.test"' in page
