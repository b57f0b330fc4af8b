"""GitHub's secret-scanning public keys, and the signatures of leak reports.

Each report carries ``Github-Public-Key-Identifier``, naming one of the keys
GitHub publishes at :data:`GITHUB_PUBLIC_KEYS_URL`, and ``Github-Public-Key-Signature``,
the base64 DER ECDSA P-256 / SHA-256 signature of the raw body.
:class:`GitHubPublicKeys` fetches the keys (``urllib``, https only unless allowed),
keeps them in the process, fetches again for an unknown identifier at most once per
interval, and checks signatures. It needs ``cryptography`` (``pip install
'flask-apikeys[leaks]'``), imported only here and only when used.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import logging
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from email.message import Message
from typing import IO, TYPE_CHECKING

from .leaks import LeakReportRefused

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

__all__ = [
    "GITHUB_PUBLIC_KEYS_URL",
    "GitHubPublicKeys",
    "check_public_keys_url",
    "require_cryptography",
]

logger = logging.getLogger("flask_apikeys")

#: Where GitHub publishes the keys that sign its secret-scanning reports.
GITHUB_PUBLIC_KEYS_URL = "https://api.github.com/meta/public_keys/secret_scanning"

# A key identifier is a hex digest at GitHub; anything unlike one is not worth a fetch.
_IDENTIFIER_RE = re.compile(r"[A-Za-z0-9_.:-]{1,200}\Z")
_MAX_SIGNATURE_LENGTH = 200  # base64 of a DER ECDSA P-256 signature is at most 96
_MAX_KEYS_DOCUMENT = 1_000_000  # bytes of GitHub's public keys document we read
_FETCH_TIMEOUT = 5.0  # seconds: GitHub waits about 10 for our answer


def require_cryptography() -> None:
    """Raise :class:`ImportError` saying what to install when ``cryptography`` is missing."""
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "Verifying leak reports needs the 'cryptography' package: "
            "pip install 'flask-apikeys[leaks]'"
        ) from exc


def check_public_keys_url(url: str, *, allow_http: bool = False) -> str:
    """*url* if public keys may be fetched from it: ``https://``, or ``http://`` too with
    *allow_http* (a local key server in tests); :class:`RuntimeError` otherwise."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts is None or parts.scheme not in schemes or not parts.hostname:
        raise RuntimeError(
            f"APIKEYS_LEAK_PUBLIC_KEYS_URL must be an https:// URL, not {url!r} "
            "(set APIKEYS_LEAK_ALLOW_HTTP = True to allow http:// for a local test server)"
        )
    return url


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: the keys come from the configured URL or not at all."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


class _Unavailable(Exception):
    """The public keys could not be fetched or read."""


class GitHubPublicKeys:
    """GitHub's secret-scanning public keys, fetched from *url* and kept in the process.

    An unknown key identifier fetches the keys again (GitHub rotates them), but at most
    once every *refresh_interval* seconds, so forged identifiers cannot make every
    request a fetch. *token*, when given, is sent as a bearer token (a GitHub token
    lifts the API's rate limit for anonymous callers). Thread-safe.
    """

    def __init__(
        self,
        url: str = GITHUB_PUBLIC_KEYS_URL,
        *,
        allow_http: bool = False,
        token: str | None = None,
        refresh_interval: float = 60.0,
        timeout: float = _FETCH_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = check_public_keys_url(url, allow_http=allow_http)
        self.refresh_interval = refresh_interval
        self.timeout = timeout
        self._token = token
        self._clock = clock
        self._keys: dict[str, EllipticCurvePublicKey] = {}
        self._fetched_at: float | None = None
        self._failed = False
        self._lock = threading.Lock()
        self._opener = urllib.request.build_opener(_NoRedirects())

    def verify(self, body: bytes, identifier: str | None, signature: str | None) -> None:
        """Check that *signature* (base64 DER) signs *body* with key *identifier*.

        Raises :class:`LeakReportRefused`: 400 when a header is missing, 403 for an
        unknown identifier or a signature that does not verify, 503 when the keys
        cannot be fetched.
        """
        if not identifier or not signature:
            raise LeakReportRefused(
                400,
                "missing_signature",
                "Send the Github-Public-Key-Identifier and Github-Public-Key-Signature headers.",
            )
        if not _IDENTIFIER_RE.match(identifier):
            raise self._unknown()
        forged = LeakReportRefused(
            403, "invalid_signature", "The signature does not match the report."
        )
        if len(signature) > _MAX_SIGNATURE_LENGTH:
            raise forged
        try:
            der = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise forged from None
        public_key = self.key(identifier)
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            public_key.verify(der, body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise forged from None

    def key(self, identifier: str) -> EllipticCurvePublicKey:
        """The public key *identifier*, fetching the keys again if it is unknown and the
        last fetch is older than the refresh interval."""
        found = self._keys.get(identifier)
        if found is not None:
            return found
        with self._lock:
            found = self._keys.get(identifier)
            if found is not None:  # another thread fetched it meanwhile
                return found
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= self.refresh_interval:
                self._fetched_at = now
                try:
                    self._keys = self._fetch()
                    self._failed = False
                except _Unavailable as exc:
                    logger.warning(
                        "leak reports: public keys not fetched from %s: %s", self.url, exc
                    )
                    self._failed = True
                found = self._keys.get(identifier)
            if found is not None:
                return found
            if self._failed:
                wait = self.refresh_interval - (now - (self._fetched_at or now))
                raise LeakReportRefused(
                    503,
                    "public_keys_unavailable",
                    "The public keys that sign leak reports cannot be fetched now.",
                    retry_after=max(1, int(wait + 0.999)),
                )
            raise self._unknown()

    @staticmethod
    def _unknown() -> LeakReportRefused:
        return LeakReportRefused(
            403, "unknown_key_identifier", "No public key has this Github-Public-Key-Identifier."
        )

    def _fetch(self) -> dict[str, EllipticCurvePublicKey]:
        require_cryptography()
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        headers = {"Accept": "application/json", "User-Agent": "flask-apikeys"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        # The scheme was checked in __init__: https, or http when explicitly allowed.
        request = urllib.request.Request(self.url, headers=headers)  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read(_MAX_KEYS_DOCUMENT + 1)
        except (OSError, http.client.HTTPException) as exc:  # URLError and HTTPError too
            raise _Unavailable(str(exc) or type(exc).__name__) from None
        if len(raw) > _MAX_KEYS_DOCUMENT:
            raise _Unavailable("the document is too large")
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):
            raise _Unavailable("the document is not JSON") from None
        entries = document.get("public_keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise _Unavailable("the document has no 'public_keys' list")
        keys: dict[str, EllipticCurvePublicKey] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            identifier, pem = entry.get("key_identifier"), entry.get("key")
            if not isinstance(identifier, str) or not isinstance(pem, str):
                continue
            try:
                public_key = load_pem_public_key(pem.encode("utf-8"))
            except (ValueError, TypeError, UnsupportedAlgorithm):
                continue
            if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
                public_key.curve, ec.SECP256R1
            ):
                keys[identifier] = public_key
        if not keys:
            raise _Unavailable("the document holds no ECDSA P-256 key")
        return keys
