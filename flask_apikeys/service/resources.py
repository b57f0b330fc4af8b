"""Keys limited to chosen resources of the host, like GitHub's repository selection.

The host registers kinds of resources and how to list those a user may choose
(``@apikeys.resource_loader("client", label="Clients")``); a key then holds, in its
``resources`` column, the ids it is limited to, by kind: ``{"client": ["3", "7"]}``.
``None``, or a kind left out, means every resource of that kind. Ids are kept and
compared as text, whatever type the host's ids have.

The selection is read with the key by the hot path's one SELECT: checking it per request
(:meth:`~flask_apikeys.VerifiedKey.allows`, :meth:`~flask_apikeys.VerifiedKey.restrict`,
``require_key(resource=...)``) costs no query. Choosing it (:meth:`KeyResources.issue`,
:meth:`KeyResources.set_resources`) accepts only ids the loader lists for the key's
owner and organization, asks the host's creation policy, and is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, Self, TypeVar

from ..db.models import APIKeyMixin, KeyStatus
from ..keys.drafts import KeyDraft
from .context import NewKey, ServiceContext
from .pipeline import KeyField, KeyRow
from .validation import RequestRefused

__all__ = [
    "KeyResources",
    "Resource",
    "ResourceKind",
    "ResourceLoader",
    "Selection",
    "parse_resource_specs",
    "restrict_select",
    "selection_allows",
]

#: The resources a key is limited to: kind → ids (as text).
Selection = dict[str, list[str]]
#: ``loader(user, organization_id) -> iterable of (id, label)`` pairs, or of objects with
#: ``id`` and ``name`` (or ``label``): the resources *user* may limit a key to.
ResourceLoader = Callable[[Any, Any], Iterable[Any]]

_MAX_ID_LENGTH = 200


class _Filterable(Protocol):
    def where(self, *clauses: Any) -> Self: ...


Statement = TypeVar("Statement", bound=_Filterable)


@dataclass(frozen=True)
class Resource:
    """One resource a user may limit a key to, as the pages show it."""

    id: str
    label: str


@dataclass(frozen=True)
class ResourceKind:
    """A kind of resource the host registered: its name (``"client"``), the label of
    its plural on the pages (``"Clients"``) and its loader."""

    name: str
    label: str
    loader: ResourceLoader

    @property
    def noun(self) -> str:
        """The singular in sentences: ``client`` for ``"client"``."""
        return self.name.replace("_", " ")

    def resources_for(self, user: Any, organization_id: Any) -> list[Resource]:
        """What the loader lists for *user* in *organization_id*, in its order, once each."""
        found: dict[str, Resource] = {}
        for item in self.loader(user, organization_id):
            if hasattr(item, "id"):
                raw_id = item.id
                label = getattr(item, "name", None) or getattr(item, "label", None)
            elif isinstance(item, tuple | list) and len(item) == 2:
                raw_id, label = item
            else:
                raise TypeError(
                    f"the {self.name!r} resource loader must give (id, label) pairs or "
                    f"objects with id and name, not {type(item).__name__}"
                )
            resource_id = str(raw_id)
            found.setdefault(resource_id, Resource(resource_id, str(label or resource_id)))
        return list(found.values())


def selection_allows(selection: Mapping[str, Any] | None, kind: str, resource_id: Any) -> bool:
    """Whether a key limited to *selection* may use resource *resource_id* of *kind*."""
    if not selection:
        return True
    ids = selection.get(kind)
    if ids is None:
        return True
    return resource_id is not None and str(resource_id) in ids


def _selection_of(row: KeyRow) -> Selection | None:
    """A presented key's selection, as a copy of its own (the row may be shared)."""
    selection = row.resources
    return None if selection is None else {kind: list(ids) for kind, ids in selection.items()}


def restrict_select(
    statement: Statement, selection: Mapping[str, Any] | None, kind: str, column: Any
) -> Statement:
    """*statement* with ``WHERE column IN (ids)`` when *selection* limits *kind*.

    The ids are given the Python type of *column* (an integer column gets integers);
    ids that cannot have it match nothing.
    """
    ids = (selection or {}).get(kind)
    if ids is None:
        return statement
    return statement.where(column.in_(_typed(ids, column)))


def _typed(ids: Iterable[str], column: Any) -> list[Any]:
    try:
        python_type = column.type.python_type
    except (AttributeError, NotImplementedError):
        return list(ids)
    if python_type is str:
        return list(ids)
    typed = []
    for value in ids:
        try:
            typed.append(python_type(value))
        except (TypeError, ValueError, ArithmeticError):
            continue  # "abc" names no row of an integer column
    return typed


def parse_resource_specs(specs: Iterable[str]) -> Selection | None:
    """``["client=3", "client=7"]`` (the CLI's ``--resource``) → ``{"client": ["3", "7"]}``."""
    selection: Selection = {}
    for spec in specs:
        kind, sep, resource_id = spec.partition("=")
        if not sep or not kind.strip() or not resource_id.strip():
            raise RequestRefused(f"Give a resource as KIND=ID (e.g. client=3), not {spec!r}.")
        selection.setdefault(kind.strip(), []).append(resource_id.strip())
    return selection or None


def _shown(selection: Selection | None) -> Selection | str:
    """A selection as the audit trail keeps it."""
    return selection if selection else "all"


