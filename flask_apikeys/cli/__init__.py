"""The ``flask apikeys`` command group: one module per group of commands.

Features add columns to ``list`` and lines to ``show`` through :mod:`.columns`.
"""

from __future__ import annotations

from . import audit, expiry, keys, leaks, policy, quota, requests, resources  # noqa: F401  (register)
from .common import apikeys_cli

__all__ = ["apikeys_cli"]
