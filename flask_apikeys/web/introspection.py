"""RFC 7662 token introspection: another process (or language) asks whether a key is usable.

Off by default. The host mounts the blueprint and turns it on::

    from flask_apikeys.introspection import create_introspection_blueprint

    app.config["APIKEYS_INTROSPECTION"] = True
    app.register_blueprint(create_introspection_blueprint(), url_prefix="/oauth")
    # POST /oauth/introspect   token=<key>   (form-encoded)

The caller (a resource server: an MCP server, an API gateway) authenticates with a key
of its own that holds ``APIKEYS_INTROSPECTION_PERMISSION`` (``api_key.introspect``),
which a host grants to a key only by explicit choice. The answer is ``active`` with
``scope``, ``exp``, ``iat``, ``sub``, ``username``, ``client_id`` (the display prefix) and
``token_type``, or ``{"active": false}`` for anything unusable, never saying why.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request

from ..service import AuthenticationFailed, VerifiedKey
from .authenticate import authenticate
from .errors import InsufficientScope, RateLimited
from .state import app_keys

__all__ = ["create_introspection_blueprint", "introspect", "introspection_answer"]

_MAX_TOKEN_LENGTH = 512
_BEARER = "Bearer"  # RFC 6750's token type


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _epoch(value: dt.datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp())


def _usable(token: str) -> VerifiedKey | None:
    """The key *token* names if a request carrying it would be served now, else ``None``.

    Checksum (no query for a bad one), revocation, expiry, owner active, in one SELECT;
    then its own rate limit, which this answer counts as one use. A key limited to
    addresses is never active here: introspection cannot see the client's address.
    """
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    ext = app_keys()
    try:
        verified: VerifiedKey = ext.service.verifier.verify(token)
    except AuthenticationFailed:
        return None
    if verified.ip_allowlist:
        return None
    decision = ext.rate_limits().hit_key(verified.id, verified.rate_limit)
    if decision is not None and not decision.allowed:
        return None
    usage = ext.usage_buffer()
    if usage is not None:
        usage.record(verified.id)
    return verified


def introspection_answer(token: str) -> dict[str, Any]:
    """The RFC 7662 answer for *token* (inside an app context)."""
    verified = _usable(token.strip())
    if verified is None:
        return {"active": False}
    owner = verified.owner  # the username; the creation time is the key's
    answer: dict[str, Any] = {
        "active": True,
        "scope": " ".join(sorted(verified.scopes)),
        "client_id": verified.display_prefix,
        "token_type": _BEARER,
        "iat": _epoch(verified.key.created_at),
        "sub": str(verified.owner_id),
    }
    expires = _epoch(verified.key.expires_at)  # not on the hot path: one query here
    if expires is not None:
        answer["exp"] = expires
    username = getattr(owner, current_app.config["APIKEYS_USER_LOOKUP_FIELD"], None)
    if username is not None:
        answer["username"] = str(username)
    return answer


def introspect() -> Response:
    """``POST`` view: authenticate the caller, check its permission and limit, answer."""
    config = current_app.config
    if not config.get("APIKEYS_INTROSPECTION"):
        abort(404)
    caller = authenticate()  # the resource server's own key: 401/403/429 as usual
    realm = config["APIKEYS_REALM"]
    permission = config["APIKEYS_INTROSPECTION_PERMISSION"]
    if permission not in caller.scopes:
        raise InsufficientScope([permission], realm=realm)
    limit = config.get("APIKEYS_INTROSPECTION_RATE_LIMIT")
    if limit:
        decision = app_keys().rate_limits().hit_key(caller.id, limit)
        if decision is not None and not decision.allowed:
            raise RateLimited(
                "Too many introspection requests: slow down and retry later.",
                retry_after=decision.reset_after,
                headers=decision.headers(),
                realm=realm,
            )
    token = request.form.get("token")
    if token is None:
        response = jsonify(
            error="invalid_request", error_description="Send the key as the form field 'token'."
        )
        response.status_code = 400
        return _no_store(response)
    return _no_store(jsonify(introspection_answer(token)))


def create_introspection_blueprint(name: str = "apikeys_introspection") -> Blueprint:
    """A blueprint answering ``POST /introspect`` (mount it with a ``url_prefix``).

    Exempt it from a global ``CSRFProtect`` (``csrf.exempt(blueprint)``): its callers
    are servers authenticated by a key, not browsers.
    """
    blueprint = Blueprint(name, __name__)
    blueprint.add_url_rule("/introspect", view_func=introspect, methods=["POST"])
    return blueprint
