"""The errors a key-authenticated request can get, as werkzeug HTTP exceptions.

Each renders the contract's JSON body ``{"error": code, "message": sentence}`` and,
on 401 and 403, an RFC 6750 ``WWW-Authenticate: Bearer ...`` header. A host catches
or re-renders them with ``app.errorhandler(InvalidAPIKey)`` (or the base class
:class:`APIKeyError` for all of them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import Forbidden, HTTPException, TooManyRequests, Unauthorized

if TYPE_CHECKING:
    from ..service.quota_rules import QuotaDecision

__all__ = [
    "APIKeyError",
    "ExpiredAPIKey",
    "IPNotAllowed",
    "InactiveUser",
    "InsufficientScope",
    "InvalidAPIKey",
    "MissingAPIKey",
    "QuotaExceeded",
    "RateLimited",
    "ResourceNotAllowed",
    "RevokedAPIKey",
    "error_for_code",
]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class APIKeyError(HTTPException):
    """Base class of every error flask-apikeys raises for a request."""

    code: int
    error: str = "api_key_error"
    message: str = "The request could not be authenticated."
    #: RFC 6750 error code for ``WWW-Authenticate``; ``None`` sends the bare challenge.
    bearer_error: str | None = "invalid_token"

    def __init__(self, message: str | None = None, *, realm: str = "api") -> None:
        self.message = message or self.message
        self.realm = realm
        super().__init__(description=self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.error, "message": self.message}

    def challenge(self) -> str | None:
        params = [f"realm={_quote(self.realm)}"]
        if self.bearer_error is not None:
            params.append(f"error={_quote(self.bearer_error)}")
            params.append(f"error_description={_quote(self.message)}")
        return "Bearer " + ", ".join(params)

    def get_headers(self, environ: Any = None, scope: Any = None) -> list[tuple[str, str]]:
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        challenge = self.challenge()
        if challenge is not None:
            headers.append(("WWW-Authenticate", challenge))
        return headers

    def get_body(self, environ: Any = None, scope: Any = None) -> str:
        # A trailing newline, as Flask's own JSON responses have: curl output ends cleanly.
        return json.dumps(self.to_dict()) + "\n"


class MissingAPIKey(APIKeyError, Unauthorized):
    """401 ``missing_api_key``: the request carries no key."""

    code = 401
    error = "missing_api_key"
    message = "This endpoint needs an API key: send 'Authorization: Bearer <key>'."
    bearer_error = None


class InvalidAPIKey(APIKeyError, Unauthorized):
    """401 ``invalid_api_key``: malformed, a bad checksum, unknown, or two different keys."""

    code = 401
    error = "invalid_api_key"
    message = "The API key is not valid."


class RevokedAPIKey(APIKeyError, Unauthorized):
    """401 ``revoked_api_key``: revoked, or rotated and past its grace period."""

    code = 401
    error = "revoked_api_key"
    message = "The API key has been revoked."


class ExpiredAPIKey(APIKeyError, Unauthorized):
    """401 ``expired_api_key``: past its expiry."""

    code = 401
    error = "expired_api_key"
    message = "The API key has expired."


class InactiveUser(APIKeyError, Unauthorized):
    """401 ``inactive_user``: the key's owner is deactivated (``is_active`` is false)."""

    code = 401
    error = "inactive_user"
    message = "The owner of this API key is no longer active."


class InsufficientScope(APIKeyError, Forbidden):
    """403 ``insufficient_scope``: a valid key lacks a required scope; the body lists
    ``missing_scopes``.
    """

    code = 403
    error = "insufficient_scope"
    bearer_error = "insufficient_scope"

    def __init__(self, missing: Iterable[str], required: Iterable[str] = (), **kw: Any) -> None:
        self.missing = sorted(missing)
        self.required = sorted(required) or self.missing
        super().__init__(
            "The API key lacks the permission this needs: " + ", ".join(self.missing) + ".",
            **kw,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "missing_scopes": self.missing}

    def challenge(self) -> str | None:
        challenge = super().challenge()
        return f"{challenge}, scope={_quote(' '.join(self.required))}"


