"""Send generated requests to the example app in process and count what went wrong.

::

    report = fuzz("sqlite:///fuzz.sqlite", requests=100_000, seed=1)
    report.server_errors, report.tracebacks   # both should be 0

The app runs with ``TESTING`` off, as in production: an exception becomes a logged
traceback and a 500, both counted. Four browsers (anonymous, alice, bob, carol) keep
their cookies; forms go with the session's CSRF token, none, or a forged one.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import sqlalchemy as sa
from flask import Flask
from flask.logging import default_handler
from flask.testing import FlaskClient

from tests.fuzzing.inputs import CSRF_PLACEHOLDER, SESSIONS, Fuzzed, Inputs

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
PEOPLE = {"alice": "alice@acme.test", "bob": "bob@acme.test", "carol": "carol@globex.test"}
REFRESH_EVERY = 500  # requests between fresh keys and signing everybody in again


@dataclass
class Report:
    database: str
    seed: int
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: int = 0
    tracebacks: int = 0
    examples: list[str] = field(default_factory=list)  # reproducers of the first failures
    seconds: float = 0.0

    def add_example(self, text: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(text)

    def summary(self) -> str:
        classes = Counter(f"{status // 100}xx" for status in self.statuses.elements())
        spread = ", ".join(f"{name} {count}" for name, count in sorted(classes.items()))
        return (
            f"{self.database}: {self.requests} requests (seed {self.seed}) in {self.seconds:.0f} s "
            f"[{spread}]: {self.server_errors} answered 5xx, "
            f"{self.tracebacks} left a traceback in the log"
        )


class TracebackCounter(logging.Handler):
    """Counts log records that carry a traceback (or are errors) while fuzzing."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@contextlib.contextmanager
def counting_tracebacks() -> Iterator[TracebackCounter]:
    handler = TracebackCounter()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """*url* with connections in a fresh schema, dropped afterwards."""
    schema = f"apikeys_fuzz_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def make_app(database_url: str) -> Flask:
    from example_app import create_app, db
    from example_app.cli import seed_demo_data

    app = create_app(
        {
            "TESTING": False,
            "SECRET_KEY": secrets.token_hex(16),
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PROXY_FIX_X_FOR": 1,  # X-Forwarded-For decides the client address: fuzz it too
            # Fuzzed sign-ins check the demo password: scrypt would be a fifth of the run.
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",
        }
    )
    app.logger.removeHandler(default_handler)  # counted, not printed
    app.wsgi_app = RealTarget(app.wsgi_app)  # type: ignore[method-assign]
    with app.app_context():
        db.create_all()
        seed_demo_data()
    return app


class RealTarget:
    """WSGI middleware: the request's real path and query string, from the harness.

    Werkzeug's test client rebuilds and percent-decodes the whole URL of a request twice
    (to pick the cookies to send, then to file the ones set): with the fuzzer's long paths
    and query strings, a third of the run. It sees ``/`` and no query instead, which
    changes nothing it does (every cookie of the app has ``Path=/``), and this hands the
    app a copy of the environ with the real ones.
    """

    PATH, QUERY = "fuzz.path_info", "fuzz.query_string"

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.PATH in environ:
            environ = dict(environ)
            environ["PATH_INFO"] = environ.pop(self.PATH)
            environ["QUERY_STRING"] = environ.pop(self.QUERY)
        return self.wsgi_app(environ, start_response)


