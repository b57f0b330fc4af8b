"""Generated requests for the example app, from one ``random.Random``: the same seed makes
the same requests, so every failure has a reproducer.

A request is a :class:`Fuzzed`: who sends it (a signed-in person or nobody), method,
path, raw query string, raw form or JSON body, and WSGI environ entries for headers (so
that values a client library would refuse, CR and LF among them, still reach the app,
as a lenient proxy could pass them).

Besides forms and the API: bodies that are no form (JSON, arrays, strings, invalid or
deeply nested JSON, text) posted to the pages people see, JSON nested too deep for the
API, and integers of any length in the number fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_from_bytes

from tests.fuzzing.values import Values

SESSIONS = ("anonymous", "alice", "bob", "carol")
API_PATHS = ("/v1/invoices", "/v1/clients", "/v1/me/permissions")
PAGES = "/settings/api-keys"
#: Where a body carries the session's CSRF token (the harness puts it there), when it
#: is not a form the token could be appended to.
CSRF_PLACEHOLDER = b"%CSRF%"


@dataclass
class Fuzzed:
    kind: str
    session: str
    method: str
    path: str
    query: bytes = b""
    body: bytes | None = None
    content_type: str | None = None
    environ: dict[str, str] = field(default_factory=dict)
    csrf: str = "none"  # "valid": the harness adds the session's token

    def describe(self) -> str:
        """A reproducer: everything needed to send this request again."""
        body = None if self.body is None else self.body[:300]
        return (
            f"{self.method} {self.path!r} query={self.query[:200]!r} as {self.session} "
            f"csrf={self.csrf} environ={ {k: v[:120] for k, v in self.environ.items()} } "
            f"content_type={self.content_type} body={body!r}"
        )


class Inputs(Values):
    """``Inputs(seed, keys).next()`` -> the next :class:`Fuzzed` request."""

    # -- requests ----------------------------------------------------------------------

    def next(self) -> Fuzzed:
        roll = self.rng.random()
        if roll < 0.30:
            return self.api()
        if roll < 0.45:
            return self.login()
        if roll < 0.80:
            return self.page()
        if roll < 0.88:
            return self.not_a_form()
        return self.anywhere()

    def api(self) -> Fuzzed:
        rng = self.rng
        if rng.random() < 0.1 and len(self.keys) > 1:
            return self.create_invoice()
        method = rng.choice(
            ["GET"] * 5 + ["POST"] * 3 + ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
        )
        path = rng.choice(
            [
                *API_PATHS,
                *API_PATHS,
                "/v1/invoices/" + self.ident(),
                "/v1/" + quote_from_bytes(self.raw()),
                "/v1",
            ]
        )
        body, content_type = None, None
        if method in ("POST", "PUT", "PATCH"):
            body, content_type = (
                self.json_body(),
                rng.choice(
                    ["application/json"] * 4
                    + [
                        "text/plain",
                        "application/x-www-form-urlencoded",
                        "application/json; charset=latin-1",
                    ]
                ),
            )
        session = rng.choice(SESSIONS) if rng.random() < 0.2 else "anonymous"
        return Fuzzed(
            "api",
            session,
            method,
            path,
            self.query(("q", "page", "api_key", "limit")),
            body,
            content_type,
            self.key_headers(),
        )

    def create_invoice(self) -> Fuzzed:
        """A JSON body the API reads for real: with a key that may write invoices (the
        harness's second key, alice's), so the body gets past the key check."""
        rng = self.rng
        body = self.nested() if rng.random() < 0.3 else self.json_body()
        return Fuzzed(
            "api",
            "anonymous",
            "POST",
            "/v1/invoices",
            b"",
            body,
            rng.choice(["application/json", "application/json; charset=utf-8"]),
            {"HTTP_AUTHORIZATION": "Bearer " + self.keys[1]},
        )

    def login(self) -> Fuzzed:
        rng = self.rng
        email = ["bob@acme.test", "alice@acme.test", "nobody@acme.test", "BOB@ACME.TEST "]
        if rng.random() < 0.9:  # do not burn the password hash on every request
            email = ["nobody@acme.test", "x@y"]
        body = self.form({"email": email, "password": ["demo-password", "wrong"]})
        csrf = rng.choice(["valid", "valid", "valid", "none", "forged"])
        path = "/login"
        query = self.query(("next",)) if rng.random() < 0.5 else b""
        return Fuzzed(
            "login",
            "anonymous",
            "POST",
            path,
            query,
            body,
            "application/x-www-form-urlencoded",
            self.key_headers() if rng.random() < 0.1 else {},
            csrf,
        )

    def page_forms(self, ident: str) -> list[tuple[str, dict[str, Any]]]:
        """Every form of the key pages: its action (under PAGES) and plausible values."""
        org = self.rng.choice(["1", "1", "2", self.ident()])
        return [
            (
                "/new",
                {
                    "name": ["ci", "Export"],
                    "expires": ["30d", "90d", "1y", "never", "custom"],
                    "expires_on": ["2030-01-01", ""],
                    "access": ["custom", "read", "full"],
                    "scopes": ["invoice.read", "client.read", "invoice.write", "api_key.manage"],
                    "organization": ["1", "2", ""],
                    "submission": ["x"],
                    "resources-1-client-mode": ["all", "only"],
                    "resources-1-client": ["1", "2", "3", self.number()],
                },
            ),
            (f"/{ident}/rename", {"name": ["renamed"]}),
            (f"/{ident}/rotate", {"grace": ["now", "1h", "24h", "7d"]}),
            (f"/{ident}/revoke", {"reason": ["gone", ""]}),
            (f"/{ident}/ip-allowlist", {"ip_allowlist": ["203.0.113.0/24", "", "::1"]}),
            (f"/{ident}/rate-limit", {"rate_limit": ["100/minute", ""]}),
            (
                f"/{ident}/quota",
                {
                    "quota": ["1000/day", "50000/total", "", f"{self.number()}/month"],
                    "refill": ["", "day", "month"],
                },
            ),
            (
                f"/{ident}/resources",
                {
                    f"resources-{org}-client-mode": ["all", "only"],
                    f"resources-{org}-client": ["1", "2", "3", "4", self.number()],
                },
            ),
            (
                f"/organization/{org}/policy",
                {
                    "max_lifetime_days": [self.number() for _ in range(3)],
                    "idle_expiry_days": [self.number() for _ in range(3)],
                    "limit_permissions": ["y", ""],
                    "allowed_permissions": ["invoice.read", "client.read", "invoice.write"],
                },
            ),
            (f"/organization/{org}/users/{self.ident()}/revoke-all", {"reason": ["left"]}),
        ]

    def page(self) -> Fuzzed:
        rng = self.rng
        session = rng.choice(["alice", "alice", "bob", "carol", "anonymous"])
        ident = self.ident()
        forms = self.page_forms(ident)
        if rng.random() < 0.45:
            path = rng.choice(
                [
                    "/",
                    "/new",
                    f"/{ident}",
                    f"/{ident}/revoke",
                    "/organization",
                    f"/organization/{self.ident()}/users/{self.ident()}/revoke-all",
                    f"/organization/{rng.choice(['1', '2', self.ident()])}/policy",
                    "/static/apikeys/" + quote_from_bytes(self.raw()),
                ]
            )
            query = self.query(("org", "q", "owner", "status", "sort", "page"))
            environ = self.key_headers() if rng.random() < 0.1 else {}
            return Fuzzed(
                "page",
                session,
                rng.choice(["GET"] * 8 + ["HEAD", "DELETE"]),
                PAGES + path,
                query,
                environ=environ,
            )
        action, fields = rng.choice(forms)
        body = self.form(fields)
        csrf = rng.choice(["valid"] * 6 + ["none", "forged"])
        environ = self.key_headers() if rng.random() < 0.1 else {}
        return Fuzzed(
            "form",
            session,
            "POST",
            PAGES + action,
            self.query(("org",)) if rng.random() < 0.2 else b"",
            body,
            "application/x-www-form-urlencoded",
            environ,
            csrf,
        )

    def not_a_form(self) -> Fuzzed:
        """A body that is no form (JSON, an array, a string, invalid or nested too deep,
        text) posted where a page takes a form: sign-in, sign-out, every key page."""
        rng = self.rng
        actions = [action for action, _ in self.page_forms(self.ident())]
        path = rng.choice(["/login", "/logout", *(PAGES + action for action in actions)])
        fields = {"csrf_token": "%CSRF%", "name": "x", "email": "bob@acme.test"}
        body = rng.choice(
            [
                b"[1]",
                b'"x"',
                b"null",
                b"{",
                b"[]",
                b"{}",
                json.dumps(fields).encode(),
                json.dumps([fields]).encode(),
                json.dumps({"password": "demo-password", **fields}).encode(),
                self.json_body(),
                self.nested(),
                self.raw(),
            ]
        )
        content_type = rng.choice(
            [
                "application/json",
                "application/json",
                "application/json; charset=utf-8",
                "application/merge-patch+json",
                "text/plain",
                "application/xml",
                "multipart/form-data",
                "multipart/form-data; boundary=x",
                "application/x-www-form-urlencoded",
                None,
            ]
        )
        return Fuzzed(
            "not-a-form",
            rng.choice(["alice", "alice", "bob", "carol", "anonymous"]),
            "POST",
            path,
            b"",
            body,
            content_type,
            {},
            "valid" if CSRF_PLACEHOLDER in body else "none",
        )

    def anywhere(self) -> Fuzzed:
        rng = self.rng
        segments = [quote_from_bytes(self.raw(), safe="/") for _ in range(rng.randint(1, 3))]
        path = rng.choice(
            [
                "/",
                "/login",
                "/logout",
                "/static/site.css",
                "/static/" + segments[0],
                "/" + "/".join(segments),
                "/.." + "/".join(segments),
            ]
        )
        method = rng.choice(
            ["GET", "GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "TRACE", "PROPFIND"]
        )
        body = self.form({"csrf_token": ["x"]}) if method == "POST" else None
        session = rng.choice(SESSIONS)
        csrf = rng.choice(["none", "valid"]) if path == "/logout" and rng.random() < 0.2 else "none"
        return Fuzzed(
            "anywhere",
            session,
            method,
            path,
            self.query(("next",)),
            body,
            "application/x-www-form-urlencoded" if body is not None else None,
            self.key_headers(),
            csrf,
        )