class IPNotAllowed(APIKeyError, Forbidden):
    """403 ``ip_not_allowed``: the client address is outside the key's allowlist."""

    code = 403
    error = "ip_not_allowed"
    message = "This API key cannot be used from your address."


class ResourceNotAllowed(APIKeyError, Forbidden):
    """403 ``resource_not_allowed``: the key is limited to other resources of this kind
    (``require_key(resource=...)``); the body names the ``resource`` kind.
    """

    code = 403
    error = "resource_not_allowed"
    bearer_error = "insufficient_scope"

    def __init__(self, kind: str, message: str | None = None, **kw: Any) -> None:
        self.kind = kind
        super().__init__(message or f"This API key cannot be used for this {kind}.", **kw)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "resource": self.kind}


class RateLimited(APIKeyError, TooManyRequests):
    """429 ``rate_limited``: over the key's limit, or too many refused keys from one address."""

    code = 429
    error = "rate_limited"
    message = "Too many requests: slow down and retry later."
    bearer_error = None

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int = 1,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> None:
        self.extra_headers = dict(headers or {})
        super().__init__(message, **kw)
        # After super(): werkzeug's TooManyRequests.__init__ resets retry_after to None.
        self.retry_after = max(1, int(retry_after))

    def challenge(self) -> str | None:
        return None

    def get_headers(self, environ: Any = None, scope: Any = None) -> list[tuple[str, str]]:
        headers = super().get_headers(environ, scope)
        headers.append(("Retry-After", str(self.retry_after)))
        headers.extend(self.extra_headers.items())
        return headers


class QuotaExceeded(APIKeyError, TooManyRequests):
    """429 ``quota_exceeded``: the key used its quota (calls per day, month or in total).

    The body adds ``limit``, ``period`` (``day``, ``month`` or ``total``) and ``reset_at``
    (ISO 8601, UTC; ``null`` for a total that is never refilled); ``Retry-After`` gives
    the seconds until then, and is left out when the quota never resets.
    """

    code = 429
    error = "quota_exceeded"
    message = "This API key has used its quota."
    bearer_error = None

    def __init__(
        self,
        message: str | None = None,
        *,
        limit: int | None = None,
        period: str | None = None,
        reset_at: dt.datetime | None = None,
        retry_after: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.limit, self.period, self.reset_at = limit, period, reset_at
        # After super(): werkzeug's TooManyRequests.__init__ resets retry_after to None.
        self.retry_after = None if retry_after is None else max(1, int(retry_after))

    @classmethod
    def refusing(cls, decision: QuotaDecision, **kw: Any) -> QuotaExceeded:
        """The error for a refusing :class:`~flask_apikeys.quotas.QuotaDecision`."""
        quota, reset = decision.quota, decision.resets_at
        if decision.unavailable:  # the storage is down and quotas fail closed
            message = "This API key's quota cannot be counted right now: retry later."
            reset = None
        elif reset is None:
            message = f"This API key has used its quota of {quota.describe()}."
        else:
            message = (
                f"This API key has used its quota of {quota.describe()}; "
                f"it starts again at {reset:%Y-%m-%d %H:%M} UTC."
            )
        return cls(
            message,
            limit=quota.limit,
            period=quota.period,
            reset_at=reset,
            retry_after=decision.retry_after,
            **kw,
        )

    def to_dict(self) -> dict[str, Any]:
        reset = self.reset_at
        return {
            **super().to_dict(),
            "limit": self.limit,
            "period": self.period,
            "reset_at": reset.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if reset else None,
        }

    def challenge(self) -> str | None:
        return None

    def get_headers(self, environ: Any = None, scope: Any = None) -> list[tuple[str, str]]:
        headers = super().get_headers(environ, scope)
        if self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        return headers


_BY_CODE: dict[str, type[APIKeyError]] = {
    cls.error: cls
    for cls in (MissingAPIKey, InvalidAPIKey, RevokedAPIKey, ExpiredAPIKey, InactiveUser)
}


def error_for_code(code: str, message: str | None = None) -> APIKeyError:
    """The exception for a service-layer authentication failure *code*."""
    return _BY_CODE.get(code, InvalidAPIKey)(message)
