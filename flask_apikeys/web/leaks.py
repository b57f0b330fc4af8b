"""The leak-report endpoint: GitHub's secret-scanning partner format, mounted by the host.

::

    from flask_apikeys.views.leaks import create_leak_blueprint

    app.register_blueprint(create_leak_blueprint(), url_prefix="/security")
    # POST /security/github-secret-scanning   (the URL to give GitHub)

Separate from the pages: its caller is a server, and its only authority is the
ECDSA signature of the body (:mod:`flask_apikeys.leak_signatures`). A browser session, a
cookie or an API key count for nothing here, so Flask-WTF's ``CSRFProtect``, when the app
has one at registration, is told to leave the blueprint alone. Every refusal is JSON
``{"error", "message"}`` with a 4xx (503 while GitHub's keys cannot be fetched) and
changes nothing; the answer to a verified report is GitHub's feedback list.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from ..service.leak_signatures import GitHubPublicKeys, check_public_keys_url, require_cryptography
from ..service.leaks import LeakReportRefused, parse_leak_report
from . import config as _config
from .state import app_keys

if TYPE_CHECKING:
    from flask.blueprints import BlueprintSetupState

__all__ = ["create_leak_blueprint", "public_keys", "report_leak"]

logger = logging.getLogger("flask_apikeys")

_STATE = "apikeys_leaks"  # app.extensions key of the app's GitHubPublicKeys


def create_leak_blueprint(name: str = "apikeys_leaks") -> Blueprint:
    """A blueprint answering ``POST /github-secret-scanning`` (give it a ``url_prefix``).

    Raises :class:`ImportError` when ``cryptography`` is missing (``pip install
    'flask-apikeys[leaks]'``), and :class:`RuntimeError` at registration when
    ``APIKEYS_LEAK_PUBLIC_KEYS_URL`` is not ``https://`` (see ``APIKEYS_LEAK_ALLOW_HTTP``).
    """
    require_cryptography()
    blueprint = Blueprint(name, __name__)
    blueprint.add_url_rule(
        "/github-secret-scanning", "github_secret_scanning", report_leak, methods=["POST"]
    )
    blueprint.record_once(_on_register)
    return blueprint


def _on_register(state: BlueprintSetupState) -> None:
    config = state.app.config
    check_public_keys_url(
        config.get(
            "APIKEYS_LEAK_PUBLIC_KEYS_URL", _config.DEFAULTS["APIKEYS_LEAK_PUBLIC_KEYS_URL"]
        ),
        allow_http=bool(config.get("APIKEYS_LEAK_ALLOW_HTTP")),
    )
    csrf = state.app.extensions.get("csrf")  # Flask-WTF's CSRFProtect, when the app has one
    if csrf is not None:
        csrf.exempt(state.blueprint)


def public_keys(app: Flask) -> GitHubPublicKeys:
    """*app*'s cache of GitHub's public keys, made from its settings at first use."""
    keys: GitHubPublicKeys | None = app.extensions.get(_STATE)
    if keys is None:
        config = app.config
        keys = GitHubPublicKeys(
            config["APIKEYS_LEAK_PUBLIC_KEYS_URL"],
            allow_http=bool(config["APIKEYS_LEAK_ALLOW_HTTP"]),
            token=config["APIKEYS_LEAK_PUBLIC_KEYS_BEARER"] or None,
            refresh_interval=_config.as_seconds(
                config["APIKEYS_LEAK_KEYS_REFRESH_INTERVAL"], "APIKEYS_LEAK_KEYS_REFRESH_INTERVAL"
            ),
        )
        keys = app.extensions.setdefault(_STATE, keys)
    return keys


def _body(limit: int) -> bytes:
    """The raw body, at most *limit* bytes (the signature covers these very bytes)."""
    too_large = LeakReportRefused(
        413, "report_too_large", f"The report is larger than {limit} bytes."
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        body = request.stream.read(limit + 1)
    except RequestEntityTooLarge:  # the app's MAX_CONTENT_LENGTH
        raise too_large from None
    except BadRequest:  # the client went away mid-body
        raise LeakReportRefused(400, "invalid_report", "The report could not be read.") from None
    if len(body) > limit:
        raise too_large
    return body


def _answer(payload: Any, status: int = 200) -> Response:
    response = jsonify(payload)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def report_leak() -> Response:
    """``POST`` view: check size and signature, then revoke and answer GitHub's feedback."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        body = _body(int(app.config["APIKEYS_LEAK_MAX_REPORT_BYTES"]))
        public_keys(app).verify(
            body,
            request.headers.get("Github-Public-Key-Identifier"),
            request.headers.get("Github-Public-Key-Signature"),
        )
        reports = parse_leak_report(body)
    except LeakReportRefused as exc:
        logger.info(
            "leak report from %s refused: %s (%s)", request.remote_addr, exc.code, exc.status
        )
        response = _answer({"error": exc.code, "message": exc.message}, exc.status)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    feedback = app_keys(app).service.leaks.handle_leak_report(reports, ip=request.remote_addr)
    ours = sum(1 for entry in feedback if entry["label"] == "true_positive")
    logger.info(
        "leak report from %s: %d match(es), %d of them our keys",
        request.remote_addr,
        len(feedback),
        ours,
    )
    return _answer(feedback)