class KeyResources:
    """Keys limited to chosen resources of the host: ``service.resources``. Joins the
    core at creation: ``issue(..., resources={"client": ["3"]})`` is checked against
    what the loaders list, and shown to the creation policy in its draft."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        #: The kinds the host registered, by name (the extension fills it in).
        self.resource_kinds: Mapping[str, ResourceKind] = MappingProxyType({})
        context.extensions.prepare_new_key.append(self.read_resources_option)
        context.extensions.key_created.append(self.give_resources)
        resources = context.models.APIKey.__table__.c.resources
        context.extensions.key_fields.append(
            KeyField("resources", {"resources": resources}, _selection_of)
        )

    def resources_of(self, user: Any, organization_id: Any, kind: str) -> list[Resource]:
        """The resources of *kind* that *user* may limit a key in *organization_id* to."""
        return self._kind(kind).resources_for(user, organization_id)

    def clean_resources(
        self, owner: Any, organization_id: Any, resources: Mapping[str, Any] | None
    ) -> Selection | None:
        """*resources* checked against what the loaders list for *owner* in
        *organization_id*: the selection to store, or :class:`RequestRefused`.

        A kind given ``None`` (or left out) is not limited; an empty list is refused.
        """
        if resources is None:
            return None
        if not isinstance(resources, Mapping):
            raise RequestRefused(
                "Give resources by kind, e.g. {'client': ['3']}.", field="resources"
            )
        selection: Selection = {}
        for kind_name, wanted in resources.items():
            kind = self._kind(kind_name)
            if wanted is None:
                continue
            if isinstance(wanted, str | int):
                wanted = [wanted]
            if not isinstance(wanted, list | tuple | set | frozenset):
                raise RequestRefused(f"Give the {kind.noun} ids as a list.", field="resources")
            ids = [_clean_id(value, kind) for value in wanted]
            if not ids:
                raise RequestRefused(
                    f"Choose at least one {kind.noun}, or all of them.", field="resources"
                )
            choosable = [r.id for r in kind.resources_for(owner, organization_id)]
            for resource_id in ids:
                if resource_id not in choosable:
                    raise RequestRefused(
                        f"There is no {kind.noun} {resource_id!r} you can choose.",
                        field="resources",
                    )
            selection[kind.name] = [i for i in choosable if i in ids]  # the loader's order
        return dict(sorted(selection.items())) or None

    def draft(
        self,
        owner: Any,
        organization_id: Any,
        scopes: Collection[str],
        *,
        full_access: bool = False,
        resources: Selection | None = None,
    ) -> KeyDraft:
        """The :class:`~flask_apikeys.KeyDraft` the creation policy is shown."""
        readable = [
            p
            for p in self.context.grantable_permissions(owner, organization_id)
            if p.endswith(".read")
        ]
        if not isinstance(scopes, str):  # what is not a name is refused later, with a message
            scopes = [scope for scope in scopes if isinstance(scope, str)]
        return KeyDraft.of(scopes, full_access=full_access, readable=readable, resources=resources)

    def read_resources_option(self, new: NewKey) -> None:
        """``issue(..., resources=...)``: the selection checked for the new key's owner
        and organization (``None``: not limited)."""
        new.options["resources"] = self.clean_resources(
            new.owner, new.organization_id, new.options.get("resources")
        )

    def give_resources(self, new: NewKey, key: APIKeyMixin) -> None:
        """A new key is limited as asked; a rotation's new key as the old one was."""
        source = new.rotated_from
        key.resources = source.resources if source is not None else new.options.get("resources")

    def set_resources(
        self,
        key: APIKeyMixin,
        resources: Mapping[str, Any] | None,
        *,
        actor: Any = None,
        ip: str | None = None,
    ) -> bool:
        """Limit *key* to *resources* (``None``: to none in particular), audited as
        ``resources_changed`` with ``before`` and ``after``. Returns ``False`` when
        nothing changed.

        Allowed to the key's owner and to operators, on an active key whose owner may
        still create keys; the choice is checked as at creation.
        """
        if actor is not None and self.context.user_id(actor) != key.owner_id:
            raise RequestRefused("Only the owner of a key can change what it can reach.")
        if key.status_at(self.context.clock()) != KeyStatus.ACTIVE or key.revoked_at is not None:
            raise RequestRefused("Only an active key can be changed.")
        owner = key.owner
        selection = self.clean_resources(owner, key.organization_id, resources)
        draft = self.draft(
            owner,
            key.organization_id,
            key.scopes or (),
            full_access=key.full_access,
            resources=selection,
        )
        refusal = self.context.creation_refusal(owner, key.organization_id, draft)
        if refusal is not None:
            raise RequestRefused(refusal)
        before = key.resources or None
        if selection == before:
            return False
        key.resources = selection
        self.context.record_event(
            key,
            "resources_changed",
            actor,
            ip,
            self.context.clock(),
            before=_shown(before),
            after=_shown(selection),
        )
        self.context.session.commit()
        return True

    def _kind(self, name: Any) -> ResourceKind:
        kind = self.resource_kinds.get(name) if isinstance(name, str) else None
        if kind is None:
            raise RequestRefused(f"Unknown kind of resource {str(name)[:80]!r}.", field="resources")
        return kind


def _clean_id(value: Any, kind: ResourceKind) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RequestRefused(f"A {kind.noun} is named by its id.", field="resources")
    text = str(value).strip()
    if not text or len(text) > _MAX_ID_LENGTH:
        raise RequestRefused(
            f"There is no {kind.noun} {text[:80]!r} you can choose.", field="resources"
        )
    return text
