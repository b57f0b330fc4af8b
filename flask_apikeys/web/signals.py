"""Blinker signals sent by flask-apikeys, with the Flask app as sender.

Connect with ``key_created.connect_via(app)`` or ``key_created.connect``. Keyword data
never holds a secret.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A key was created (also the new key of a rotation). Data: ``key``, ``actor``.
key_created = _signals.signal("apikeys.key-created")
#: A key was rotated. Data: ``key`` (the old one), ``new_key``, ``actor``, ``grace``.
key_rotated = _signals.signal("apikeys.key-rotated")
#: A key was renamed. Data: ``key``, ``actor``, ``old_name``.
key_renamed = _signals.signal("apikeys.key-renamed")
#: A key was revoked. Data: ``key``, ``actor``, ``reason``.
key_revoked = _signals.signal("apikeys.key-revoked")
#: A request authenticated with a key. Data: ``key``, ``owner``, ``scopes``.
key_authenticated = _signals.signal("apikeys.key-authenticated")
#: A request presented a key that was refused. Data: ``error`` (the code), ``key``
#: (``None`` when unknown or malformed), ``display_prefix`` (``None`` when malformed).
authentication_failed = _signals.signal("apikeys.authentication-failed")
#: A key's secret leaked and the key was revoked for it (after ``key_revoked``): tell its
#: owner and admins. Data: ``key``, ``actor`` (``None`` for a scanner's report or the CLI),
#: ``url`` (where it was found), ``source`` and ``token_type`` (from GitHub's report),
#: ``reason``.
key_leaked = _signals.signal("apikeys.key-leaked")
#: A key will expire soon: sent once per key and threshold of
#: ``APIKEYS_EXPIRY_WARNING_DAYS`` (``flask apikeys notify-expiring``). Data: ``key``,
#: ``days`` (the threshold crossed), ``expires_at``.
key_expiring = _signals.signal("apikeys.key-expiring")

BY_EVENT = {
    "created": key_created,
    "rotated": key_rotated,
    "renamed": key_renamed,
    "revoked": key_revoked,
    "leaked": key_leaked,
}
