"""What keeps the example's answers to bad input a 4xx, and its pages locked down.

- Control characters (NUL above all: PostgreSQL refuses it in a string parameter) in
  the path, the query string or a form field answer 400 before any view runs.
- A JSON body nested too deeply to parse is invalid JSON like any other (a 400), not a
  ``RecursionError`` (a 500): see :class:`JSONProvider`.
- Errors under ``/v1`` answer JSON ``{"error": ..., "message": ...}``, unknown routes and
  wrong methods included; errors of the pages people see use the site's layout, and an
  error page that cannot be drawn falls back to a line of plain text.
- Every response carries a Content-Security-Policy (the blueprint's own, from
  ``APIKEYS_CONTENT_SECURITY_POLICY``) and the usual companions.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, Response, abort, current_app, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from flask_apikeys import APIKeyError

from .models import db

logger = logging.getLogger(__name__)

#: C0 control characters but tab, line feed and carriage return (which a textarea may
#: send), and DEL. NUL among them.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Every character of a path, a query parameter name and a form field name.
CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f]")


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, where a document nested deeper than the parser goes (``[[[...]]]``
    1,100 levels deep) is invalid JSON: a ``ValueError``, so ``request.get_json()``
    answers 400 and ``get_json(silent=True)`` gives ``None``, instead of the
    ``RecursionError`` (a 500) the parser raises. Free for every other document."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("The JSON document is nested too deeply.") from None


def init_app(app: Flask) -> None:
    app.json = JSONProvider(app)
    app.before_request(reject_control_characters)
    app.after_request(security_headers)
    app.register_error_handler(HTTPException, http_error)


def is_api_request() -> bool:
    return request.path == "/v1" or request.path.startswith("/v1/")


def reject_control_characters() -> None:
    """400 for control characters anywhere a view would read them."""
    if CONTROL_OR_NEWLINE.search(request.path):
        abort(400, "The path contains a control character.")
    for where, data in (("query string", request.args), ("form", request.form)):
        for name, value in data.items(multi=True):
            if CONTROL_OR_NEWLINE.search(name) or CONTROL.search(value):
                abort(400, f"A {where} field contains a control character.")


def security_headers(response: Response) -> Response:
    policy = current_app.config.get("APIKEYS_CONTENT_SECURITY_POLICY")
    if policy:
        response.headers.setdefault("Content-Security-Policy", policy)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def http_error(error: HTTPException) -> ResponseReturnValue:
    """JSON under /v1, the site's layout elsewhere; 500s from unhandled errors included."""
    if error.code is None or error.code < 400:
        return error
    if isinstance(error, APIKeyError):
        return error.get_response()
    headers = {k: v for k, v in error.get_headers() if k.lower() in ("allow", "retry-after")}
    if error.code >= 500:  # a failed statement may have left the transaction unusable
        db.session.rollback()
    if is_api_request():
        code = (error.name or "error").lower().replace(" ", "_")
        return jsonify(error=code, message=error.description), error.code, headers
    try:
        # Werkzeug's own sentence for the status, or the one the app gave (abort(404, ...))
        told = error.description if error.description != type(error).description else None
        page = render_template("error.html", error=error, told=told)
    except Exception:  # the page itself failed (a database down): a plain answer
        logger.exception("Could not render the error page for %s", error.code)
        text = f"{error.code} {error.name}: {error.description}\n"
        return Response(text, error.code, headers, mimetype="text/plain")
    return page, error.code, headers
