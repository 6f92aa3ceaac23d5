"""Set-based engagement scoring of every contact, straight from the raw events.

The current rules are evaluated in Python (the same ``Matcher`` code the incremental path uses)
once per distinct event *shape*, which is a few thousand rows; the per-event work — caps per
window, decay, sums per contact and per rule — runs as columnar Polars expressions over events,
one range of contact ids at a time; large databases are scored by two worker processes.

connectorx bundles its own SQLite library. Two SQLite libraries in one process do not share
POSIX file locks, so while Python's sqlite3 holds the same file open connectorx reads stale WAL
snapshots (and writes can fail). SQLite is therefore read through the engine's own driver in
this process, and with connectorx only inside worker processes that open nothing else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.bulk_load import insert_frame
from leadflow.adapters.db.mapping import shape_from_row
from leadflow.domain.config import EngagementConfig, LifecycleConfig
from leadflow.domain.engagement import NEGATIVE_RANK_BASE, WINDOW_ORIGIN, ZERO_RANK
from leadflow.domain.ports import Progress, ScoreDifference

SCORE_COLUMNS = ("contact_id", "score", "t0", "rank", "breakdown", "caps", "baseline",
                 "signals")


def connectorx_uri(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        return f"sqlite://{database}" if database.startswith("/") else f"sqlite:///{database}"
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


PARALLEL_FROM_EVENTS = 400_000


def read_frame(engine: Engine | None, uri: str, sql: str) -> pl.DataFrame:
    """Run a query into a DataFrame: connectorx for PostgreSQL and in worker processes
    (``engine`` None), the engine's own driver for SQLite in a process that uses it."""
    if engine is None or engine.dialect.name == "postgresql":
        return pl.read_database_uri(sql, uri, engine="connectorx")
    with engine.connect() as conn:
        return pl.read_database(text(sql), connection=conn, infer_schema_length=None)


def _score_range_job(url: str, config: LifecycleConfig, shape_rules: pl.DataFrame,
                     shape_signals: pl.DataFrame, watermark: int, low: int,
                     high: int) -> pl.DataFrame:
    scorer = PolarsBulkScoring(None, url, config)
    return scorer.score_range(low, high, shape_rules, shape_signals, watermark)


@dataclass
class ScoreChunk:
    low: int
    high: int
    frame: pl.DataFrame  # SCORE_COLUMNS, one row per contact of the range that has events


