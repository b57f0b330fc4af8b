"""Key format: generate, parse, checksum and hash API keys.

Layer 1 of the architecture: pure functions, no Flask and no database.

A key reads ``<prefix>_<random><checksum>``:

* ``prefix`` is chosen by the host application (``fsk``, ``fdk``, ...): a lowercase
  letter followed by up to 15 lowercase letters or digits;
* ``random`` is :data:`RANDOM_LENGTH` base62 characters drawn from :mod:`secrets`
  (about 190 bits of entropy);
* ``checksum`` is the CRC32 of ``random``, written as :data:`CHECKSUM_LENGTH` base62
  characters, so typos and garbage are rejected without touching the database.

Only :func:`hash_secret` of a key is stored. Keys are high-entropy secrets, so a fast
hash is as safe as a slow password hash and costs every request far less.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass

__all__ = [
    "ALPHABET",
    "CHECKSUM_LENGTH",
    "DISPLAY_LENGTH",
    "KEY_PATTERN",
    "RANDOM_LENGTH",
    "GeneratedKey",
    "KeyFormatError",
    "ParsedKey",
    "checksum",
    "display_prefix",
    "generate_key",
    "hash_secret",
    "is_well_formed",
    "key_pattern",
    "parse_key",
    "validate_prefix",
]

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6  # 62**6 > 2**32, so every CRC32 fits
DISPLAY_LENGTH = 8  # random characters shown after the prefix in lists and logs
BODY_LENGTH = RANDOM_LENGTH + CHECKSUM_LENGTH

_PREFIX = r"[a-z][a-z0-9]{0,15}"
_PREFIX_RE = re.compile(rf"{_PREFIX}\Z")
_BODY = rf"[0-9A-Za-z]{{{BODY_LENGTH}}}"
_KEY_RE = re.compile(rf"({_PREFIX})_({_BODY})\Z")
# Longest text worth looking at: a 16-character prefix, "_" and the body.
_MAX_KEY_LENGTH = 16 + 1 + BODY_LENGTH

#: What a secret scanner would match, for any prefix. :func:`key_pattern` narrows it
#: to one prefix.
KEY_PATTERN = re.compile(rf"\b{_PREFIX}_{_BODY}\b")


class KeyFormatError(ValueError):
    """The text is not a well-formed key: wrong shape, wrong prefix or bad checksum."""


@dataclass(frozen=True)
class ParsedKey:
    """A key whose shape and checksum are right (it may still be unknown)."""

    prefix: str
    random: str
    checksum: str

    @property
    def secret(self) -> str:
        return f"{self.prefix}_{self.random}{self.checksum}"

    @property
    def display_prefix(self) -> str:
        return display_prefix(self.prefix, self.random)


@dataclass(frozen=True)
class GeneratedKey:
    """A freshly generated key: the secret to show once, and what may be stored."""

    secret: str
    display_prefix: str

    def __repr__(self) -> str:  # never print the secret by accident
        return f"GeneratedKey(display_prefix={self.display_prefix!r}, secret=<hidden>)"


def validate_prefix(prefix: str) -> str:
    """Return *prefix* if it is a valid key prefix, else raise :class:`ValueError`."""
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        raise ValueError(
            f"Invalid key prefix {prefix!r}: use a lowercase letter followed by up to "
            "15 lowercase letters or digits, e.g. 'fsk'."
        )
    return prefix


def key_pattern(prefix: str) -> re.Pattern[str]:
    """The regex matching keys with *prefix*, for secret scanners and log scrubbers."""
    validate_prefix(prefix)
    return re.compile(rf"\b{re.escape(prefix)}_{_BODY}\b")


def _encode_base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    if number:
        raise ValueError("number too large for width")
    return "".join(reversed(chars))


def checksum(random_part: str) -> str:
    """The fixed-width base62 CRC32 of *random_part*."""
    return _encode_base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_LENGTH)


def display_prefix(prefix: str, random_part: str) -> str:
    """What identifies a key in lists and logs, e.g. ``fsk_8fK2mQ9x``."""
    return f"{prefix}_{random_part[:DISPLAY_LENGTH]}"


def generate_key(prefix: str) -> GeneratedKey:
    """Generate a new key with *prefix*."""
    validate_prefix(prefix)
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return GeneratedKey(
        secret=f"{prefix}_{random_part}{checksum(random_part)}",
        display_prefix=display_prefix(prefix, random_part),
    )


def parse_key(text: object, prefix: str | None = None) -> ParsedKey:
    """Parse *text* as a key, checking its shape, its prefix and its checksum.

    Raises :class:`KeyFormatError` for anything else, whatever *text* is.
    """
    parts = _parts(text, prefix)
    if isinstance(parts, str):
        raise KeyFormatError(parts)
    return ParsedKey(*parts)


def is_well_formed(text: object, prefix: str | None = None) -> bool:
    """Whether *text* parses as a key (shape, prefix and checksum)."""
    return not isinstance(_parts(text, prefix), str)


def _parts(text: object, prefix: str | None) -> tuple[str, str, str] | str:
    """The prefix, random part and checksum of the key *text*, or why it is not one."""
    if not isinstance(text, str) or len(text) > _MAX_KEY_LENGTH:
        return "not an API key"
    match = _KEY_RE.match(text)
    if match is None:
        return "not an API key"
    found_prefix, body = match.groups()
    if prefix is not None and found_prefix != prefix:
        return "wrong key prefix"
    random_part, check = body[:RANDOM_LENGTH], body[RANDOM_LENGTH:]
    if not hmac.compare_digest(checksum(random_part), check):
        return "bad key checksum"
    return found_prefix, random_part, check


def hash_secret(secret: str, pepper: bytes | None = None) -> str:
    """The hex digest stored for *secret*: SHA-256, or HMAC-SHA-256 keyed with *pepper*."""
    data = secret.encode("utf-8")
    if pepper:
        return hmac.digest(pepper, data, "sha256").hex()
    return hashlib.sha256(data).hexdigest()
