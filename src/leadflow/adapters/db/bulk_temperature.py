"""Temperatures of every lead, prospect and opportunity at once (after a bulk load or rescore)."""

from __future__ import annotations

import json

import polars as pl
from sqlalchemy import Engine, text

from leadflow.adapters.db.bulk_load import insert_frame
from leadflow.adapters.db.bulk_scoring import connectorx_uri, read_frame
from leadflow.adapters.db.mapping import signals_from_json
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.engagement import EngagementState
from leadflow.domain.model import Contact, Qualification
from leadflow.domain.ports import Progress
from leadflow.domain.temperature import temperature_of

ROLES_WITH_TEMPERATURE = ("interest", "handoff", "commit")


def refresh_all_temperatures(engine: Engine, url: str, config: LifecycleConfig, *, now: float,
                             progress: Progress, chunk: int = 200_000) -> int:
    stages = [s.key for s in config.stages if s.role in ROLES_WITH_TEMPERATURE]
    role = {s.key: s.role for s in config.stages}
    h = config.engagement.half_life_seconds
    uri = connectorx_uri(url)
    cast = "CAST(%s AS TEXT)" if engine.dialect.name == "postgresql" else "%s"
    quoted = ", ".join(f"'{s}'" for s in stages)
    with engine.connect() as conn:
        low, high = conn.execute(text("SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) "
                                      "FROM contacts")).one()
    progress.start("temperatures", int(high - low + 1) if high else 0)
    done = 0
    start = int(low)
    while high and start <= high:
        end = start + chunk
        frame = read_frame(
            engine, uri, f"SELECT id, stage, source, {cast % 's.signals'} AS signals, "
            f"{cast % 'qualification'} AS qualification, s.engagement_score, s.engagement_t0 "
            f"FROM contacts JOIN contact_scores s ON s.contact_id = contacts.id "
            f"WHERE id >= {start} AND id < {end} AND stage IN ({quoted})")
        out: dict[str, list[object]] = {"id": [], "temperature": [], "until": []}
        for cid, stage, source, signals, qual, score, t0 in frame.iter_rows():
            contact = Contact(
                id=cid, stage=stage, source=source,
                signals=signals_from_json(json.loads(signals or "{}")),
                qualification=Qualification(
                    answers=json.loads(qual or "{}").get("answers", {})),
                engagement=EngagementState(score=score, t0=t0))
            reading = temperature_of(contact, role[stage], now=now, config=config.temperature,
                                     engagement_now=contact.engagement.at(now, h),
                                     half_life_seconds=h)
            out["id"].append(cid)
            out["temperature"].append(reading.temperature)
            out["until"].append(reading.valid_until)
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("CREATE TEMP TABLE temp_tmp (id BIGINT PRIMARY KEY, "
                                  "temperature TEXT, until FLOAT8) ON COMMIT DROP"))
            else:
                conn.execute(text("DROP TABLE IF EXISTS temp.temp_tmp"))
                conn.execute(text("CREATE TEMP TABLE temp_tmp (id INTEGER PRIMARY KEY, "
                                  "temperature TEXT, until REAL)"))
            insert_frame(conn, "temp_tmp", pl.DataFrame(out, schema={
                "id": pl.Int64, "temperature": pl.Utf8, "until": pl.Float64}))
            conn.execute(text(
                "UPDATE contacts SET temperature = t.temperature, temperature_until = t.until "
                "FROM temp_tmp t WHERE contacts.id = t.id"))
        done += frame.height
        progress.advance(min(end, int(high) + 1) - start)
        start = end
    progress.finish()
    return done