class PolarsBulkScoring:
    """Implements ``BulkScoring`` over a SQLite or PostgreSQL database."""

    def __init__(self, engine: Engine | None, url: str, config: LifecycleConfig,
                 chunk_contacts: int = 250_000) -> None:
        self._engine = engine
        self.url = url
        self.uri = connectorx_uri(url)
        self.lifecycle = config
        self.config: EngagementConfig = config.engagement
        self.chunk = chunk_contacts
        self.h = self.config.half_life_seconds

    # ------------------------------------------------------------------ reading

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("a worker scorer has no engine")
        return self._engine

    def _read(self, sql: str) -> pl.DataFrame:
        return read_frame(self._engine, self.uri, sql)

    def shapes(self) -> list[tuple[int, Any]]:
        with self.engine.connect() as conn:
            return [(r.id, shape_from_row(r)) for r in conn.execute(select(t.event_shapes))]

    def shape_signals(self) -> pl.DataFrame:
        """One row per (shape, signal it shows)."""
        rows: dict[str, list[Any]] = {"shape_id": [], "signal": []}
        for shape_id, shape in self.shapes():
            for name, matcher in self.lifecycle.signals.items():
                if matcher.matches(shape):
                    rows["shape_id"].append(shape_id)
                    rows["signal"].append(name)
        return pl.DataFrame(rows, schema={"shape_id": pl.Int64, "signal": pl.Utf8})

    def shape_rules(self) -> pl.DataFrame:
        """One row per (shape, matching rule): the rule evaluation of every distinct shape."""
        rows: dict[str, list[Any]] = {"shape_id": [], "rule": [], "points": [], "cap": [],
                                      "window": []}
        for shape_id, shape in self.shapes():
            for rule in self.config.rules:
                if rule.when.matches(shape):
                    rows["shape_id"].append(shape_id)
                    rows["rule"].append(rule.key)
                    rows["points"].append(rule.points)
                    rows["cap"].append(rule.cap.points if rule.cap else None)
                    rows["window"].append(rule.cap.window_seconds if rule.cap else None)
        return pl.DataFrame(rows, schema={"shape_id": pl.Int64, "rule": pl.Utf8,
                                          "points": pl.Float64, "cap": pl.Float64,
                                          "window": pl.Float64})

    def id_range(self) -> tuple[int, int]:
        with self.engine.connect() as conn:
            low, high = conn.execute(select(func.min(t.contacts.c.id),
                                            func.max(t.contacts.c.id))).one()
        return (low or 0), (high or 0)

    def watermark(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(t.events.c.id), 0))).scalar()
                       or 0)

    def ranges(self) -> Iterator[tuple[int, int]]:
        low, high = self.id_range()
        start = low
        while start <= high and high > 0:
            yield start, min(start + self.chunk, high + 1)
            start += self.chunk

    # ------------------------------------------------------------------ computing

    def score_range(self, low: int, high: int, shape_rules: pl.DataFrame,
                    shape_signals: pl.DataFrame, watermark: int) -> pl.DataFrame:
        events = self._read(
            f"SELECT contact_id, ts, shape_id FROM events "
            f"WHERE contact_id >= {int(low)} AND contact_id < {int(high)} "
            f"AND id <= {int(watermark)}")
        recycled = self._read(
            f"SELECT id AS contact_id, recycled_at FROM contacts "
            f"WHERE id >= {int(low)} AND id < {int(high)} AND recycled_at IS NOT NULL")
        scores = self.score_frame(events, shape_rules, recycled)
        signals = self.signals_frame(events, shape_signals)
        return scores.join(signals, on="contact_id", how="full", coalesce=True).with_columns(
            pl.col("score").fill_null(0.0), pl.col("rank").fill_null(ZERO_RANK),
            pl.col("breakdown").fill_null("{}"), pl.col("caps").fill_null("{}"),
            pl.col("baseline").fill_null(0.0), pl.col("signals").fill_null("{}"),
        ).select(SCORE_COLUMNS).sort("contact_id")

    def signals_frame(self, events: pl.DataFrame, shape_signals: pl.DataFrame
                      ) -> pl.DataFrame:
        """Per contact, each signal's count and two latest times, as the JSON the row holds."""
        rows = events.lazy().with_columns(
            pl.col("contact_id").cast(pl.Int64), pl.col("shape_id").cast(pl.Int64),
            pl.col("ts").cast(pl.Float64),
        ).join(shape_signals.lazy(), on="shape_id", how="inner")
        per_signal = rows.group_by(["contact_id", "signal"]).agg(
            pl.len().alias("n"),
            pl.col("ts").sort(descending=True).head(2).cast(pl.Utf8).str.join(",").alias("last"),
        )
        return per_signal.sort(["contact_id", "signal"]).group_by("contact_id").agg(
            pl.concat_str([pl.lit('"'), pl.col("signal"), pl.lit('":{"n":'),
                           pl.col("n").cast(pl.Utf8), pl.lit(',"last":['), pl.col("last"),
                           pl.lit("]}")]).sort_by(pl.col("signal")).str.join(",")
            .alias("signals"),
        ).select("contact_id", (pl.lit("{") + pl.col("signals") + pl.lit("}")).alias("signals")
                 ).collect()

    def score_frame(self, events: pl.DataFrame, shape_rules: pl.DataFrame,
                    recycled: pl.DataFrame) -> pl.DataFrame:
        """One row per contact with matching events: score at t0, breakdown, caps state and
        the engagement that stood at its last recycle."""
        h = self.h
        keys = [r.key for r in self.config.rules]
        rule_ids = pl.DataFrame({"rule": keys, "rule_idx": list(range(len(keys)))},
                                schema={"rule": pl.Utf8, "rule_idx": pl.Int32})
        rules = shape_rules.lazy().join(rule_ids.lazy(), on="rule").select(
            pl.col("shape_id").cast(pl.Int64), "rule_idx", "points", "cap", "window")
        # Events of one rule at the same instant are interchangeable (same points, same decay),
        # so ties need no tie-breaker and the event id is not read.
        rows = events.lazy().select(
            pl.col("contact_id").cast(pl.Int64), pl.col("ts").cast(pl.Float64),
            pl.col("shape_id").cast(pl.Int64),
        ).join(rules, on="shape_id", how="inner")
        uncapped = rows.filter(pl.col("cap").is_null()).select(
            "contact_id", "rule_idx", "ts", pl.col("points").alias("awarded"))
        # Within a window the first events take their points until the cap is used up: every
        # event of a rule carries the same points, so the n-th event of a window (n from 0)
        # gets what is left after n·|points|. Runs of (contact, rule, window) are found on the
        # time-sorted rows instead of hashing groups.
        capped = rows.filter(pl.col("cap").is_not_null()).with_columns(
            ((pl.col("ts") - WINDOW_ORIGIN) / pl.col("window")).floor().cast(pl.Int64)
            .alias("bucket"),
        ).sort(["contact_id", "rule_idx", "ts"])
        same_rule = ((pl.col("contact_id") == pl.col("contact_id").shift(1))
                     & (pl.col("rule_idx") == pl.col("rule_idx").shift(1)))
        capped = capped.with_columns(
            (~(same_rule & (pl.col("bucket") == pl.col("bucket").shift(1))).fill_null(False))
            .alias("run_start"),
            (~((pl.col("contact_id") == pl.col("contact_id").shift(-1))
               & (pl.col("rule_idx") == pl.col("rule_idx").shift(-1))).fill_null(False))
            .alias("rule_end"),
            pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
            pl.col("points").abs().alias("mag"),
        ).with_columns(
            (pl.col("row") - pl.when(pl.col("run_start")).then(pl.col("row")).forward_fill())
            .cast(pl.Float64).alias("n"),
        ).with_columns(
            (pl.min_horizontal(pl.col("cap"), pl.col("n") * pl.col("mag") + pl.col("mag"))
             - pl.min_horizontal(pl.col("cap"), pl.col("n") * pl.col("mag"))).alias("gain"),
            pl.min_horizontal(pl.col("cap"), pl.col("n") * pl.col("mag") + pl.col("mag"))
            .alias("used"),
        )
        cap_state = capped.filter(pl.col("rule_end")).select(
            "contact_id", "rule_idx", "bucket", "used")
        awarded = pl.concat([
            uncapped,
            capped.select("contact_id", "rule_idx", "ts",
                          (pl.col("gain") * pl.col("points").sign()).alias("awarded")),
        ])
        t0 = awarded.group_by("contact_id").agg(pl.col("ts").max().alias("t0"))
        per_rule = awarded.join(t0, on="contact_id").group_by(["contact_id", "rule_idx"]).agg(
            (pl.col("awarded") * (2.0 ** ((pl.col("ts") - pl.col("t0")) / h))).sum()
            .alias("value"),
            pl.col("t0").first(),
        ).join(rule_ids.lazy(), on="rule_idx")
        recycled_at = recycled.lazy().select(pl.col("contact_id").cast(pl.Int64),
                                             pl.col("recycled_at").cast(pl.Float64))
        baseline = awarded.join(recycled_at, on="contact_id").filter(
            pl.col("ts") <= pl.col("recycled_at")).group_by("contact_id").agg(
            (pl.col("awarded") * (2.0 ** ((pl.col("ts") - pl.col("recycled_at")) / h))).sum()
            .alias("baseline"))
        caps_json = cap_state.join(rule_ids.lazy(), on="rule_idx").group_by("contact_id").agg(
            pl.concat_str([pl.lit('"'), pl.col("rule"), pl.lit('":['),
                           pl.col("bucket").cast(pl.Utf8), pl.lit(","),
                           pl.col("used").cast(pl.Utf8), pl.lit("]")])
            .sort_by(pl.col("rule")).str.join(",").alias("caps"))
        # Parallel sums differ from run to run in the last bits: the breakdown (for reading, not
        # for computing) keeps 12 significant digits and a fixed key order, so that a rescore
        # that changes nothing rewrites nothing.
        per_contact = per_rule.group_by("contact_id").agg(
            pl.col("value").sum().alias("score"),
            pl.col("t0").first(),
            pl.concat_str([pl.lit('"'), pl.col("rule"), pl.lit('":'),
                           pl.col("value").round_sig_figs(12).cast(pl.Utf8)])
            .sort_by(pl.col("rule")).str.join(",").alias("breakdown"),
        ).join(caps_json, on="contact_id", how="left").join(baseline, on="contact_id",
                                                             how="left")
        score = pl.col("score")
        rank = (pl.when(score > 0).then(pl.col("t0") / h + score.log(2))
                .when(score < 0).then(NEGATIVE_RANK_BASE - (pl.col("t0") / h + (-score).log(2)))
                .otherwise(ZERO_RANK))
        return per_contact.select(
            "contact_id", "score", "t0", rank.alias("rank"),
            (pl.lit("{") + pl.col("breakdown") + pl.lit("}")).alias("breakdown"),
            (pl.lit("{") + pl.col("caps").fill_null("") + pl.lit("}")).alias("caps"),
            pl.col("baseline").fill_null(0.0),
        ).sort("contact_id").collect()

    def recompute(self, progress: Progress) -> list[ScoreChunk]:
        shape_rules = self.shape_rules()
        shape_signals = self.shape_signals()
        watermark = self.watermark()
        ranges = list(self.ranges())
        progress.start("rescoring contacts", sum(h - lo for lo, h in ranges))
        chunks = []
        if watermark < PARALLEL_FROM_EVENTS or len(ranges) < 2:
            for low, high in ranges:
                chunks.append(ScoreChunk(low, high, self.score_range(
                    low, high, shape_rules, shape_signals, watermark)))
                progress.advance(high - low)
        else:
            with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(_score_range_job, self.url, self.lifecycle, shape_rules,
                                       shape_signals, watermark, low, high)
                           for low, high in ranges]
                for (low, high), future in zip(ranges, futures, strict=True):
                    chunks.append(ScoreChunk(low, high, future.result()))
                    progress.advance(high - low)
        progress.finish()
        self.last_watermark = watermark
        return chunks

    # ------------------------------------------------------------------ comparing

    def stored(self, low: int, high: int) -> pl.DataFrame:
        cast = "CAST(%s AS TEXT)" if self.engine.dialect.name == "postgresql" else "%s"
        return self._read(
            f"SELECT id AS contact_id, engagement_score AS score, engagement_t0 AS t0, "
            f"{cast % 'engagement_breakdown'} AS breakdown, {cast % 'engagement_caps'} AS caps, "
            f"recycle_baseline AS baseline, recycled_at, {cast % 'signals'} AS signals "
            f"FROM contacts "
            f"WHERE id >= {int(low)} AND id < {int(high)} ORDER BY id")

    def differences(self, scores: list[ScoreChunk], *, tolerance: float = 1e-9
                    ) -> Iterator[ScoreDifference]:
        for chunk in scores:
            stored = self.stored(chunk.low, chunk.high)
            joined = stored.join(chunk.frame, on="contact_id", how="left", suffix="_new")
            for row in joined.iter_rows(named=True):
                yield from _compare(row, tolerance)

    # ------------------------------------------------------------------ writing

    def write(self, scores: list[ScoreChunk], progress: Progress) -> int:
        total = sum(c.high - c.low for c in scores)
        progress.start("writing scores", total)
        written = 0
        for chunk in scores:
            written += self._write_chunk(chunk)
            progress.advance(chunk.high - chunk.low)
        progress.finish()
        return written

    def _write_chunk(self, chunk: ScoreChunk) -> int:
        """Store a range's scores, rewriting only the rows whose values changed."""
        with self.engine.begin() as conn:
            pg = conn.dialect.name == "postgresql"
            if pg:
                conn.execute(text(
                    "CREATE TEMP TABLE rescore_tmp (contact_id BIGINT PRIMARY KEY, score FLOAT8,"
                    " t0 FLOAT8, rank FLOAT8, breakdown TEXT, caps TEXT, baseline FLOAT8,"
                    " signals TEXT) ON COMMIT DROP"))
            else:
                conn.execute(text("DROP TABLE IF EXISTS temp.rescore_tmp"))
                conn.execute(text(
                    "CREATE TEMP TABLE rescore_tmp (contact_id INTEGER PRIMARY KEY, score REAL,"
                    " t0 REAL, rank REAL, breakdown TEXT, caps TEXT, baseline REAL, signals TEXT)"))
            insert_frame(conn, "rescore_tmp", chunk.frame.select(SCORE_COLUMNS))
            differs = "IS DISTINCT FROM" if pg else "IS NOT"
            as_text = "CAST(contacts.{} AS TEXT)" if pg else "contacts.{}"
            json_cast = "::json" if pg else ""
            baseline = "CASE WHEN contacts.recycled_at IS NULL THEN 0 ELSE r.baseline END"
            def apart(stored: str, new: str) -> str:
                return (f"(({stored}) IS NULL) <> (({new}) IS NULL) OR "
                        f"ABS(({stored}) - ({new})) > 1e-9 * (1 + ABS({new}))")

            changed = " OR ".join([
                apart("contacts.engagement_score", "r.score"),
                f"contacts.engagement_t0 {differs} r.t0",
                apart("contacts.engagement_rank", "r.rank"),
                apart("contacts.recycle_baseline", baseline),
                *(f"{as_text.format(col)} {differs} r.{src}" for col, src in (
                    ("engagement_breakdown", "breakdown"), ("engagement_caps", "caps"),
                    ("signals", "signals"))),
            ])
            updated = conn.execute(text(
                "UPDATE contacts SET engagement_score = r.score, engagement_t0 = r.t0, "
                f"engagement_rank = r.rank, engagement_breakdown = r.breakdown{json_cast}, "
                f"engagement_caps = r.caps{json_cast}, signals = r.signals{json_cast}, "
                f"recycle_baseline = {baseline} "
                f"FROM rescore_tmp r WHERE contacts.id = r.contact_id AND ({changed})"
            )).rowcount or 0
            # Contacts of the range whose events no longer match anything score zero.
            empty = "'{}'"
            updated += conn.execute(text(
                "UPDATE contacts SET engagement_score = 0, engagement_t0 = NULL, "
                f"engagement_rank = {ZERO_RANK}, engagement_breakdown = {empty}, "
                f"engagement_caps = {empty}, recycle_baseline = 0, signals = {empty} "
                "WHERE id >= :low AND id < :high "
                f"AND (engagement_t0 IS NOT NULL OR {as_text.format('signals')} <> {empty}) "
                "AND NOT EXISTS (SELECT 1 FROM rescore_tmp r WHERE r.contact_id = contacts.id)"),
                {"low": chunk.low, "high": chunk.high}).rowcount or 0
            if not pg:
                conn.execute(text("DROP TABLE temp.rescore_tmp"))
        return updated