class Harness:
    def __init__(self, app: Flask, seed: int) -> None:
        self.app = app
        self.inputs = Inputs(seed, [])
        self.clients: dict[str, FlaskClient] = {name: app.test_client() for name in SESSIONS}
        self.tokens: dict[str, str] = {}
        self.refresh()

    def refresh(self) -> None:
        """Fresh keys for the generator; everybody signed in again with a current token."""
        from example_app import apikeys, db
        from example_app.models import User

        with self.app.app_context():
            for org_id in (1, 2):  # the policy form may have ruled out the keys below
                apikeys.service.policies.set_policy(
                    org_id, max_lifetime_days=None, idle_expiry_days=None, allowed_permissions=None
                )
            keys, ids = [], []
            for email, scopes in [
                ("bob@acme.test", ["client.read"]),
                ("alice@acme.test", ["invoice.read", "invoice.write", "client.read"]),
                ("carol@globex.test", ["invoice.read"]),
            ]:
                user = db.session.scalar(sa.select(User).where(User.email == email))
                issued = apikeys.service.keys.issue(user, scopes=scopes, name="fuzz")
                keys.append(issued.secret)
                ids.append(int(issued.key.id))
            db.session.remove()
        self.inputs.keys = keys
        self.inputs.key_ids = ids + [i - 3 for i in ids if i > 3]
        for name in SESSIONS:
            self.clients[name] = client = self.app.test_client()
            page = client.get("/login")
            token = _CSRF.search(page.text)
            assert token, "no CSRF token on /login"
            if name in PEOPLE:
                response = client.post(
                    "/login",
                    data={
                        "email": PEOPLE[name],
                        "password": "demo-password",
                        "csrf_token": token.group(1),
                    },
                )
                assert response.status_code == 302, response.status_code
                page = client.get("/settings/api-keys/new")
                token = _CSRF.search(page.text)
                assert token, f"no CSRF token for {name}"
            self.tokens[name] = token.group(1)

    def send(self, request: Fuzzed) -> int:
        client = self.clients[request.session]
        body = request.body
        if request.csrf != "none":
            token = self.tokens[request.session] if request.csrf == "valid" else "forged"
            if body and CSRF_PLACEHOLDER in body:  # a JSON body with the token inside
                body = body.replace(CSRF_PLACEHOLDER, token.encode())
            else:
                extra = b"csrf_token=" + quote(token).encode()
                body = extra if not body else body + b"&" + extra
        # PATH_INFO as a server makes it (percent-decoded bytes as latin-1), so that paths
        # the test client would parse as a URL ("//host...") still reach the app; both it
        # and the query string go past the test client (see RealTarget).
        path_info = unquote_to_bytes(request.path).decode("latin-1")
        environ = {
            "REMOTE_ADDR": "127.0.0.1",
            **request.environ,
            RealTarget.PATH: path_info,
            RealTarget.QUERY: request.query.decode("ascii"),
        }
        response = client.open(
            "/",
            method=request.method,
            data=body,
            content_type=request.content_type,
            environ_overrides=environ,
        )
        response.close()
        return response.status_code


def fuzz(
    database_url: str, requests: int, seed: int, label: str = "", progress: Any = None
) -> Report:
    """Send *requests* generated requests (from *seed*) to a fresh example app."""
    report = Report(label or database_url.split(":", 1)[0], seed)
    app = make_app(database_url)
    started = time.monotonic()
    with counting_tracebacks() as log:
        harness = Harness(app, seed)
        for number in range(1, requests + 1):
            if number % REFRESH_EVERY == 0:
                harness.refresh()
            request = harness.inputs.next()
            seen = len(log.records)
            status = harness.send(request)
            report.requests += 1
            report.statuses[status] += 1
            if status >= 500:
                report.server_errors += 1
            if len(log.records) > seen or status >= 500:
                reason = log.records[-1].getMessage()[:200] if len(log.records) > seen else ""
                report.add_example(f"#{number} -> {status} {reason} :: {request.describe()}")
            if progress and number % 10_000 == 0:
                progress(
                    f"  {report.database}: {number} requests, "
                    f"{report.server_errors} 5xx, {len(log.records)} tracebacks"
                )
        from flask_apikeys.service.usage import flush_all

        flush_all()
        report.tracebacks = len(log.records)
    report.seconds = time.monotonic() - started
    from example_app import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return report
