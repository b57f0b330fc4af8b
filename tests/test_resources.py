"""Keys limited to chosen resources: the service, the checks per request, the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import jsonify

from flask_apikeys import (
    KeyDraft,
    Refusal,
    RequestRefused,
    ResourceNotAllowed,
    current_key,
    require_key,
)
from tests.conftest import bearer
from tests.statements import lookups, recorded_statements, version_checks, writes

#: What each account may limit a key to: (id, label) pairs, as the loader gives them.
DOCUMENTS = {
    "ann@example.test": [(1, "Plan"), (2, "Budget"), (3, "Roadmap")],
    "ben@example.test": [(2, "Budget")],
}
DOCS = sa.Table(
    "resource_test_docs",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(10)),
)


@pytest.fixture
def docs(host: Any) -> Iterator[Any]:
    """The host with a "doc" resource kind, three documents, and routes that use them."""
    ext = host.module.apikeys
    ext.resource_loader("doc", label="Documents")(
        lambda user, organization_id: DOCUMENTS.get(user.email, [])
    )
    db = host.module.db
    DOCS.create(db.engine)
    with db.engine.begin() as conn:
        conn.execute(DOCS.insert(), [{"id": i, "code": f"d{i}"} for i in (1, 2, 3)])

    @host.app.get("/docs/<doc_id>")
    @require_key(scope="doc.read", resource=("doc", "doc_id"))
    def read_doc(doc_id: str) -> Any:
        return jsonify(id=doc_id, allowed=current_key.allows("doc", doc_id))

    @host.app.get("/docs")
    @require_key(scope="doc.read")
    def list_docs() -> Any:
        ids = current_key.restrict(sa.select(DOCS.c.id), "doc", DOCS.c.id).order_by(DOCS.c.id)
        codes = current_key.restrict(sa.select(DOCS.c.code), "doc", DOCS.c.code)
        return jsonify(ids=list(db.session.scalars(ids)), codes=sorted(db.session.scalars(codes)))

    yield host
    ext._resource_kinds.pop("doc", None)
    ext._forget_apps()
    db.session.remove()  # the views' reads hold the table until their transaction ends
    DOCS.drop(db.engine)


def _events(host: Any, key: Any, event: str) -> list[Any]:
    return [e for e in host.service.queries.events(key) if e.event == event]


def _key_count(host: Any) -> int:
    return len(host.service.queries.list_keys())


# -- the service --------------------------------------------------------------------


def test_a_key_is_limited_to_the_chosen_resources_in_the_loaders_order(docs: Any) -> None:
    issued = docs.service.keys.issue(docs.ann, "x", ["doc.read"], resources={"doc": ["3", 1]})
    assert issued.key.resources == {"doc": ["1", "3"]}
    assert docs.service.keys.issue(docs.ann, "y", ["doc.read"]).key.resources is None
    unlimited = docs.service.keys.issue(docs.ann, "z", ["doc.read"], resources={"doc": None})
    assert unlimited.key.resources is None


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"doc": ["9"]}, "There is no doc '9' you can choose."),
        ({"doc": ["1"]}, "There is no doc '1' you can choose."),  # ann's, not ben's
        ({"doc": []}, "Choose at least one doc"),
        ({"doc": [True]}, "named by its id"),
        ({"doc": 2.5}, "Give the doc ids as a list"),
        ({"doc": {"1": "x"}}, "Give the doc ids as a list"),
        ({"doc": [" "]}, "There is no doc"),
        ({"folder": ["1"]}, "Unknown kind of resource 'folder'"),
        (["doc", "2"], "Give resources by kind"),
    ],
)
def test_forged_resources_are_refused_and_nothing_is_written(
    docs: Any, resources: Any, message: str
) -> None:
    with pytest.raises(RequestRefused, match=message) as refused:
        docs.service.keys.issue(docs.ben, "x", ["doc.read"], resources=resources)
    assert refused.value.field == "resources"
    docs.module.db.session.rollback()
    assert _key_count(docs) == 0


def test_allows_answers_per_kind_and_id(docs: Any) -> None:
    limited = docs.service.keys.issue(docs.ann, "x", ["doc.read"], resources={"doc": [1, 3]}).secret
    verified = docs.service.verifier.verify(limited)
    assert verified.resources == {"doc": ["1", "3"]}
    assert verified.allows("doc", 1) and verified.allows("doc", "3")
    assert not verified.allows("doc", 2) and not verified.allows("doc", None)
    assert verified.allows("folder", 99)  # a kind the key is not limited in
    everything = docs.service.verifier.verify(
        docs.service.keys.issue(docs.ann, "y", ["doc.read"]).secret
    )
    assert everything.resources is None
    assert everything.allows("doc", 2) and everything.allows("doc", None)


def test_require_key_refuses_another_resource_with_403_resource_not_allowed(docs: Any) -> None:
    limited = docs.service.keys.issue(docs.ann, "x", ["doc.read"], resources={"doc": ["1"]}).secret
    everything = docs.service.keys.issue(docs.ann, "y", ["doc.read"]).secret
    assert docs.client.get("/docs/1", headers=bearer(limited)).json == {"id": "1", "allowed": True}
    refused = docs.client.get("/docs/2", headers=bearer(limited))
    assert refused.status_code == 403
    assert refused.json == {
        "error": "resource_not_allowed",
        "message": "This API key cannot be used for this doc.",
        "resource": "doc",
    }
    challenge = refused.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api", error="insufficient_scope"')
    assert refused.headers["Cache-Control"] == "no-store"
    for doc_id in ("1", "2", "anything"):
        assert docs.client.get(f"/docs/{doc_id}", headers=bearer(everything)).status_code == 200
    assert docs.client.get("/docs/2").status_code == 401  # no key: the key check comes first


def test_the_error_is_an_exception_the_host_can_catch() -> None:
    error = ResourceNotAllowed("client", realm="billing")
    assert error.code == 403 and error.kind == "client"
    assert 'realm="billing"' in dict(error.get_headers())["WWW-Authenticate"]


def test_require_key_names_a_view_argument_that_exists() -> None:
    def view(client_id: str) -> str:
        return client_id

    with pytest.raises(TypeError, match="no 'clientid'"):
        require_key(resource=("client", "clientid"))(view)
    require_key(resource=("client", "client_id"))(view)  # fine


def test_restrict_filters_lists_only_for_limited_keys(docs: Any) -> None:
    limited = docs.service.keys.issue(docs.ann, "x", ["doc.read"], resources={"doc": [3, 1]}).secret
    everything = docs.service.keys.issue(docs.ann, "y", ["doc.read"]).secret
    assert docs.client.get("/docs", headers=bearer(limited)).json == {
        "ids": [1, 3],
        "codes": [],  # "1" and "3" are ids: no code is "1"
    }
    assert docs.client.get("/docs", headers=bearer(everything)).json == {
        "ids": [1, 2, 3],
        "codes": ["d1", "d2", "d3"],
    }


def test_restrict_gives_ids_the_columns_type_and_drops_the_impossible() -> None:
    from flask_apikeys.service.resources import restrict_select

    stmt = restrict_select(sa.select(DOCS.c.id), {"doc": ["2", "x"]}, "doc", DOCS.c.id)
    assert stmt.compile().params == {"id_1": [2]}
    same = sa.select(DOCS.c.id)
    assert restrict_select(same, {"other": ["1"]}, "doc", DOCS.c.id) is same
    assert restrict_select(same, None, "doc", DOCS.c.id) is same


# -- changing the selection ---------------------------------------------------------------


def test_changing_the_resources_is_audited_and_works_on_the_next_request(docs: Any) -> None:
    issued = docs.service.keys.issue(docs.ann, "x", ["doc.read"], resources={"doc": ["1"]})
    key, secret = issued.key, issued.secret
    assert docs.client.get("/docs/2", headers=bearer(secret)).status_code == 403
    assert docs.service.resources.set_resources(
        key, {"doc": ["2", "3"]}, actor=docs.ann, ip="192.0.2.7"
    )
    assert docs.client.get("/docs/2", headers=bearer(secret)).status_code == 200
    assert docs.client.get("/docs/1", headers=bearer(secret)).status_code == 403
    assert docs.service.resources.set_resources(key, None, actor=docs.ann)
    assert docs.client.get("/docs/1", headers=bearer(secret)).status_code == 200
    assert not docs.service.resources.set_resources(key, {"doc": None})  # nothing changed
    changes = sorted(_events(docs, key, "resources_changed"), key=lambda e: e.id)
    assert [(e.details["before"], e.details["after"]) for e in changes] == [
        ({"doc": ["1"]}, {"doc": ["2", "3"]}),
        ({"doc": ["2", "3"]}, "all"),
    ]
    assert changes[0].ip == "192.0.2.7" and changes[0].actor_id == docs.ann.uuid


def test_only_the_owner_or_an_operator_changes_an_active_keys_resources(docs: Any) -> None:
    key = docs.service.keys.issue(docs.ann, "x", ["doc.read"]).key
    with pytest.raises(RequestRefused, match="Only the owner"):
        docs.service.resources.set_resources(key, {"doc": ["1"]}, actor=docs.ben)
    with pytest.raises(RequestRefused, match="There is no doc '9'"):
        docs.service.resources.set_resources(key, {"doc": ["9"]}, actor=docs.ann)
    docs.module.db.session.rollback()
    assert key.resources is None and _events(docs, key, "resources_changed") == []
    assert docs.service.resources.set_resources(key, {"doc": ["1"]})  # an operator
    docs.service.keys.revoke(key)
    with pytest.raises(RequestRefused, match="Only an active key"):
        docs.service.resources.set_resources(key, None)


def test_rotation_keeps_the_selection(docs: Any) -> None:
    old = docs.service.keys.issue(docs.ann, "x", ["doc.read"], resources={"doc": ["2"]}).key
    new = docs.service.keys.rotate(old, actor=docs.ann)
    assert new.key.resources == {"doc": ["2"]}
    assert docs.client.get("/docs/2", headers=bearer(new.secret)).status_code == 200
    assert docs.client.get("/docs/3", headers=bearer(new.secret)).status_code == 403


# -- the hot path -------------------------------------------------------------------------


@pytest.mark.parametrize("limited", [False, True], ids=["unlimited", "limited"])
def test_checking_resources_costs_no_query(docs: Any, limited: bool) -> None:
    resources = {"doc": ["1"]} if limited else None
    secret = docs.service.keys.issue(docs.ann, "x", ["doc.read"], resources=resources).secret
    engine = docs.module.db.engine
    docs.module.db.session.remove()
    with recorded_statements() as statements:
        for doc_id, status in (("1", 200), ("1", 200), ("2", 403 if limited else 200)):
            assert docs.client.get(f"/docs/{doc_id}", headers=bearer(secret)).status_code == status
    assert writes(statements) == []
    found, checks = lookups(statements), version_checks(statements)
    assert [s for s in statements if s not in found and s not in checks] == []
    assert len(found) == (1 if engine.dialect.name == "sqlite" else 3), statements


# -- what the creation policy sees ----------------------------------------------------------


def test_the_policy_sees_the_key_asked_for(docs: Any) -> None:
    seen: list[KeyDraft | None] = []

    def policy(user: Any, organization_id: Any, key: KeyDraft | None) -> Any:
        seen.append(key)
        if key is not None and key.resources:
            return Refusal("Choosing documents is a paid feature.", link="/pricing")
        return None

    docs.module.apikeys.creation_policy(policy)
    try:
        docs.permissions["ann@example.test"].add("doc.list")
        service = docs.service
        service.keys.issue(docs.ann, "r", ["doc.read"])
        service.keys.issue(docs.ann, "c", ["doc.list"])
        service.keys.issue(docs.ann, "f", [], full_access=True)
        with pytest.raises(RequestRefused, match="paid feature") as refused:
            service.keys.issue(docs.ann, "d", ["doc.read"], resources={"doc": ["1"]})
        assert refused.value.message.link == "/pricing"  # type: ignore[attr-defined]
        assert service.context.creation_refusal(docs.ann) is None
    finally:
        docs.module.apikeys._creation_policy = None
        docs.module.apikeys._forget_apps()
    drafts = [d for d in seen if d is not None]
    assert [d.access for d in drafts] == ["read", "custom", "full", "read"]
    assert drafts[-1].resources == {"doc": ("1",)}
    assert None in seen  # asked first whether ann may create keys at all


def test_a_two_argument_policy_still_works(docs: Any) -> None:
    docs.module.apikeys.creation_policy(lambda user, organization_id: "Not today.")
    try:
        with pytest.raises(RequestRefused, match="Not today"):
            docs.service.keys.issue(docs.ann, "x", ["doc.read"])
    finally:
        docs.module.apikeys._creation_policy = None
        docs.module.apikeys._forget_apps()


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "//evil.test/", "/\\evil.test", "https://a@evil.test", "/a b"]
)
def test_a_refusals_link_is_a_path_or_an_http_url(link: str) -> None:
    with pytest.raises(ValueError, match="a path or an http"):
        Refusal("No.", link=link)
    assert Refusal("No.", link="/plans").link == "/plans"
    assert Refusal("No.", link="https://example.test/plans?from=keys").link_text == "Upgrade"


# -- the CLI --------------------------------------------------------------------------------


def test_the_cli_creates_and_changes_limited_keys(docs: Any) -> None:
    runner = docs.app.test_cli_runner()
    scope = ["--scope", "doc.read", "--resource", "doc=3", "--resource", "doc=1"]
    create = ["apikeys", "create", "--user", "ann@example.test", "--name", "ci", *scope]
    created = runner.invoke(args=create)
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    key = docs.service.verifier.find_by_secret(secret)
    assert key.resources == {"doc": ["1", "3"]}
    prefix = key.display_prefix
    shown = runner.invoke(args=["apikeys", "show", prefix])
    assert "Resources:    doc 1, 3" in shown.stdout
    changed = runner.invoke(args=["apikeys", "set-resources", prefix, "--resource", "doc=2"])
    assert changed.exit_code == 0 and "is limited to doc 2." in changed.stderr
    lifted = runner.invoke(args=["apikeys", "set-resources", prefix, "--all"])
    assert lifted.exit_code == 0 and "can reach every resource" in lifted.stderr
    docs.module.db.session.expire_all()
    assert docs.service.verifier.find_by_secret(secret).resources is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resource", "doc"], "Give a resource as KIND=ID"),
        (["--resource", "doc=9"], "There is no doc '9' you can choose."),
        (["--resource", "folder=1"], "Unknown kind of resource"),
    ],
)
def test_the_cli_refuses_bad_resources_with_one_line(
    docs: Any, args: list[str], message: str
) -> None:
    runner = docs.app.test_cli_runner()
    base = [
        "apikeys",
        "create",
        "--user",
        "ann@example.test",
        "--name",
        "ci",
        "--scope",
        "doc.read",
    ]
    result = runner.invoke(args=[*base, *args])
    assert result.exit_code == 1 and message in result.stderr
    assert _key_count(docs) == 0
    both = runner.invoke(args=["apikeys", "set-resources", "tst_x", "--all", "--resource", "d=1"])
    assert both.exit_code == 2
