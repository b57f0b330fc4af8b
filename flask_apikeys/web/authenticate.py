"""Request-time API: ``require_key``, ``current_key`` and credential extraction."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar, cast

from flask import current_app, has_request_context, request
from werkzeug.local import LocalProxy

from ..keys.format import is_well_formed
from ..keys.network import address_allowed
from ..service.verify import AuthenticationFailed, VerifiedKey
from . import signals
from .errors import (
    APIKeyError,
    InsufficientScope,
    InvalidAPIKey,
    IPNotAllowed,
    MissingAPIKey,
    QuotaExceeded,
    RateLimited,
    ResourceNotAllowed,
    error_for_code,
)
from .state import HotPath, app_keys

__all__ = ["authenticate", "current_key", "presented_key", "require_key"]

logger = logging.getLogger("flask_apikeys")

P = ParamSpec("P")
R = TypeVar("R")

# Cached on the request object, not on ``g``: an app context (and so ``g``) can
# outlive one request, e.g. in tests that keep a context pushed.
_REQUEST_ATTR = "_apikeys_verified"
#: Where ``authenticate()`` leaves the key's rate-limit decision for the response headers.
RATE_LIMIT_ATTR = "_apikeys_rate_limit"
#: Where ``authenticate()`` leaves the id of a key it found and then refused (its
#: allowlist, rate limit or quota; revoked, expired): the request log records those too.
REFUSED_KEY_ATTR = "_apikeys_refused_key_id"
_MAX_CREDENTIAL_LENGTH = 512


def refused_key_id() -> int | None:
    """The id of the key this request presented when it was found but refused."""
    if not has_request_context():
        return None
    return cast("int | None", getattr(request, REFUSED_KEY_ATTR, None))


def get_current_key() -> VerifiedKey | None:
    if not has_request_context():
        return None
    return cast("VerifiedKey | None", getattr(request, _REQUEST_ATTR, None))


#: The key that authenticated this request (a :class:`~flask_apikeys.VerifiedKey`,
#: with ``.key``, ``.owner`` and ``.scopes``), or ``None`` outside ``require_key``.
current_key: VerifiedKey = cast(VerifiedKey, LocalProxy(get_current_key))


def presented_key() -> str | None:
    """The credential the request carries, or ``None`` when it carries none.

    Raises :class:`InvalidAPIKey` for an unusable credential (empty, oversized,
    or two different keys in two headers).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return _credential(request._get_current_object(), app_keys().hot_path(app))  # type: ignore[attr-defined]


def _credential(req: Any, hot: HotPath) -> str | None:
    environ = req.environ
    found: list[str] = []
    if hot.bearer:
        authorization = environ.get("HTTP_AUTHORIZATION")
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() == "bearer":
                found.append(token.strip())
    if hot.header is not None:
        value = environ.get(hot.header)
        if value is not None:
            found.append(value.strip())
    param = hot.query_param
    if param and param in req.args:
        found.append(req.args[param].strip())
    if not found:
        return None
    if any(not value or len(value) > _MAX_CREDENTIAL_LENGTH for value in found):
        raise InvalidAPIKey(realm=hot.realm)
    if len(found) > 1 and len(set(found)) > 1:
        raise InvalidAPIKey(
            "The request carries two different API keys; send one.", realm=hot.realm
        )
    return found[0]


