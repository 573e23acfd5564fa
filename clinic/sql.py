"""SQL pieces every service's tables and repository use: the one UTC column type and the one
insert that can say ON CONFLICT on either backend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, TypeDecorator
from sqlalchemy.orm import Session


class UtcDateTime(TypeDecorator):
    """An aware instant, stored as UTC on both backends: SQLite keeps no offset, so values are
    converted to UTC on the way in and labelled UTC on the way out. Naive values are refused,
    never guessed. The column is ``DateTime(timezone=True)`` to the schema (and migrations)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def upsert(session: Session, table: Any):
    """An INSERT into ``table`` (a Table or a mapped class) of the session's dialect, which
    has ``on_conflict_do_nothing`` / ``on_conflict_do_update`` on PostgreSQL and SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)