def _close(a: float | None, b: float | None, tol: float) -> bool:
    if a is None or b is None:
        return (a or 0.0) == (b or 0.0) if (a is None) != (b is None) else True
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def _compare(row: dict[str, Any], tol: float) -> Iterator[ScoreDifference]:
    cid = row["contact_id"]
    new_score = row["score_new"] if row["score_new"] is not None else 0.0
    if not _close(row["score"], new_score, tol):
        yield ScoreDifference(cid, "engagement", row["score"], new_score)
    if row["t0"] != row["t0_new"] and not _close(row["t0"], row["t0_new"], tol):
        yield ScoreDifference(cid, "engagement_t0", row["t0"], row["t0_new"])
    old_b = json.loads(row["breakdown"] or "{}")
    new_b = json.loads(row["breakdown_new"] or "{}")
    for key in sorted(set(old_b) | set(new_b)):
        if key not in old_b or key not in new_b or not _close(old_b[key], new_b[key], tol):
            yield ScoreDifference(cid, f"breakdown.{key}", old_b.get(key), new_b.get(key))
    old_c = json.loads(row["caps"] or "{}")
    new_c = json.loads(row["caps_new"] or "{}")
    for key in sorted(set(old_c) | set(new_c)):
        a, b = old_c.get(key), new_c.get(key)
        if a is None or b is None or int(a[0]) != int(b[0]) or not _close(a[1], b[1], tol):
            yield ScoreDifference(cid, f"cap.{key}", a, b)
    old_s = json.loads(row["signals"] or "{}")
    new_s = json.loads(row["signals_new"] or "{}")
    for key in sorted(set(old_s) | set(new_s)):
        a, b = old_s.get(key), new_s.get(key)
        if (a is None or b is None or a["n"] != b["n"] or len(a["last"]) != len(b["last"])
                or not all(_close(x, y, tol) for x, y in zip(a["last"], b["last"], strict=True))):
            yield ScoreDifference(cid, f"signal.{key}", a, b)
    if row["recycled_at"] is not None:
        new_base = row["baseline_new"] or 0.0
        if not _close(row["baseline"], new_base, tol):
            yield ScoreDifference(cid, "recycle_baseline", row["baseline"], new_base)
