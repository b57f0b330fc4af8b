"""Deprecated: :mod:`flask_apikeys.db.models` is the new home; this path goes in 0.4."""

from __future__ import annotations

import warnings
from importlib import import_module
from typing import Any

warnings.warn(
    "flask_apikeys.models is deprecated: import from flask_apikeys.db.models"
    " (this path goes in 0.4)",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    if name in ("Models", "build_models"):
        return getattr(import_module("flask_apikeys.db.schema"), name)
    return getattr(import_module("flask_apikeys.db.models"), name)
