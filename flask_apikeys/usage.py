"""Deprecated: :mod:`flask_apikeys.service.usage` is the new home; this path goes in 0.4."""

from __future__ import annotations

import warnings
from importlib import import_module
from typing import Any

warnings.warn(
    "flask_apikeys.usage is deprecated: import from flask_apikeys.service.usage"
    " (this path goes in 0.4)",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    return getattr(import_module("flask_apikeys.service.usage"), name)
