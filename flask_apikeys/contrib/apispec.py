"""The apispec plugin: flask-smorest and APIFlask document ``@require_key`` routes.

Needs apispec (``pip install 'flask-apikeys[openapi]'``); also importable as
``flask_apikeys.openapi.APIKeysPlugin`` (deprecated).
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec, BasePlugin
from flask import Flask, current_app

from .openapi import RESPONSE_NAMES, components, guarded_routes, merge_operation, operation

__all__ = ["APIKeysPlugin"]


class APIKeysPlugin(BasePlugin):
    """An apispec plugin: flask-smorest and APIFlask document ``@require_key`` routes.

    It registers the security schemes and error components when the spec is made and
    merges :func:`operation` into each operation of a guarded route. Give it the app
    (``APIKeysPlugin(app)``) when the spec is built outside an app context
    (flask-smorest's ``Api(app)``); APIFlask builds its spec inside one.
    """

    def __init__(self, app: Flask | None = None) -> None:
        self.app = app
        self.openapi_version = "3.1.0"

    def init_app(self, app: Flask) -> None:
        self.app = app

    def _app(self) -> Flask:
        if self.app is not None:
            return self.app
        try:
            return current_app._get_current_object()  # type: ignore[attr-defined, no-any-return]
        except RuntimeError:
            raise RuntimeError(
                "APIKeysPlugin needs the app: APIKeysPlugin(app), or build the spec "
                "inside an app context."
            ) from None

    def init_spec(self, spec: APISpec) -> None:
        super().init_spec(spec)
        self.openapi_version = str(spec.openapi_version)
        app = self._app()
        parts = components(app)
        for name, scheme in parts["securitySchemes"].items():
            spec.components.security_scheme(name, scheme)
        for name, schema in parts["schemas"].items():
            spec.components.schema(name, schema)
        for name, response in parts["responses"].items():
            spec.components.response(name, response)

    def operation_helper(
        self,
        path: str | None = None,
        operations: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not path or not operations:
            return
        app = self._app()
        guarded = {(r.path, r.method): r for r in guarded_routes(app)}
        for method, op in operations.items():
            route = guarded.get((path, method.lower()))
            if route is not None and isinstance(op, dict):
                addition = operation(
                    route.scopes, app, openapi_version=self.openapi_version, refs=False
                )
                addition["responses"] = dict(RESPONSE_NAMES)  # apispec resolves these names
                merge_operation(op, addition)
