"""The service: everything done to API keys, over a SQLAlchemy session, without Flask.

:class:`KeyService` is a small facade over parts that share one
:class:`~flask_apikeys.service.context.ServiceContext`; each part is one job, in a module
of its own, and a feature joins the core through the context's extension points, never
by overriding a method of another part.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from .audit_trail import AuditTrail
from .context import ServiceContext
from .expiry import ExpiryWarnings
from .leaks import KeyLeaks
from .lifecycle import KeyLifecycle
from .listing import KeyListing
from .policies import KeyPolicies
from .queries import KeyQueries
from .quotas import KeyQuotas
from .requestlog import KeyRequestLog
from .resources import KeyResources
from .restrictions import KeyRestrictions
from .verify import KeyVerification

__all__ = ["KeyService"]


class KeyService:
    """Issue, verify, rotate, revoke, rename and list API keys, through its parts:

    =========================  ======================================================
    ``service.context``        settings, the host's loaders, who holds what
    ``service.keys``           issue, rotate, revoke, rename (:mod:`.lifecycle`)
    ``service.queries``        lists, filters, pages, events, usage (:mod:`.queries`)
    ``service.listing``        keyset pages, counts, policy marks, rotation links
    ``service.verifier``       a presented secret → a ``VerifiedKey`` (:mod:`.verify`)
    ``service.resources``      keys limited to chosen resources of the host
    ``service.quotas``         quotas per day, month or in total
    ``service.policies``       organization policies
    ``service.restrictions``   rate limits and IP allowlists
    ``service.audit_trail``    an organization's audit trail
    ``service.leaks``          leaked keys, revoked at once
    ``service.expiry``         warnings before keys expire
    ``service.requests``       each key's recent requests
    =========================  ======================================================

    Takes the arguments of :class:`~flask_apikeys.service.context.ServiceContext`;
    methods that change keys commit the session. ``apikeys.service`` is the one of the
    current app. The parts are made in this order, which is the order in which they
    join the extension points.
    """

    def __init__(self, *args: Any, **settings: Any) -> None:
        self.context = context = ServiceContext(*args, **settings)
        self.queries = KeyQueries(context)
        self.listing = KeyListing(context, self.queries)
        self.verifier = KeyVerification(context)
        self.keys = KeyLifecycle(context, self.queries)
        self.quotas = KeyQuotas(context)
        self.resources = KeyResources(context)
        self.policies = KeyPolicies(context, self.queries)
        self.restrictions = KeyRestrictions(context)
        self.audit_trail = AuditTrail(context, self.queries)
        self.leaks = KeyLeaks(context, self.queries, self.verifier)
        self.expiry = ExpiryWarnings(context, self.queries)
        self.requests = KeyRequestLog(context)

    @property
    def session(self) -> Any:
        """The SQLAlchemy session the service works in."""
        return self.context.session

    if not TYPE_CHECKING:  # type checkers see only the parts

        def __getattr__(self, name: str) -> Any:
            part = _PART_OF.get(name)
            if part is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            warnings.warn(
                f"KeyService.{name} is deprecated: use service.{part}.{name} (goes in 0.4)",
                DeprecationWarning,
                stacklevel=2,
            )
            return getattr(getattr(self, part), name)


#: The part that answers each name the service answered itself until 0.3.
_PART_OF = {
    name: part
    for part, cls in (
        ("context", ServiceContext),
        ("queries", KeyQueries),
        ("listing", KeyListing),
        ("verifier", KeyVerification),
        ("keys", KeyLifecycle),
        ("quotas", KeyQuotas),
        ("resources", KeyResources),
        ("policies", KeyPolicies),
        ("restrictions", KeyRestrictions),
        ("audit_trail", AuditTrail),
        ("leaks", KeyLeaks),
        ("expiry", ExpiryWarnings),
        ("requests", KeyRequestLog),
    )
    for name in dir(cls)
    if not name.startswith("_")
}
# Settings the context holds as attributes, and the host's resource kinds.
_PART_OF.update(
    {
        name: "context"
        for name in (
            "models",
            "prefix",
            "pepper",
            "create_permission",
            "manage_permission",
            "known_permissions",
            "max_lifetime",
            "creation_policy",
            "clock",
            "sensitive_permissions",
            "grantable_sensitive_permissions",
            "user_pk",
            "extensions",
        )
    }
)
_PART_OF["resource_kinds"] = "resources"
