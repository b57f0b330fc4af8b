"""The key-management pages: a blueprint the host mounts where it likes.

::

    from flask_apikeys.views import create_blueprint

    app.register_blueprint(create_blueprint(), url_prefix="/settings/api-keys")

One module per page group: :mod:`.keys` (my keys, create, show once),
:mod:`.detail` (one key), :mod:`.organization` (the admin pages); :mod:`.common` holds
what they share. Layer 5 of the architecture: the views only read forms, call
:class:`~flask_apikeys.KeyService` and render templates. Only a signed-in
Flask-Login session reaches them; a request carrying an API key is refused even
when a request loader would accept it. Other people's keys answer 404. A POST
whose body is not an HTML form's (JSON, text, ...) answers 415 before any view runs.
"""

from __future__ import annotations

from flask import Blueprint

from ..forms import form_body_only
from .audit import audit, audit_csv
from .common import private_headers, security_headers, session_only, template_helpers
from .detail import detail, ip_allowlist, rate_limit, rename, resources, revoke, rotate
from .keys import index, new
from .organization import offboard, organization
from .policy import policy
from .quota import quota, quota_helpers
from .resources import resource_helpers
from .restrictions import restriction_helpers, restrictions

__all__ = ["blueprint", "create_blueprint"]


def create_blueprint(name: str = "apikeys") -> Blueprint:
    """Make the pages' blueprint; register it with ``url_prefix=`` of your choice.

    Templates live under ``apikeys/`` and extend ``APIKEYS_BASE_TEMPLATE``; a
    same-named file in the host's own ``templates/apikeys/`` wins over ours.
    """
    bp = Blueprint(
        name,
        "flask_apikeys",  # templates/ and static/ of the package
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    bp.before_request(session_only)
    bp.before_request(form_body_only)  # forms only: never a JSON body read as one
    bp.after_request(private_headers)
    bp.after_request(security_headers)
    bp.context_processor(template_helpers)
    bp.add_url_rule("/", "index", index)
    bp.add_url_rule("/new", "new", new, methods=["GET", "POST"])
    bp.add_url_rule("/<int:key_id>", "detail", detail)
    bp.add_url_rule("/<int:key_id>/rename", "rename", rename, methods=["POST"])
    bp.add_url_rule("/<int:key_id>/rotate", "rotate", rotate, methods=["POST"])
    bp.add_url_rule("/<int:key_id>/revoke", "revoke", revoke, methods=["GET", "POST"])
    bp.add_url_rule("/<int:key_id>/ip-allowlist", "ip_allowlist", ip_allowlist, methods=["POST"])
    bp.add_url_rule("/<int:key_id>/rate-limit", "rate_limit", rate_limit, methods=["POST"])
    bp.add_url_rule("/<int:key_id>/quota", "quota", quota, methods=["POST"])
    bp.add_url_rule("/<int:key_id>/restrictions", "restrictions", restrictions, methods=["POST"])
    bp.context_processor(restriction_helpers)
    bp.context_processor(quota_helpers)
    bp.add_url_rule("/<int:key_id>/resources", "resources", resources, methods=["POST"])
    bp.context_processor(resource_helpers)
    bp.add_url_rule("/organization", "organization", organization)
    bp.add_url_rule("/organization/<org_id>/policy", "policy", policy, methods=["GET", "POST"])
    bp.add_url_rule("/organization/audit", "audit", audit)
    bp.add_url_rule("/organization/audit.csv", "audit_csv", audit_csv)
    bp.add_url_rule(
        "/organization/<org_id>/users/<user_id>/revoke-all",
        "offboard",
        offboard,
        methods=["GET", "POST"],
    )
    return bp


#: The pages' blueprint, named ``apikeys``; use :func:`create_blueprint` for another name.
blueprint = create_blueprint()
