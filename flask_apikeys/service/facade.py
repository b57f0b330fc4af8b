"""The service: everything done to API keys, over a SQLAlchemy session.

Layer 3 of the architecture. Pages, the CLI and ``require_key`` all call
:class:`KeyService`; it needs no request, so scripts and background jobs can use it
too. It is made of one part per job, each in its own module:

* :mod:`~flask_apikeys.permissions` — settings, and who holds what (the host's loaders);
* :mod:`~flask_apikeys.verification` — a presented key → what it may do, on the hot path;
* :mod:`~flask_apikeys.queries` — lists and filters for the pages and the CLI;
* :mod:`~flask_apikeys.listing` — sortable orders and rotation links for the pages;
* :mod:`~flask_apikeys.lifecycle` — issue, rotate, revoke, rename, audit;
* :mod:`~flask_apikeys.restrictions` — rate limits and IP allowlists;
* :mod:`~flask_apikeys.resources` — keys limited to chosen resources of the host;
* :mod:`~flask_apikeys.leaks` — leaked keys (GitHub's reports, the CLI): revoke at once;
* :mod:`~flask_apikeys.requestlog` — each key's recent requests;
* :mod:`~flask_apikeys.policies` — organization policies (lifetime, idle expiry, permissions);
* :mod:`~flask_apikeys.expiry` — warnings before keys expire;
* :mod:`~flask_apikeys.quota_service` — quotas per day, month or in total.

The rules live in those modules: a key holds only permissions its creator holds;
per request, its effective scopes are its scopes ∩ what its owner holds *now*, and
an inactive owner's keys are refused; only the owner, an organization admin
(``api_key.manage``) or an operator (no actor, e.g. the CLI) changes a key, and every
change writes an audit event.
"""

from __future__ import annotations

from .access import Organization
from .audit_trail import AuditTrail
from .expiry import ExpiryWarnings
from .leaks import KeyLeaks
from .lifecycle import IssuedKey
from .listing import KeyListing
from .policies import KeyPolicies
from .quotas import KeyQuotas
from .requestlog import KeyRequestLog
from .resources import KeyResources
from .restrictions import KeyRestrictions
from .validation import NAME_MAX_LENGTH, RequestRefused, parse_duration, parse_expiry
from .verify import AuthenticationFailed, KeyVerification, VerifiedKey

__all__ = [
    "NAME_MAX_LENGTH",
    "AuthenticationFailed",
    "IssuedKey",
    "KeyService",
    "Organization",
    "RequestRefused",
    "VerifiedKey",
    "parse_duration",
    "parse_expiry",
]


class KeyService(
    KeyPolicies,
    ExpiryWarnings,
    AuditTrail,
    KeyLeaks,
    KeyQuotas,
    KeyRestrictions,
    KeyResources,
    KeyVerification,
    KeyListing,
    KeyRequestLog,
):
    """Issue, verify, rotate, revoke, rename and list API keys.

    Takes the arguments of :class:`~flask_apikeys.permissions.Permissions`; methods that
    change keys commit the session. ``apikeys.service`` is the one of the current app.
    """
