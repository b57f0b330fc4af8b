"""Generated requests for the example app, from one ``random.Random``: the same seed makes
the same requests, so every failure has a reproducer.

A request is a :class:`Fuzzed`: who sends it (a signed-in person or nobody), method,
path, raw query string, raw form or JSON body, and WSGI environ entries for headers (so
that values a client library would refuse, CR and LF among them, still reach the app,
as a lenient proxy could pass them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_from_bytes

from tests.fuzzing.values import Values

SESSIONS = ("anonymous", "alice", "bob", "carol")
API_PATHS = ("/v1/invoices", "/v1/clients", "/v1/me/permissions")
PAGES = "/settings/api-keys"


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
        if roll < 0.85:
            return self.page()
        return self.anywhere()

    def api(self) -> Fuzzed:
        rng = self.rng
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

    def page(self) -> Fuzzed:
        rng = self.rng
        session = rng.choice(["alice", "alice", "bob", "carol", "anonymous"])
        ident = self.ident()
        forms: list[tuple[str, dict[str, Any]]] = [
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
                },
            ),
            (f"/{ident}/rename", {"name": ["renamed"]}),
            (f"/{ident}/rotate", {"grace": ["now", "1h", "24h", "7d"]}),
            (f"/{ident}/revoke", {"reason": ["gone", ""]}),
            (f"/{ident}/ip-allowlist", {"ip_allowlist": ["203.0.113.0/24", "", "::1"]}),
            (f"/{ident}/rate-limit", {"rate_limit": ["100/minute", ""]}),
            (f"/organization/{self.ident()}/users/{self.ident()}/revoke-all", {"reason": ["left"]}),
        ]
        if rng.random() < 0.45:
            path = rng.choice(
                [
                    "/",
                    "/new",
                    f"/{ident}",
                    f"/{ident}/revoke",
                    "/organization",
                    f"/organization/{self.ident()}/users/{self.ident()}/revoke-all",
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
