"""The MCP SDK and the host's logging: the SDK never configures the host's logs.

The SDK's ``MCPServer(...)`` calls ``logging.basicConfig(level=log_level, handlers=[...])``
with a ``rich`` handler when ``rich`` is installed, whatever ``log_level`` says: in a
process whose root logger has no handler yet (gunicorn's workers, a CLI), the app's
records, the CLI's and gunicorn's tracebacks then come out in Rich's wrapped format, and
the root logger lets INFO through. And its streamable-HTTP transport logs
``Terminating session: None`` at INFO for every stateless request.

- :func:`create_server` builds the SDK's ``MCPServer`` with the root logger untouched;
  :func:`root_logging_kept` does the same around any code that builds one.
- :func:`quiet_sdk_loggers` sets the SDK's per-request logger to WARNING, unless the host
  gave it (or a parent ``mcp...`` logger) a level of its own: the host asks for those
  lines with ``logging.getLogger("mcp").setLevel(logging.INFO)``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from mcp.server.mcpserver import MCPServer

__all__ = ["NOISY_SDK_LOGGERS", "create_server", "quiet_sdk_loggers", "root_logging_kept"]

#: The SDK's loggers that write a line per request at INFO.
NOISY_SDK_LOGGERS = ("mcp.server.streamable_http",)


@contextlib.contextmanager
def root_logging_kept() -> Iterator[None]:
    """Inside the block, ``logging.basicConfig()`` (without ``force=True``) changes
    nothing: the root logger holds a placeholder ``NullHandler``, and ``basicConfig``
    leaves a root logger that has a handler alone (its handlers and its level). On the
    way out the placeholder goes and the root logger is as it was."""
    root = logging.getLogger()
    level = root.level
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        yield
    finally:
        root.removeHandler(placeholder)
        root.setLevel(level)


def create_server(name: str | None = None, **options: Any) -> MCPServer[Any]:
    """``MCPServer(name, **options)`` of the SDK, without the logging setup its
    constructor does (see the module's documentation): the host's logging stays the
    host's. ``log_level`` is then only what the SDK would pass to ``basicConfig``."""
    with root_logging_kept():
        return MCPServer(name, **options)


def _has_own_level(name: str) -> bool:
    """Whether *name* or one of its parent loggers below the root has a level set."""
    parts = name.split(".")
    return any(
        logging.getLogger(".".join(parts[:depth])).level != logging.NOTSET
        for depth in range(1, len(parts) + 1)
    )


def quiet_sdk_loggers() -> None:
    """WARNING for :data:`NOISY_SDK_LOGGERS`, each unless the host set a level on it or
    on a parent (``mcp``, ``mcp.server``); never touches a handler."""
    for name in NOISY_SDK_LOGGERS:
        if not _has_own_level(name):
            logging.getLogger(name).setLevel(logging.WARNING)
