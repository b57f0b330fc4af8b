"""OpenAPI for key-guarded routes: security schemes, requirements, error responses.

Everything here is a plain ``dict`` any generator can merge, read from an app's
configuration (``APIKEYS_BEARER``, ``APIKEYS_HEADER``, ``APIKEYS_QUERY_PARAM``,
``APIKEYS_REALM``, ``APIKEYS_PREFIX``, ``APIKEYS_PERMISSIONS``) and from the scopes
``@require_key`` leaves on each view (``view.__apikeys_scopes__``):

- :func:`security_schemes`: ``components.securitySchemes``;
- :func:`components`: those schemes plus the error schemas and responses;
- :func:`operation`: what one guarded operation adds (``security``, ``401``/``403``/``429``);
- :func:`guarded_routes`: every guarded ``(path, method, scopes)`` of an app;
- :func:`document`: a whole minimal OpenAPI document of an app's guarded routes;
- :func:`apply`: the keys added to a document another generator made;
- :class:`APIKeysPlugin`: an apispec plugin (flask-smorest, APIFlask) that does it all.

See ``docs/openapi.md``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from ..keys.format import BODY_LENGTH
from ..web.config import DEFAULTS

__all__ = [
    "BEARER_SCHEME",
    "HEADER_SCHEME",
    "QUERY_SCHEME",
    "GuardedRoute",
    "apply",
    "components",
    "document",
    "error_responses",
    "guarded_routes",
    "merge_operation",
    "openapi_path",
    "operation",
    "rate_limit_headers",
    "security_requirement",
    "security_schemes",
]

#: Names of the security schemes in ``components.securitySchemes``.
BEARER_SCHEME = "APIKeyBearer"
HEADER_SCHEME = "APIKeyHeader"
QUERY_SCHEME = "APIKeyQuery"

#: Names of the reusable components (``#/components/schemas/...``, ``responses``).
ERROR_SCHEMA = "APIKeyError"
FORBIDDEN_SCHEMA = "APIKeyForbidden"
RESPONSE_NAMES = {
    "401": "APIKeyUnauthorized",
    "403": "APIKeyForbidden",
    "429": "APIKeyRateLimited",
}
_METHODS = ("get", "put", "post", "delete", "patch")  # HEAD and OPTIONS never need a key
_CONVERTER_TYPES = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
}
_RULE_PARAMETER = re.compile(r"<(?:(?P<converter>[^:<>(]+)(?:\([^<>]*\))?:)?(?P<name>[^<>:]+)>")


def _config(app: Flask | None) -> Mapping[str, Any]:
    cfg = (app or current_app).config
    return {name: cfg.get(name, default) for name, default in DEFAULTS.items()}


def _is_31(openapi_version: str) -> bool:
    return tuple(int(part) for part in openapi_version.split(".")[:2]) >= (3, 1)


def security_schemes(app: Flask | None = None) -> dict[str, dict[str, Any]]:
    """``components.securitySchemes`` for *app* (default: the current app).

    ``APIKeyBearer`` (``Authorization: Bearer <key>``) unless ``APIKEYS_BEARER`` is
    false, ``APIKeyHeader`` (the ``APIKEYS_HEADER`` header) unless it is empty, and
    ``APIKeyQuery`` only when ``APIKEYS_QUERY_PARAM`` is set.
    """
    cfg = _config(app)
    shape = f"`{cfg['APIKEYS_PREFIX']}_` followed by {BODY_LENGTH} letters and digits"
    vocabulary = dict(cfg["APIKEYS_PERMISSIONS"] or {})
    scopes = "".join(f"\n- `{name}`: {text}" for name, text in sorted(vocabulary.items()))
    tail = f" (realm `{cfg['APIKEYS_REALM']}`): {shape}." + (
        f"\n\nScopes a key can hold:{scopes}" if scopes else ""
    )
    schemes: dict[str, dict[str, Any]] = {}
    if cfg["APIKEYS_BEARER"]:
        schemes[BEARER_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": f"{cfg['APIKEYS_PREFIX']}_<random><checksum>",
            "description": "An API key in `Authorization: Bearer <key>`" + tail,
        }
    if cfg["APIKEYS_HEADER"]:
        header = str(cfg["APIKEYS_HEADER"])
        schemes[HEADER_SCHEME] = {
            "type": "apiKey",
            "in": "header",
            "name": header,
            "description": f"An API key in `{header}: <key>`" + tail,
        }
    if cfg["APIKEYS_QUERY_PARAM"]:
        param = str(cfg["APIKEYS_QUERY_PARAM"])
        schemes[QUERY_SCHEME] = {
            "type": "apiKey",
            "in": "query",
            "name": param,
            "description": f"An API key in the query string (`?{param}=<key>`)" + tail,
        }
    return schemes


def security_requirement(
    scopes: Iterable[str] = (), app: Flask | None = None, *, openapi_version: str = "3.1.0"
) -> list[dict[str, list[str]]]:
    """An operation's ``security``: any one of the schemes, each with *scopes*.

    OpenAPI 3.0 allows scopes only on OAuth2 schemes, so there the lists are empty and
    the scopes go to the operation's ``x-apikeys-scopes`` (see :func:`operation`).
    """
    listed = sorted(scopes) if _is_31(openapi_version) else []
    # Any one alternative suffices, so order means nothing to OpenAPI; the header scheme
    # goes first because schemathesis judges a request's auth by the first alternative
    # it carries, and an Authorization of another scheme beside a valid X-API-Key
    # (a proxy's Basic credentials, say) is rightly ignored, not refused.
    names = sorted(security_schemes(app), key=lambda name: name != HEADER_SCHEME)
    return [{name: list(listed)} for name in names]


def _error_schema(forbidden: bool = False) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "error": {
            "type": "string",
            "description": "A stable code, e.g. `missing_api_key`, `invalid_api_key`, "
            "`revoked_api_key`, `expired_api_key`, `inactive_user`, `insufficient_scope`, "
            "`resource_not_allowed`, `ip_not_allowed`, `rate_limited`, `quota_exceeded`.",
        },
        "message": {"type": "string", "description": "A sentence for a person."},
    }
    if forbidden:
        properties["missing_scopes"] = {
            "type": "array",
            "items": {"type": "string"},
            "description": "With `insufficient_scope`: the scopes the key lacks.",
        }
    return {"type": "object", "required": ["error", "message"], "properties": properties}


def _header(description: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


def rate_limit_headers() -> dict[str, dict[str, Any]]:
    """The ``RateLimit-*`` headers sent to keys that have a rate limit (optional)."""
    integer = {"type": "integer", "minimum": 0}
    return {
        "RateLimit-Limit": _header("Requests allowed in the key's window.", integer, False),
        "RateLimit-Remaining": _header("Requests left in the window.", integer, False),
        "RateLimit-Reset": _header("Seconds until the window has room again.", integer, False),
    }


def error_responses(app: Flask | None = None, *, refs: bool = False) -> dict[str, dict[str, Any]]:
    """The ``401``, ``403`` and ``429`` a guarded operation can answer, inline.

    With *refs*, each is a ``$ref`` to ``#/components/responses/...`` (see
    :func:`components`) instead.
    """
    if refs:
        return {
            code: {"$ref": f"#/components/responses/{name}"}
            for code, name in RESPONSE_NAMES.items()
        }
    realm = _config(app)["APIKEYS_REALM"]
    string = {"type": "string"}

    def body(forbidden: bool = False) -> dict[str, Any]:
        return {"application/json": {"schema": _error_schema(forbidden)}}

    return {
        "401": {
            "description": "No API key, or one that is invalid, revoked, expired or whose "
            "owner is inactive.",
            "headers": {
                "WWW-Authenticate": _header(
                    f'RFC 6750 challenge, e.g. `Bearer realm="{realm}"`.', string, True
                )
            },
            "content": body(),
        },
        "403": {
            "description": "The key lacks a required scope (`insufficient_scope`, with "
            "`missing_scopes`), is limited to other resources (`resource_not_allowed`) or is "
            "used from an address outside its allowlist (`ip_not_allowed`).",
            "headers": {
                "WWW-Authenticate": _header(
                    "RFC 6750 challenge on the key errors, e.g. "
                    f'`Bearer realm="{realm}", error="insufficient_scope", scope="..."`.',
                    string,
                    False,
                )
            },
            "content": body(forbidden=True),
        },
        "429": {
            "description": "Over the key's rate limit (`rate_limited`) or quota (`quota_exceeded`, "
            "with `reset_at`), or too many refused keys from this address.",
            "headers": {
                "Retry-After": _header(  # none for a spent quota that never resets
                    "Seconds to wait before retrying.", {"type": "integer", "minimum": 1}, False
                ),
                **rate_limit_headers(),
            },
            "content": body(),
        },
    }


def components(app: Flask | None = None) -> dict[str, dict[str, Any]]:
    """``components`` to merge: security schemes, error schemas and error responses."""
    responses = error_responses(app)
    for code, response in responses.items():
        schema = FORBIDDEN_SCHEMA if code == "403" else ERROR_SCHEMA
        response["content"]["application/json"]["schema"] = {
            "$ref": f"#/components/schemas/{schema}"
        }
    return {
        "securitySchemes": security_schemes(app),
        "schemas": {ERROR_SCHEMA: _error_schema(), FORBIDDEN_SCHEMA: _error_schema(True)},
        "responses": {RESPONSE_NAMES[code]: response for code, response in responses.items()},
    }


def operation(
    scopes: Iterable[str] = (),
    app: Flask | None = None,
    *,
    openapi_version: str = "3.1.0",
    refs: bool = False,
) -> dict[str, Any]:
    """What a route guarded by ``@require_key(scope=scopes)`` adds to its operation.

    ``security``, ``x-apikeys-scopes`` and ``responses`` (``401``, ``403``, ``429``;
    ``$ref``\\ s to :func:`components` with *refs*, else inline). Merge it into an
    operation with :func:`merge_operation`, which keeps what the operation already has.
    """
    required = sorted(scopes)
    needs = ", ".join(f"`{scope}`" for scope in required) if required else "any valid key"
    return {
        "description": f"Needs an API key: {needs}.",
        "security": security_requirement(required, app, openapi_version=openapi_version),
        "x-apikeys-scopes": required,
        "responses": error_responses(app, refs=refs),
    }


def merge_operation(target: dict[str, Any], addition: Mapping[str, Any]) -> dict[str, Any]:
    """Merge :func:`operation`'s *addition* into the operation *target*, in place.

    What *target* already documents wins (its own ``security``, a ``401`` of its own);
    the description is appended to; ``2xx`` responses gain the optional ``RateLimit-*``
    headers.
    """
    extra = copy.deepcopy(dict(addition))
    note = extra.pop("description", None)
    if note:
        own = target.get("description")
        target["description"] = f"{own}\n\n{note}" if own else note
    responses = target.setdefault("responses", {})
    for code, response in responses.items():
        if str(code).startswith("2") and isinstance(response, dict) and "$ref" not in response:
            headers = response.setdefault("headers", {})
            for name, header in rate_limit_headers().items():
                headers.setdefault(name, header)
    for code, response in extra.pop("responses", {}).items():
        responses.setdefault(code, response)
    for key, value in extra.items():
        target.setdefault(key, value)
    return target


def openapi_path(rule: str) -> str:
    """``/v1/items/<int:item_id>`` as an OpenAPI path template, ``/v1/items/{item_id}``."""
    return _RULE_PARAMETER.sub(lambda m: "{" + m.group("name") + "}", rule)


@dataclass(frozen=True)
class GuardedRoute:
    """One operation guarded by ``@require_key``."""

    path: str  #: OpenAPI template, e.g. ``/v1/items/{item_id}``
    method: str  #: lower case, e.g. ``get``
    endpoint: str
    scopes: tuple[str, ...]
    parameters: tuple[dict[str, Any], ...]  #: the path parameters
    view: Any


def _scopes_of(view: Any, method: str) -> tuple[str, ...] | None:
    scopes = getattr(view, "__apikeys_scopes__", None)
    if scopes is None:  # a MethodView whose methods are decorated one by one
        handler = getattr(getattr(view, "view_class", None), method, None)
        scopes = getattr(handler, "__apikeys_scopes__", None)
    return None if scopes is None else tuple(scopes)


def guarded_routes(app: Flask | None = None) -> Iterator[GuardedRoute]:
    """Every ``(path, method)`` of *app* whose view is guarded by ``@require_key``."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        view = app.view_functions.get(rule.endpoint)
        parameters = tuple(
            {
                "name": match.group("name"),
                "in": "path",
                "required": True,
                "schema": dict(_CONVERTER_TYPES.get(match.group("converter") or "", {}))
                or {"type": "string"},
            }
            for match in _RULE_PARAMETER.finditer(rule.rule)
        )
        for method in _METHODS:
            if method.upper() not in (rule.methods or ()):
                continue
            scopes = _scopes_of(view, method)
            if scopes is not None:
                yield GuardedRoute(
                    openapi_path(rule.rule), method, rule.endpoint, scopes, parameters, view
                )


