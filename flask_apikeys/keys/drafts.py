"""What the host's creation policy sees and may answer.

Pure: no Flask, no database. ``@apikeys.creation_policy`` registers
``policy(user, organization_id)`` or ``policy(user, organization_id, key)``:

* ``key`` is ``None`` when a page asks whether *user* may create keys at all (before
  showing the create form), and a :class:`KeyDraft` when a particular key is asked for
  (``KeyService.issue``, a change of the key's resources), so a plan can allow
  "Read-only" and "Full access" but refuse permissions chosen one by one;
* the policy answers ``None`` (allowed), a message, or a :class:`Refusal`: a message
  with a link the pages show beside it, e.g. to the host's pricing page.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CreationPolicy", "KeyDraft", "Refusal", "policy_with_draft"]

#: ``policy(user, organization_id, key)``: a message refuses, ``None`` allows.
CreationPolicy = Callable[[Any, Any, "KeyDraft | None"], "str | None"]

#: A link the pages may show: a path of this site, or an http(s) URL. Nothing that a
#: browser would read as another scheme (``javascript:``) or another host (``//``, ``/\``).
_SAFE_LINK = re.compile(
    r"(?:/(?![/\\])|https?://[^/\\\s\x00-\x1f\x7f?#@]+(?:[/?#]|\Z))[^\s\\\x00-\x1f\x7f]*\Z"
)


@dataclass(frozen=True)
class KeyDraft:
    """The key a creation (or a change of its resources) asks for, as a policy sees it.

    ``read_only`` is true when the permissions are exactly every ``*.read`` permission
    the owner may grant (the pages' "Read-only" choice).
    """

    scopes: frozenset[str]
    full_access: bool = False
    read_only: bool = False
    #: The resources the key is limited to, by kind (``None``: not limited).
    resources: Mapping[str, tuple[str, ...]] | None = field(default=None)

    @property
    def access(self) -> Literal["full", "read", "custom"]:
        """``"full"``, ``"read"`` (the Read-only choice) or ``"custom"`` (chosen one by one)."""
        if self.full_access:
            return "full"
        return "read" if self.read_only else "custom"

    @classmethod
    def of(
        cls,
        scopes: Collection[str],
        *,
        full_access: bool,
        readable: Collection[str],
        resources: Mapping[str, Collection[str]] | None = None,
    ) -> KeyDraft:
        """The draft of a key with *scopes*, whose owner may grant the *readable* ``*.read``
        permissions."""
        chosen = frozenset([scopes] if isinstance(scopes, str) else scopes)
        read_only = not full_access and bool(chosen) and chosen == frozenset(readable)
        limited = None
        if resources:
            limited = {kind: tuple(ids) for kind, ids in resources.items()}
        return cls(chosen, full_access, read_only, limited)


class Refusal(str):
    """A policy's refusal with a link the pages show beside the message::

        return Refusal("API keys are available on paid plans.",
                       link="/billing", link_text="Upgrade")

    *link* is the host's own: a path of this site or an http(s) URL (anything else
    raises :class:`ValueError`), never taken from the request.
    """

    link: str | None
    link_text: str

    def __new__(
        cls, message: str, *, link: str | None = None, link_text: str = "Upgrade"
    ) -> Refusal:
        if link is not None and not _SAFE_LINK.match(link):
            raise ValueError(f"a refusal's link must be a path or an http(s) URL, not {link!r}")
        refusal = super().__new__(cls, message)
        refusal.link = link
        refusal.link_text = link_text
        return refusal


def policy_with_draft(policy: Callable[..., Any] | None) -> CreationPolicy | None:
    """*policy* as a three-argument policy: one that takes two is never shown the key."""
    if policy is None:
        return None
    try:
        inspect.signature(policy).bind(None, None, None)
    except (TypeError, ValueError):  # takes two arguments (or shows no signature)
        two = policy

        def without_draft(user: Any, organization_id: Any, key: KeyDraft | None) -> Any:
            return two(user, organization_id)

        return without_draft
    return policy
