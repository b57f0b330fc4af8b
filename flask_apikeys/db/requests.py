"""The request log's table: a key's recent requests, one row each.

Beside :mod:`~flask_apikeys.db.models` (which makes the mapped class in
:func:`~flask_apikeys.models.build_models`). Rows are written by the request log's
buffer (:mod:`~flask_apikeys.requestlog`), never on the request path, and pruned by
age and by a per-key count.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from .models import BigIntPK, UTCDateTime, utcnow

__all__ = ["METHOD_MAX_LENGTH", "PATH_MAX_LENGTH", "APIKeyRequestMixin", "build_request_model"]

#: The longest path stored; longer ones are cut, ending with "…".
PATH_MAX_LENGTH = 255
#: The longest method stored (methods are tokens a client may make up).
METHOD_MAX_LENGTH = 16


class APIKeyRequestMixin:
    """One request served to a key: when, the method, the path (never the query
    string), the status sent and the client address."""

    __apikeys_key_table__: str

    if TYPE_CHECKING:
        __table__: ClassVar[sa.Table]

        def __init__(self, **columns: Any) -> None: ...

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    method: Mapped[str] = mapped_column(sa.String(METHOD_MAX_LENGTH))
    path: Mapped[str] = mapped_column(sa.String(PATH_MAX_LENGTH))
    status: Mapped[int] = mapped_column(sa.SmallInteger)
    ip: Mapped[str | None] = mapped_column(sa.String(45), nullable=True)

    @declared_attr
    def key_id(cls) -> Mapped[int]:
        return mapped_column(BigIntPK, sa.ForeignKey(f"{cls.__apikeys_key_table__}.id"))

    def __repr__(self) -> str:
        return f"<APIKeyRequest {self.method} {self.path} {self.status} key={self.key_id}>"


def build_request_model(db: Any, table_prefix: str, key_table: str) -> type[APIKeyRequestMixin]:
    """Make ``APIKeyRequest`` on ``db.Model``: the table ``<prefix>_requests``, indexed by
    key then time (what a key's page reads and the per-key pruning walks) and by time
    (what pruning by age deletes)."""
    model: type[APIKeyRequestMixin] = type(
        "APIKeyRequest",
        (APIKeyRequestMixin, db.Model),
        {
            "__tablename__": f"{table_prefix}_requests",
            "__apikeys_key_table__": key_table,
            "__table_args__": (sa.Index(f"ix_{table_prefix}_requests_key_at", "key_id", "at"),),
        },
    )
    return model