def document(
    app: Flask | None = None,
    *,
    title: str = "API",
    version: str = "1.0.0",
    openapi_version: str = "3.1.0",
    path_prefix: str = "",
) -> dict[str, Any]:
    """A minimal OpenAPI document of *app*'s guarded routes (under *path_prefix*).

    Each operation has its path parameters, a summary from the view's docstring, the
    key's ``security`` and its error responses; add your success responses and bodies
    to ``doc["paths"][path][method]``.
    """
    paths: dict[str, dict[str, Any]] = {}
    for route in guarded_routes(app):
        if route.path.startswith(path_prefix):
            op: dict[str, Any] = {"operationId": f"{route.method}_{route.endpoint}"}
            op["operationId"] = op["operationId"].replace(".", "_")
            summary = (getattr(route.view, "__doc__", None) or "").strip().split("\n")[0]
            if summary:
                op["summary"] = summary
            if route.parameters:
                op["parameters"] = [dict(p) for p in route.parameters]
            paths.setdefault(route.path, {})[route.method] = op
    doc = {"openapi": openapi_version, "info": {"title": title, "version": version}}
    return apply({**doc, "paths": paths}, app)


def apply(doc: dict[str, Any], app: Flask | None = None) -> dict[str, Any]:
    """Add the keys to an OpenAPI document *doc* made by any generator, in place.

    Adds :func:`components` (keeping same-named ones of *doc*) and merges
    :func:`operation` into each operation of *doc* that is a guarded route of *app*.
    """
    version = str(doc.get("openapi", "3.1.0"))
    parts = doc.setdefault("components", {})
    for section, items in components(app).items():
        if not isinstance(parts.get(section), dict):  # absent, or None (flask-openapi3)
            parts[section] = {}
        for name, item in items.items():
            target = parts[section]
            target.setdefault(name, item)
    for route in guarded_routes(app):
        op = doc.get("paths", {}).get(route.path, {}).get(route.method)
        if isinstance(op, dict):
            merge_operation(op, operation(route.scopes, app, openapi_version=version, refs=True))
    return doc