def authenticate() -> VerifiedKey:
    """Verify the request's key once per request and return it.

    In order: the credential's shape and checksum (garbage and typos are refused
    here, at no cost, and not counted); the key, its owner and their permissions in
    one SELECT; the key's IP allowlist; its rate limit; its quota (one atomic count, for
    keys with a quota only). Then the use is counted in memory (written later by the
    flusher). A refused well-formed key counts against
    its address's failed-authentication throttle; over it, refusals answer 429, but a
    usable key is served whatever its address did.

    Raises an :class:`~flask_apikeys.errors.APIKeyError` when there is no usable key.
    """
    current_request = request._get_current_object()  # type: ignore[attr-defined]
    cached: VerifiedKey | None = getattr(current_request, _REQUEST_ATTR, None)
    if cached is not None:
        return cached
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    ext = app_keys()
    hot = ext.hot_path(app)
    realm = hot.realm
    address = current_request.remote_addr  # the proxy's client address under ProxyFix
    try:
        secret = _credential(current_request, hot)
        if secret is None:
            raise MissingAPIKey(realm=realm)
        if not is_well_formed(secret, hot.prefix):
            raise InvalidAPIKey(realm=realm)
    except APIKeyError as exc:
        if not isinstance(exc, MissingAPIKey):
            _refused(app, exc.error, None, address)
        raise
    limits = hot.rate_limits
    service = hot.service
    try:
        verified = service.verifier.verify_well_formed(secret)
    except AuthenticationFailed as failure:
        throttled = limits.record_failure(address)
        if throttled is not None:
            # Over the address's limit of refused keys: say so, and spend nothing more
            # on it (no audit row, log line or signal). Valid keys are still served.
            raise RateLimited(
                "Too many refused API keys from your address: retry later.",
                retry_after=throttled.reset_after,
                realm=realm,
            ) from None
        key = failure.key
        _refused(app, failure.code, key, address)
        if failure.code == "expired_api_key" and key is not None and hot.audit_expired_use:
            service.keys.audit(key, "expired_use", ip=address, reason=failure.reason)
        raise error_for_code(failure.code, failure.message) from None
    allowlist = verified.ip_allowlist
    if allowlist and not address_allowed(address, allowlist):
        _refused(app, IPNotAllowed.error, verified.key, address)
        raise IPNotAllowed(realm=realm)
    decision = limits.hit_key(verified.id, verified.rate_limit)
    if decision is not None:
        if hot.rate_limit_headers:
            setattr(current_request, RATE_LIMIT_ATTR, decision)
        if not decision.allowed:
            setattr(current_request, REFUSED_KEY_ATTR, verified.id)
            headers = decision.headers() if hot.rate_limit_headers else {}
            raise RateLimited(retry_after=decision.reset_after, headers=headers, realm=realm)
    quota = verified.quota
    if quota is not None:  # only keys with a quota count, and not the rate-limited calls
        spent = service.quotas.spend_quota(quota)
        if not spent.allowed:
            setattr(current_request, REFUSED_KEY_ATTR, verified.id)
            raise QuotaExceeded.refusing(spent, realm=realm)
    setattr(current_request, _REQUEST_ATTR, verified)
    if hot.usage is not None:
        hot.usage.record(verified.id, address)
    if signals.key_authenticated.receivers:  # .key and .owner put them in the session
        signals.key_authenticated.send(
            app, key=verified.key, owner=verified.owner, scopes=verified.scopes
        )
    return verified


def _refused(app: Any, error: str, key: Any, address: str | None) -> None:
    """Tell listeners and the log that a presented key was refused (never the secret)."""
    display_prefix = key.display_prefix if key is not None else None
    if key is not None:
        setattr(request, REFUSED_KEY_ATTR, key.id)
    logger.info("API key refused: %s (%s) from %s", error, display_prefix or "unknown key", address)
    signals.authentication_failed.send(app, error=error, key=key, display_prefix=display_prefix)


def _normalise_scopes(scope: str | Iterable[str] | None) -> tuple[str, ...]:
    if scope is None:
        return ()
    if isinstance(scope, str):
        return (scope,)
    return tuple(scope)


def require_key(
    scope: str | Iterable[str] | None = None,
    *,
    resource: tuple[str, str] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Guard a view: the request needs a valid key holding every scope in *scope*.

    ``@require_key()`` accepts any valid key; ``@require_key(scope="invoice.read")``
    one scope; ``@require_key(scope=["invoice.read", "client.read"])`` all of them.
    ``resource=("client", "client_id")``: the key must also be allowed the ``client``
    named by the view argument ``client_id`` (else 403 ``resource_not_allowed``).
    Inside the view, :data:`current_key` is the key.
    """
    if callable(scope):
        raise TypeError("use @require_key() or @require_key(scope=...), with parentheses")
    required = _normalise_scopes(scope)

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        is_async = inspect.iscoroutinefunction(view)
        if resource is not None:  # a typo in the argument's name fails here, not per request
            kind, argument = resource
            params = inspect.signature(view).parameters
            if argument not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
                raise TypeError(f"require_key(resource=...): {view.__name__} has no {argument!r}")

        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if request.method != "OPTIONS":
                verified = authenticate()
                if required and not verified.scopes.issuperset(required):
                    missing = verified.missing_scopes(required)
                    raise InsufficientScope(
                        missing, required, realm=current_app.config["APIKEYS_REALM"]
                    )
                if resource is not None and not verified.allows(kind, kwargs.get(argument)):
                    raise ResourceNotAllowed(kind, realm=current_app.config["APIKEYS_REALM"])
            if is_async:
                return cast(R, current_app.ensure_sync(view)(*args, **kwargs))
            return view(*args, **kwargs)

        wrapper.__apikeys_scopes__ = required  # type: ignore[attr-defined]
        return wrapper

    return decorator


def load_user_from_request(_request: Any = None) -> Any:
    """A Flask-Login ``request_loader``: the key's owner, or ``None``.

    ``login_manager.request_loader(apikeys.load_user_from_request)`` makes
    ``current_user`` the owner on key-authenticated requests.
    """
    try:
        return authenticate().owner
    except APIKeyError:
        return None


def is_key_request() -> bool:
    """Whether the request carries any API key credential, valid or not."""
    try:
        return presented_key() is not None
    except APIKeyError:
        return True
