"""Model versions and contact predictions (tables ``model_versions``, ``contact_predictions``)
over one connection. The fitted model is kept as bytes; adapters/ml/store.py (de)serialises
it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from leadflow.adapters.db import tables as t
from leadflow.domain.predictive import ModelVersion, Prediction

SLICE = 500  # ids per IN (...) list

VERSION_COLUMNS = [c for c in t.model_versions.c if c.name != "model"]


def _version(row: Any) -> ModelVersion:
    m = row._mapping
    return ModelVersion(id=int(m["id"]), created_at=float(m["created_at"]), target=m["target"],
                        horizon_days=float(m["horizon_days"]),
                        features=tuple(f["name"] for f in m["features"]),
                        metrics=dict(m["metrics"]), examples=int(m["examples"]),
                        positives=int(m["positives"]), active=bool(m["active"]),
                        trained_by=m["trained_by"], details=dict(m["details"]),
                        scored_through=m["scored_through"])


def _slices(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i:i + SLICE]) for i in range(0, len(ids), SLICE)]


class SqlModelRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_version(self, *, created_at: float, target: str, horizon_days: float,
                    features: list[dict[str, str]], metrics: dict[str, Any],
                    details: dict[str, Any], examples: int, positives: int, model: bytes,
                    trained_by: str) -> int:
        result = self.conn.execute(insert(t.model_versions).values(
            created_at=created_at, target=target, horizon_days=horizon_days, features=features,
            metrics=metrics, details=details, examples=examples, positives=positives,
            model=model, active=False, trained_by=trained_by, scored_through=None))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def versions(self) -> list[ModelVersion]:
        rows = self.conn.execute(select(*VERSION_COLUMNS).order_by(t.model_versions.c.id))
        return [_version(r) for r in rows]

    def version(self, version_id: int) -> ModelVersion | None:
        row = self.conn.execute(select(*VERSION_COLUMNS).where(
            t.model_versions.c.id == version_id)).first()
        return _version(row) if row is not None else None

    def active(self) -> ModelVersion | None:
        row = self.conn.execute(select(*VERSION_COLUMNS).where(
            t.model_versions.c.active.is_(True)).order_by(t.model_versions.c.id.desc())).first()
        return _version(row) if row is not None else None

    def model_bytes(self, version_id: int) -> bytes | None:
        value = self.conn.execute(select(t.model_versions.c.model).where(
            t.model_versions.c.id == version_id)).scalar()
        return bytes(value) if value is not None else None

    def activate(self, version_id: int) -> None:
        """``version_id`` becomes the one active version, with every contact to score; the
        predictions of other versions go."""
        mv = t.model_versions.c
        self.conn.execute(update(t.model_versions).where(mv.id != version_id,
                                                         mv.active.is_(True))
                          .values(active=False))
        self.conn.execute(update(t.model_versions).where(mv.id == version_id)
                          .values(active=True, scored_through=None))
        self.conn.execute(delete(t.contact_predictions).where(
            t.contact_predictions.c.version_id != version_id))

    def mark_scored(self, version_id: int, through: float) -> None:
        self.conn.execute(update(t.model_versions).where(t.model_versions.c.id == version_id)
                          .values(scored_through=through))

    def save_predictions(self, predictions: Sequence[Prediction]) -> None:
        ids = [p.contact_id for p in predictions]
        self.forget(ids)
        if predictions:
            self.conn.execute(insert(t.contact_predictions), [
                {"contact_id": p.contact_id, "version_id": p.version_id,
                 "probability": p.probability, "reasons": list(p.reasons),
                 "scored_at": p.scored_at} for p in predictions])

    def forget(self, contact_ids: Sequence[int]) -> int:
        gone = 0
        for part in _slices(list(contact_ids)):
            gone += self.conn.execute(delete(t.contact_predictions).where(
                t.contact_predictions.c.contact_id.in_(part))).rowcount or 0
        return gone

    def forget_older(self, version_id: int, before: float) -> int:
        """Predictions of ``version_id`` not rewritten since ``before`` (their contacts are
        no longer scored), and those of other versions."""
        cp = t.contact_predictions.c
        result = self.conn.execute(delete(t.contact_predictions).where(
            (cp.version_id != version_id) | (cp.scored_at < before)))
        return result.rowcount or 0

    def prediction(self, contact_id: int, version_id: int) -> Prediction | None:
        cp = t.contact_predictions.c
        row = self.conn.execute(select(t.contact_predictions).where(
            cp.contact_id == contact_id, cp.version_id == version_id)).first()
        if row is None:
            return None
        return Prediction(contact_id=int(row.contact_id), version_id=int(row.version_id),
                          probability=float(row.probability), reasons=tuple(row.reasons),
                          scored_at=float(row.scored_at))

    def count(self, version_id: int) -> int:
        return int(self.conn.execute(select(func.count()).select_from(
            t.contact_predictions).where(
            t.contact_predictions.c.version_id == version_id)).scalar_one())
