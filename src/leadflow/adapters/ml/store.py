"""The predictive store: training examples and scoring rows from the history (history.py),
model versions and predictions (adapters/db/model_repository.py), each call in a transaction
of its own. A fitted model is stored pickled (it is only ever read back from the install's own
database); a process keeps the few it last loaded."""

from __future__ import annotations

import pickle
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence

from sqlalchemy import Engine

from leadflow.adapters.db.model_repository import SqlModelRepository
from leadflow.adapters.ml import history
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import NotFound
from leadflow.domain.evaluation import Feature, LabelledRows
from leadflow.domain.predictive import (
    Examples,
    ModelVersion,
    Prediction,
    Target,
    TrainedModel,
)

KEEP_LOADED = 4
_loaded: OrderedDict[tuple[str, int, float], TrainedModel] = OrderedDict()
_lock = threading.Lock()


def dump_model(model: TrainedModel) -> bytes:
    return zlib.compress(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), 6)


def load_model_bytes(data: bytes) -> TrainedModel:
    model = pickle.loads(zlib.decompress(data))  # written by this install only
    assert isinstance(model, TrainedModel)
    return model


class SqlPredictiveStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- history -------------------------------------------------------------------

    def training_rows(self, *, config: LifecycleConfig, target: Target, horizon_days: float,
                      now: float, exclude: Sequence[str]) -> Examples:
        with self.engine.connect() as conn:
            return history.training_rows(conn, config=config, target=target,
                                         horizon_days=horizon_days, now=now, exclude=exclude)

    def scoring_rows(self, *, config: LifecycleConfig, target: Target,
                     features: Sequence[Feature], excluded: Sequence[str], now: float,
                     contact_ids: Sequence[int]) -> LabelledRows:
        with self.engine.connect() as conn:
            return history.scoring_rows(conn, config=config, target=target, features=features,
                                        excluded=excluded, now=now, contact_ids=contact_ids)

    def scorable_ids(self, *, target: Target, after: int, limit: int) -> list[int]:
        with self.engine.connect() as conn:
            return history.scorable_ids(conn, target=target, after=after, limit=limit)

    def changed_ids(self, *, since: float) -> list[int]:
        with self.engine.connect() as conn:
            return history.changed_ids(conn, since=since)

    # --- versions ------------------------------------------------------------------

    def add_version(self, *, model: TrainedModel, created_at: float, metrics: dict[str, object],
                    details: dict[str, object], examples: int, positives: int,
                    trained_by: str) -> int:
        data = dump_model(model)
        with self.engine.begin() as conn:
            return SqlModelRepository(conn).add_version(
                created_at=created_at, target=model.target, horizon_days=model.horizon_days,
                features=[{"name": f.name, "kind": f.kind, "source": f.source}
                          for f in model.features],
                metrics=metrics, details=details, examples=examples, positives=positives,
                model=data, trained_by=trained_by)

    def versions(self) -> list[ModelVersion]:
        with self.engine.connect() as conn:
            return SqlModelRepository(conn).versions()

    def version(self, version_id: int) -> ModelVersion | None:
        with self.engine.connect() as conn:
            return SqlModelRepository(conn).version(version_id)

    def active_version(self) -> ModelVersion | None:
        with self.engine.connect() as conn:
            return SqlModelRepository(conn).active()

    def load_model(self, version: ModelVersion) -> TrainedModel:
        key = (str(self.engine.url), version.id, version.created_at)
        with _lock:
            found = _loaded.get(key)
            if found is not None:
                _loaded.move_to_end(key)
                return found
        with self.engine.connect() as conn:
            data = SqlModelRepository(conn).model_bytes(version.id)
        if data is None:
            raise NotFound(f"no model version {version.id}", field="version")
        model = load_model_bytes(data)
        with _lock:
            _loaded[key] = model
            while len(_loaded) > KEEP_LOADED:
                _loaded.popitem(last=False)
        return model

    def activate(self, version_id: int) -> None:
        with self.engine.begin() as conn:
            SqlModelRepository(conn).activate(version_id)

    def mark_scored(self, version_id: int, through: float) -> None:
        with self.engine.begin() as conn:
            SqlModelRepository(conn).mark_scored(version_id, through)

    # --- predictions ---------------------------------------------------------------

    def save_predictions(self, predictions: Sequence[Prediction], *,
                         forget: Sequence[int] = ()) -> None:
        with self.engine.begin() as conn:
            repo = SqlModelRepository(conn)
            repo.forget(forget)
            repo.save_predictions(predictions)

    def forget_older(self, version_id: int, before: float) -> int:
        with self.engine.begin() as conn:
            return SqlModelRepository(conn).forget_older(version_id, before)

    def prediction(self, contact_id: int, version_id: int) -> Prediction | None:
        with self.engine.connect() as conn:
            return SqlModelRepository(conn).prediction(contact_id, version_id)

    def count(self, version_id: int) -> int:
        with self.engine.connect() as conn:
            return SqlModelRepository(conn).count(version_id)
