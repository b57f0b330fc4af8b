"""The ``flask apikeys`` command group: one module per group of commands."""

from __future__ import annotations

from . import audit, expiry, leaks, policy, quota, requests, resources  # noqa: F401  (register)
from .keys import apikeys_cli

__all__ = ["apikeys_cli"]
