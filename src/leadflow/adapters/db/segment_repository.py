"""The saved segments of the contact list (the web app's named filters)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select

from leadflow.adapters.db import tables as t
from leadflow.domain.ports import SavedSegment

S = t.saved_segments.c


def _segment(row: Any) -> SavedSegment:
    return SavedSegment(id=row.id, owner_id=row.owner_id, name=row.name,
                        filters={str(k): str(v) for k, v in (row.filters or {}).items()},
                        shared=bool(row.shared), created_at=row.created_at,
                        updated_at=row.updated_at)


class SqlSegmentRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, *, owner_id: int, name: str, filters: dict[str, str], shared: bool,
            at: float) -> SavedSegment:
        result = self.conn.execute(insert(t.saved_segments).values(
            owner_id=owner_id, name=name, filters=dict(filters), shared=shared,
            created_at=at, updated_at=at))
        key = result.inserted_primary_key
        assert key is not None
        return SavedSegment(id=int(key[0]), owner_id=owner_id, name=name, filters=dict(filters),
                            shared=shared, created_at=at, updated_at=at)

    def get(self, segment_id: int) -> SavedSegment | None:
        row = self.conn.execute(select(t.saved_segments).where(S.id == segment_id)).first()
        return None if row is None else _segment(row)

    def named(self, owner_id: int, name: str) -> SavedSegment | None:
        row = self.conn.execute(select(t.saved_segments).where(
            S.owner_id == owner_id, S.name == name)).first()
        return None if row is None else _segment(row)

    def visible_to(self, user_id: int) -> list[SavedSegment]:
        rows = self.conn.execute(select(t.saved_segments)
                                 .where(or_(S.owner_id == user_id, S.shared.is_(True)))
                                 .order_by(S.name, S.id))
        return [_segment(r) for r in rows]

    def delete(self, segment_id: int) -> bool:
        result = self.conn.execute(delete(t.saved_segments).where(S.id == segment_id))
        return result.rowcount > 0
