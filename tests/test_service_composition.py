"""The service is a small facade over parts that share one context: each part is one
class with methods of its own, features join through the context's extension points,
and one ``issue()`` asks each host loader once."""

from __future__ import annotations

import ast
import collections
import inspect
from pathlib import Path
from typing import Any

import pytest

from flask_apikeys import KeyDraft, KeyService, Organization
from flask_apikeys.service import facade
from flask_apikeys.service.resources import ResourceKind

SERVICE = Path(facade.__file__).parent

PARTS = {
    "context",
    "queries",
    "listing",
    "verifier",
    "keys",
    "quotas",
    "resources",
    "policies",
    "restrictions",
    "audit_trail",
    "leaks",
    "expiry",
    "requests",
}


def test_the_facade_is_small_and_its_parts_stand_alone(host: Any) -> None:
    service = host.service
    assert {name for name in vars(service) if not name.startswith("_")} == PARTS
    for name in PARTS:
        part = type(getattr(service, name))
        # No tower: each part is made by composition, not by inheriting another part.
        assert part.__bases__ == (object,), (name, part.__bases__)
    own = [name for name in vars(KeyService) if not name.startswith("_")]
    assert own == ["session"]


def test_no_method_name_is_defined_in_two_classes_of_the_service(host: Any) -> None:
    defined: dict[str, list[str]] = collections.defaultdict(list)
    for name in PARTS:
        part = type(getattr(host.service, name))
        for method, value in vars(part).items():
            if (callable(value) or isinstance(value, property)) and not method.startswith("__"):
                defined[method].append(part.__name__)
    twice = {method: classes for method, classes in defined.items() if len(classes) > 1}
    assert twice == {}


def test_no_class_of_the_service_mentions_another_class_of_it_as_a_subclass() -> None:
    # The old tower's base classes carried comments about their subclasses; parts name
    # only what they use, and nothing in the service calls super() to reach a feature.
    for path in SERVICE.glob("*.py"):
        source = path.read_text()
        assert "super()." not in source.replace("super().__init__(", ""), path.name
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name.startswith("Key"):
                assert [ast.unparse(b) for b in node.bases] == [], (path.name, node.name)


def test_one_issue_asks_each_host_loader_once(host: Any) -> None:
    calls: collections.Counter[str] = collections.Counter()
    seen_drafts: list[KeyDraft] = []

    def permissions(user: Any, organization_id: Any) -> set[str]:
        calls["permissions"] += 1
        return host.permissions[user.email]

    def organizations(user: Any) -> list[Organization]:
        calls["organizations"] += 1
        return [Organization("acme", "Acme"), Organization("globex", "Globex")]

    def creation_policy(user: Any, organization_id: Any, draft: KeyDraft) -> None:
        calls["creation policy"] += 1
        seen_drafts.append(draft)

    def documents(user: Any, organization_id: Any) -> list[tuple[str, str]]:
        calls["resources"] += 1
        return [("1", "Handbook"), ("2", "Price list")]

    service = KeyService(
        host.module.db.session,
        host.module.apikeys.models,
        prefix="tst",
        permissions=permissions,
        organizations=organizations,
        creation_policy=creation_policy,
    )
    service.resources.resource_kinds = {"doc": ResourceKind("doc", "Documents", documents)}
    issued = service.keys.issue(
        host.ann,
        "Nightly",
        ["doc.read"],
        organization_id="acme",
        resources={"doc": ["2"]},
        quota="10/day",
    )
    assert dict(calls) == {
        "permissions": 1,
        "organizations": 1,
        "creation policy": 1,
        "resources": 1,
    }
    assert issued.key.resources == {"doc": ["2"]}
    assert (issued.key.quota_limit, issued.key.quota_period) == (10, "day")
    assert seen_drafts[0].resources == {"doc": ("2",)}
    events = [event.event for event in reversed(service.queries.events(issued.key))]
    assert events == ["created", "quota_changed"]


def test_a_feature_joins_through_an_extension_point(host: Any) -> None:
    service = host.service
    refused_names: list[str] = []

    def no_secrets_in_names(new: Any) -> None:
        if "secret" in new.name.lower():
            refused_names.append(new.name)
            from flask_apikeys import RequestRefused

            raise RequestRefused("Names must not mention secrets.", field="name")

    service.context.extensions.check_new_key.append(no_secrets_in_names)
    try:
        with pytest.raises(Exception, match="mention secrets"):
            service.keys.issue(host.ann, "My secret key", ["doc.read"])
        assert service.keys.issue(host.ann, "Reports", ["doc.read"]).key.name == "Reports"
    finally:
        service.context.extensions.check_new_key.remove(no_secrets_in_names)
    assert refused_names == ["My secret key"]
    assert service.queries.list_keys()[0].name == "Reports"


def test_the_old_flat_names_still_answer_for_one_release(host: Any) -> None:
    with pytest.warns(DeprecationWarning, match=r"service\.keys\.issue"):
        issue = host.service.issue
    assert inspect.ismethod(issue) and issue.__self__ is host.service.keys
    with pytest.raises(AttributeError):
        host.service.no_such_method
