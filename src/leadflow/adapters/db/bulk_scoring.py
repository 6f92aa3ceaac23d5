"""Set-based engagement scoring of every contact, straight from the raw events.

The current rules are evaluated in Python (the same ``Matcher`` code the incremental path uses)
once per distinct event *shape*, which is a few thousand rows; the per-event work — caps per
window, decay, sums per contact and per rule — runs as columnar Polars expressions over events,
one range of contact ids at a time; large databases are scored by two worker processes.

The events of a range are read sorted by (contact, time), the order of the events index, so
that runs of one contact (and, after one stable sort, of one contact and rule) are found by
comparing neighbouring rows instead of hashing groups.

Each worker also reads the range's stored ``rescored`` fingerprints and returns, for every
contact of the range, its recomputed values, their fingerprint and whether they differ from
what is stored, so that the writer rewrites only the contacts that changed and never reads
their JSON back.

connectorx bundles its own SQLite library. Two SQLite libraries in one process do not share
POSIX file locks, so while Python's sqlite3 holds the same file open connectorx reads stale WAL
snapshots (and writes can fail). SQLite is therefore read through the engine's own driver in
this process, and with connectorx only inside worker processes that open nothing else.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import numpy as np
import polars as pl
import psycopg
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.engine import make_url

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.bulk_load import insert_frame
from leadflow.adapters.db.bulk_rows import begin_now
from leadflow.adapters.db.mapping import shape_from_row
from leadflow.domain.config import EngagementConfig, LifecycleConfig
from leadflow.domain.engagement import NEGATIVE_RANK_BASE, WINDOW_ORIGIN, ZERO_RANK
from leadflow.domain.ports import Progress, ScoreDifference

SCORE_COLUMNS = ("contact_id", "score", "t0", "rank", "breakdown", "caps", "baseline",
                 "signals")
# contact_scores' column for each of SCORE_COLUMNS, and the fingerprint.
STORED_AS = {"contact_id": "contact_id", "score": "engagement_score", "t0": "engagement_t0",
             "rank": "engagement_rank", "breakdown": "engagement_breakdown",
             "caps": "engagement_caps", "baseline": "recycle_baseline", "signals": "signals",
             "rescored": "rescored"}
# Half-lives over which a running decayed sum is kept in one piece (2^500 ≈ 3e150: room for
# millions of events before a float overflows).
LONG = 500.0
# A share of a database's contacts above which a rescore rebuilds the rank index instead of
# maintaining it row by row.
REBUILD_INDEX_FROM = 0.3


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


# PostgreSQL: the events of at most this many contacts come back in one row (one array per
# column), which bounds the arrays' size.
PACKED_CONTACTS = 65_536
# Element types of the arrays (by type oid) that ``unpack_array`` reads.
_ARRAY_TYPES: dict[int, np.dtype[Any]] = {20: np.dtype(">i8"), 23: np.dtype(">i4"),
                                         701: np.dtype(">f8")}


def unpack_array(buf: bytes | None) -> np.ndarray:
    """A one-dimensional PostgreSQL array without NULLs, in its binary form (``array_send``),
    as a NumPy array; an empty one for NULL (``array_agg`` of no rows)."""
    if buf is None:
        return np.empty(0, dtype=np.int64)
    ndim, flags, oid = struct.unpack_from(">iiI", buf)
    dtype = _ARRAY_TYPES[oid]
    if ndim == 0:
        return np.empty(0, dtype=dtype.newbyteorder("="))
    if ndim != 1 or flags != 0:
        raise ValueError("expected a one-dimensional array without NULLs")
    (n,) = struct.unpack_from(">i", buf, 12)
    pairs = np.frombuffer(buf, dtype=np.dtype([("len", ">i4"), ("value", dtype)]),
                          offset=20, count=n)
    return pairs["value"].astype(dtype.newbyteorder("="))


def read_events_packed(conn: Any, low: int, high: int, watermark: int, *,
                       block: int = PACKED_CONTACTS) -> pl.DataFrame:
    """contact_id, ts, shape_id of the events of contacts [low, high) up to ``watermark``, from
    PostgreSQL (``conn`` a psycopg connection), in (contact, time) order.

    Each block of contacts comes back as one row of three arrays in binary form, which NumPy
    reads as they are: a row per event costs the client far more to decode (connectorx: ~2.3
    CPU-s per 4.8M events, against ~0.2 s) than the server to aggregate. The rows are fed to
    the aggregates in the index's order, so the three arrays line up and are usually sorted
    (``sorted_events`` checks)."""
    parts: list[pl.DataFrame] = []
    with conn.cursor(binary=True) as cur:
        for start in range(int(low), int(high), block):
            end = min(start + block, int(high))
            cur.execute(
                "SELECT array_send(array_agg(contact_id)), array_send(array_agg(ts)), "
                "array_send(array_agg(shape_id)) FROM (SELECT contact_id, ts, shape_id "
                "FROM events WHERE contact_id >= %s AND contact_id < %s AND id <= %s "
                "ORDER BY contact_id, ts) e", (start, end, int(watermark)))
            row = cur.fetchone()
            assert row is not None
            contact_id, ts, shape_id = (unpack_array(v) for v in row)
            parts.append(pl.DataFrame({
                "contact_id": contact_id.astype(np.int64), "ts": ts.astype(np.float64),
                "shape_id": shape_id.astype(np.int64)}))
    return pl.concat(parts) if parts else pl.DataFrame(schema={
        "contact_id": pl.Int64, "ts": pl.Float64, "shape_id": pl.Int64})


def _range_job(job: Any, url: str, config: LifecycleConfig, shape_rules: pl.DataFrame,
               shape_signals: pl.DataFrame, watermark: int, low: int, high: int) -> Any:
    """In a worker process: ``job`` (a PolarsBulkScoring method) on one range of contacts."""
    return job(PolarsBulkScoring(None, url, config), low, high, shape_rules, shape_signals,
               watermark)


@dataclass
class ScoreChunk:
    low: int
    high: int
    # SCORE_COLUMNS, "rescored" (the values' fingerprint) and "changed", one row per contact
    # of the range (all zero for a contact without a scored event)
    frame: pl.DataFrame


def _first_reached(per: pl.DataFrame, tests: list[tuple[str, float]]) -> pl.DataFrame:
    """(contact_id, key, reached_at): the first ``ts`` at which ``score`` reached each test."""
    return pl.concat([per.filter(pl.col("score") >= number).group_by("contact_id").agg(
        pl.col("ts").min().alias("reached_at")).with_columns(pl.lit(key).alias("key"))
        .select("contact_id", "key", "reached_at") for key, number in tests])


def _decayed_sums(per: pl.DataFrame, h: float) -> list[float]:
    """The running decayed sum of ``awarded`` per (contact, part) run, one point at a time:
    what the cumulative form computes, without its 2^age factors."""
    sums: list[float] = []
    score, last, at = 0.0, None, 0.0
    for run, ts, awarded in per.select(pl.struct("contact_id", "part"), "ts",
                                       "awarded").iter_rows():
        score = awarded if run != last else score * 2.0 ** (-(ts - at) / h) + awarded
        last, at = run, ts
        sums.append(score)
    return sums


def _runs(key: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Whether each row starts, and whether it ends, a run of equal ``key`` (sorted rows)."""
    return (key != key.shift(1)).fill_null(True), (key != key.shift(-1)).fill_null(True)


def _position_in_run(starts: pl.Expr) -> pl.Expr:
    """0 for a run's first row, 1 for the next, ..."""
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    return row - pl.when(starts).then(row).forward_fill()


def sorted_events(events: pl.DataFrame) -> pl.DataFrame:
    """contact_id, ts, shape_id sorted by (contact, time), which is how they are read; any
    other order is sorted first."""
    ev = events.select(pl.col("contact_id").cast(pl.Int64), pl.col("ts").cast(pl.Float64),
                       pl.col("shape_id").cast(pl.Int64))
    step = pl.col("contact_id").diff()
    in_order = ev.select(((step > 0) | ((step == 0) & (pl.col("ts").diff() >= 0)))
                         .fill_null(True).all()).item()
    return ev if in_order else ev.sort(["contact_id", "ts"])


def _indexed(names: list[str], name: str, index: str) -> pl.DataFrame:
    """Names numbered in sorted order, so that sorting by the number sorts by the name."""
    ordered = sorted(set(names))
    return pl.DataFrame({name: ordered, index: list(range(len(ordered)))},
                        schema={name: pl.Utf8, index: pl.Int64})


def _name_of(index: pl.Expr, names: pl.Series) -> pl.Expr:
    """The name numbered ``index`` (see ``_indexed``)."""
    return pl.lit(names).gather(index)


def _json_objects(entries: pl.DataFrame, entry: str, alias: str) -> pl.DataFrame:
    """One JSON object per contact from its '"key":value' entries, in their order."""
    return entries.group_by("contact_id").agg(entry).select(
        "contact_id", (pl.lit("{") + pl.col(entry).list.join(",") + pl.lit("}")).alias(alias),
    ).sort("contact_id")


def fingerprint(frame: pl.DataFrame) -> pl.Series:
    """A 64-bit digest of a contact's scored values, as stored in ``rescored``. Numbers count
    to 12 significant digits (sums in parallel differ in their last bits), so equal digests
    mean values within the rescore's tolerance; unequal ones only cost a rewrite."""
    def num(c: str) -> pl.Expr:
        return pl.col(c).round_sig_figs(12).cast(pl.Utf8).fill_null("-")

    return frame.select(pl.concat_str([
        num("score"), pl.col("t0").cast(pl.Utf8).fill_null("-"), num("rank"), num("baseline"),
        pl.col("breakdown"), pl.col("caps"), pl.col("signals")], separator="|")
        .hash(seed=20261122).reinterpret(signed=True).alias("rescored")).to_series()


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

    def _read_events(self, low: int, high: int, watermark: int) -> pl.DataFrame:
        if make_url(self.url).get_backend_name() == "postgresql":
            if self._engine is None:
                with psycopg.connect(self.uri) as raw:
                    return read_events_packed(raw, low, high, watermark)
            with self._engine.connect() as conn:
                return read_events_packed(conn.connection.driver_connection, low, high,
                                          watermark)
        # SQLite walks ix_events_contact_ts for this, already in order.
        return self._read(
            f"SELECT contact_id, ts, shape_id FROM events "
            f"WHERE contact_id >= {int(low)} AND contact_id < {int(high)} "
            f"AND id <= {int(watermark)} ORDER BY contact_id, ts")

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

    def range_inputs(self, low: int, high: int, watermark: int
                     ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The range's events (contact_id, ts, shape_id; in that order) and its contacts'
        latest recycles (contact_id, recycled_at)."""
        events = sorted_events(self._read_events(low, high, watermark))
        recycled = self._read(
            f"SELECT id AS contact_id, recycled_at FROM contacts "
            f"WHERE id >= {int(low)} AND id < {int(high)} AND recycled_at IS NOT NULL"
        ).select(pl.col("contact_id").cast(pl.Int64), pl.col("recycled_at").cast(pl.Float64))
        return events, recycled

    def score_range(self, low: int, high: int, shape_rules: pl.DataFrame,
                    shape_signals: pl.DataFrame, watermark: int,
                    inputs: tuple[pl.DataFrame, pl.DataFrame] | None = None) -> pl.DataFrame:
        """SCORE_COLUMNS for each contact of the range with events that score or signal."""
        events, recycled = inputs or self.range_inputs(low, high, watermark)
        scores = self.score_frame(events, shape_rules, recycled)
        signals = self.signals_frame(events, shape_signals)
        return scores.join(signals, on="contact_id", how="full", coalesce=True).with_columns(
            pl.col("score").fill_null(0.0), pl.col("rank").fill_null(ZERO_RANK),
            pl.col("breakdown").fill_null("{}"), pl.col("caps").fill_null("{}"),
            pl.col("baseline").fill_null(0.0), pl.col("signals").fill_null("{}"),
        ).select(SCORE_COLUMNS).sort("contact_id")

    def rescore_range(self, low: int, high: int, shape_rules: pl.DataFrame,
                      shape_signals: pl.DataFrame, watermark: int,
                      inputs: tuple[pl.DataFrame, pl.DataFrame] | None = None
                      ) -> pl.DataFrame:
        """Every stored contact of the range with its recomputed values (zero without scored
        events), their fingerprint, and whether it differs from the stored one."""
        scores = self.score_range(low, high, shape_rules, shape_signals, watermark, inputs)
        stored = self._read(
            f"SELECT contact_id, rescored AS stored FROM contact_scores "
            f"WHERE contact_id >= {int(low)} AND contact_id < {int(high)} ORDER BY contact_id"
        ).select(pl.col("contact_id").cast(pl.Int64), pl.col("stored").cast(pl.Int64))
        frame = stored.join(scores, on="contact_id", how="left", maintain_order="left"
                            ).with_columns(
            pl.col("score").fill_null(0.0), pl.col("rank").fill_null(ZERO_RANK),
            pl.col("breakdown").fill_null("{}"), pl.col("caps").fill_null("{}"),
            pl.col("baseline").fill_null(0.0), pl.col("signals").fill_null("{}"))
        frame = frame.with_columns(fingerprint(frame))
        return frame.with_columns(
            pl.col("stored").ne_missing(pl.col("rescored")).alias("changed")
        ).select(*SCORE_COLUMNS, "rescored", "changed")

    def signals_frame(self, events: pl.DataFrame, shape_signals: pl.DataFrame
                      ) -> pl.DataFrame:
        """Per contact, each signal's count and two latest times, as the JSON the row holds."""
        ids = _indexed(shape_signals["signal"].to_list(), "signal", "signal_idx")
        per_shape = shape_signals.join(ids, on="signal").select(
            pl.col("shape_id").cast(pl.Int64), "signal_idx")
        n_signals = max(ids.height, 1)
        # (contact, signal, time) order: a stable sort of the (contact, time) order.
        rows = sorted_events(events).join(per_shape, on="shape_id", how="inner",
                                          maintain_order="left").select(
            (pl.col("contact_id") * n_signals + pl.col("signal_idx")).alias("key"), "ts",
        ).sort("key", maintain_order=True)
        starts, ends = _runs(pl.col("key"))
        last = rows.with_columns(
            (_position_in_run(starts) + 1).alias("n"), pl.col("ts").shift(1).alias("before"),
        ).filter(ends)
        times = pl.when(pl.col("n") >= 2).then(pl.concat_str([
            pl.col("ts").cast(pl.Utf8), pl.lit(","), pl.col("before").cast(pl.Utf8)])
        ).otherwise(pl.col("ts").cast(pl.Utf8))
        entry = pl.concat_str([pl.lit('"'), _name_of(pl.col("key") % n_signals, ids["signal"]),
                               pl.lit('":{"n":'), pl.col("n").cast(pl.Utf8),
                               pl.lit(',"last":['), times, pl.lit("]}")])
        return _json_objects(last.select((pl.col("key") // n_signals).alias("contact_id"),
                                         entry.alias("entry")), "entry", "signals")

    def _awarded(self, events: pl.DataFrame, shape_rules: pl.DataFrame
                 ) -> tuple[pl.DataFrame, pl.Series, int]:
        """Each scoring (event, rule) with the points it was awarded after caps, in (contact,
        rule, time) order: ``key`` (contact × rules + rule number), ``ts``, ``t0`` (the
        contact's last scored event), ``awarded``, the cap state; the rule names by number,
        and how many rules."""
        rule_ids = _indexed([r.key for r in self.config.rules], "rule", "rule_idx")
        n_rules = max(rule_ids.height, 1)
        by_key = {r.key: r for r in self.config.rules}
        names = rule_ids["rule"]
        # The rule's points, cap and window, looked up by rule number.
        points = pl.Series([by_key[k].points for k in names], dtype=pl.Float64)
        caps_at = pl.Series([by_key[k].cap.points if by_key[k].cap else None  # type: ignore[union-attr]
                             for k in names], dtype=pl.Float64)
        windows = pl.Series([by_key[k].cap.window_seconds if by_key[k].cap else None  # type: ignore[union-attr]
                             for k in names], dtype=pl.Float64)
        per_shape = shape_rules.join(rule_ids, on="rule").select(
            pl.col("shape_id").cast(pl.Int64), "rule_idx")
        # In (contact, time) order, a contact's t0 (its last scored event) is on its last row.
        # Events of one rule at the same instant are interchangeable (same points, same decay),
        # so ties need no tie-breaker and the event id is not read.
        _, contact_ends = _runs(pl.col("contact_id"))
        rule = pl.col("key") % n_rules
        rows = sorted_events(events).join(per_shape, on="shape_id", how="inner",
                                          maintain_order="left").select(
            (pl.col("contact_id") * n_rules + pl.col("rule_idx")).alias("key"), "ts",
            pl.when(contact_ends).then(pl.col("ts")).backward_fill().alias("t0"),
        ).sort("key", maintain_order=True).with_columns(  # (contact, rule, time)
            pl.lit(points).gather(rule).alias("points"),
            pl.lit(caps_at).gather(rule).alias("cap"),
            pl.lit(windows).gather(rule).alias("window"),
        )
        # Within a window the first events take their points until the cap is used up: every
        # event of a rule carries the same points, so the n-th event of a window (n from 0)
        # gets what is left after n·|points|.
        rule_starts, rule_ends = _runs(pl.col("key"))
        bucket = ((pl.col("ts") - WINDOW_ORIGIN) / pl.col("window")).floor()
        rows = rows.with_columns(bucket.alias("bucket"), rule_ends.alias("rule_end"))
        window_starts = rule_starts | (pl.col("bucket") != pl.col("bucket").shift(1)
                                       ).fill_null(True)
        rows = rows.with_columns(_position_in_run(window_starts).cast(pl.Float64).alias("n"))
        mag = pl.col("points").abs()
        used = pl.min_horizontal(pl.col("cap"), pl.col("n") * mag + mag)
        gain = used - pl.min_horizontal(pl.col("cap"), pl.col("n") * mag)
        rows = rows.with_columns(
            pl.when(pl.col("cap").is_null()).then(pl.col("points"))
            .otherwise(gain * pl.col("points").sign()).alias("awarded"),
            used.alias("used"),
        )
        return rows, names, n_rules

    def score_frame(self, events: pl.DataFrame, shape_rules: pl.DataFrame,
                    recycled: pl.DataFrame) -> pl.DataFrame:
        """One row per contact with matching events: score at t0, breakdown, caps state and
        the engagement that stood at its last recycle."""
        h = self.h
        rows, names, n_rules = self._awarded(events, shape_rules)
        sums = rows.select(
            "key", (pl.col("awarded") * (2.0 ** ((pl.col("ts") - pl.col("t0")) / h)))
            .alias("decayed"),
        ).group_by("key").agg(pl.col("decayed").sum().alias("value"))
        # One row per (contact, rule), in (contact, rule name) order; the last of its events
        # holds the cap state.
        per_rule = rows.filter(pl.col("rule_end")).select(
            "key", (pl.col("key") // n_rules).alias("contact_id"), "t0", "cap", "bucket",
            "used",
        ).join(sums, on="key", maintain_order="left")
        recycled_at = recycled.select(pl.col("contact_id").cast(pl.Int64),
                                      pl.col("recycled_at").cast(pl.Float64))
        baseline = rows.with_columns((pl.col("key") // n_rules).alias("contact_id")).filter(
            pl.col("contact_id").is_in(recycled_at["contact_id"].implode())
        ).join(recycled_at, on="contact_id").filter(
            pl.col("ts") <= pl.col("recycled_at")).group_by("contact_id").agg(
            (pl.col("awarded") * (2.0 ** ((pl.col("ts") - pl.col("recycled_at")) / h))).sum()
            .alias("baseline"))
        # Parallel sums differ from run to run in the last bits: the breakdown (for reading, not
        # for computing) keeps 12 significant digits and a fixed key order, so that a rescore
        # that changes nothing rewrites nothing.
        name = _name_of(pl.col("key") % n_rules, names)
        per_rule = per_rule.with_columns(
            pl.concat_str([pl.lit('"'), name, pl.lit('":'),
                           pl.col("value").round_sig_figs(12).cast(pl.Utf8)]).alias("entry"),
            pl.when(pl.col("cap").is_not_null()).then(pl.concat_str([
                pl.lit('"'), name, pl.lit('":['), pl.col("bucket").cast(pl.Int64)
                .cast(pl.Utf8), pl.lit(","), pl.col("used").cast(pl.Utf8), pl.lit("]")]))
            .alias("cap_entry"),
        )
        per_contact = per_rule.group_by("contact_id").agg(
            pl.col("value").sum().alias("score"), pl.col("t0").first(), "entry",
            pl.col("cap_entry").drop_nulls(),
        ).join(baseline, on="contact_id", how="left")
        score = pl.col("score")
        rank = (pl.when(score > 0).then(pl.col("t0") / h + score.log(2))
                .when(score < 0).then(NEGATIVE_RANK_BASE - (pl.col("t0") / h + (-score).log(2)))
                .otherwise(ZERO_RANK))
        return per_contact.select(
            "contact_id", "score", "t0", rank.alias("rank"),
            (pl.lit("{") + pl.col("entry").list.join(",") + pl.lit("}")).alias("breakdown"),
            (pl.lit("{") + pl.col("cap_entry").list.join(",") + pl.lit("}")).alias("caps"),
            pl.col("baseline").fill_null(0.0),
        ).sort("contact_id")

    def engagement_crossings(self, events: pl.DataFrame, recycled: pl.DataFrame,
                             shape_rules: pl.DataFrame) -> pl.DataFrame:
        """(contact_id, key, reached_at): for each milestone whose rule is an engagement
        threshold, when each contact of ``events`` first had that much engagement since its
        recycle — the time of the event that took it there, as the engine would have set the
        milestone had the events come one by one.

        The score right after event k is ``2^(-(t_k - r)/h) · Σ_{j≤k} a_j 2^((t_j - r)/h)``,
        a running sum per contact from its first event r; a recycle starts a new sum (evidence
        since the recycle), and the milestone takes the earlier crossing of the two.
        """
        tests = [(m.key, m.when.number) for m in self.lifecycle.milestones
                 if m.when is not None and m.when.op == "engagement_at_least"]
        empty = pl.DataFrame(schema={"contact_id": pl.Int64, "key": pl.Utf8,
                                     "reached_at": pl.Float64})
        if not tests:
            return empty
        rows, _, n_rules = self._awarded(events, shape_rules)
        h = self.h
        per = rows.group_by((pl.col("key") // n_rules).alias("contact_id"), "ts").agg(
            pl.col("awarded").sum()
        ).join(recycled, on="contact_id", how="left").with_columns(
            (pl.col("recycled_at").is_not_null() & (pl.col("ts") > pl.col("recycled_at")))
            .cast(pl.Int8).alias("part"),
        ).sort("contact_id", "ts")
        run = ["contact_id", "part"]
        age = (pl.col("ts") - pl.col("ts").first().over(run)) / h
        per = per.with_columns(age.alias("age"))
        # 2^age stays far from overflowing below LONG half-lives; the rare contact whose run
        # spans more is summed point by point.
        long = per.filter(pl.col("age") >= LONG)["contact_id"].unique().implode()
        found = [_first_reached(per.filter(~pl.col("contact_id").is_in(long)).with_columns(
            ((pl.col("awarded") * 2.0 ** pl.col("age")).cum_sum().over(run)
             * 2.0 ** -pl.col("age")).alias("score")), tests)]
        stepped = per.filter(pl.col("contact_id").is_in(long))
        if stepped.height:
            found.append(_first_reached(stepped.with_columns(
                pl.Series("score", _decayed_sums(stepped, h))), tests))
        return pl.concat(found)

    def changed_and_crossings(self, low: int, high: int, shape_rules: pl.DataFrame,
                              shape_signals: pl.DataFrame, watermark: int
                              ) -> tuple[tuple[pl.DataFrame, int], pl.DataFrame]:
        """``changed_in_range`` and ``engagement_crossings`` of a range, its events read once."""
        inputs = self.range_inputs(low, high, watermark)
        frame = self.rescore_range(low, high, shape_rules, shape_signals, watermark, inputs)
        return ((frame.filter(pl.col("changed")), frame.height),
                self.engagement_crossings(*inputs, shape_rules))

    def _ranges_scored(self, progress: Progress, job: Any
                       ) -> Iterator[tuple[int, int, Any]]:
        """(low, high, what ``job`` made of the range) for every range of contact ids, in
        order; by two worker processes for a large database."""
        shape_rules = self.shape_rules()
        shape_signals = self.shape_signals()
        watermark = self.watermark()
        ranges = list(self.ranges())
        progress.start("rescoring contacts", sum(h - lo for lo, h in ranges))
        self.last_watermark = watermark
        if watermark < PARALLEL_FROM_EVENTS or len(ranges) < 2:
            for low, high in ranges:
                yield low, high, job(self, low, high, shape_rules, shape_signals, watermark)
                progress.advance(high - low)
        else:
            with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(_range_job, job, self.url, self.lifecycle, shape_rules,
                                       shape_signals, watermark, low, high)
                           for low, high in ranges]
                for (low, high), future in zip(ranges, futures, strict=True):
                    yield low, high, future.result()
                    progress.advance(high - low)
        progress.finish()

    def recompute(self, progress: Progress) -> list[ScoreChunk]:
        """Every contact's recomputed values, range by range (nothing is written)."""
        return [ScoreChunk(low, high, frame) for low, high, frame
                in self._ranges_scored(progress, PolarsBulkScoring.rescore_range)]

    def rescore(self, progress: Progress, *, crossings: list[pl.DataFrame] | None = None
                ) -> tuple[int, int]:
        """Recompute every contact and store the ones that changed, in one transaction, each
        range written while the workers compute the next ones. Returns how many contacts
        changed and the id of the last event counted (later ones arrived meanwhile).
        ``crossings``, if given, receives each range's ``engagement_crossings`` (a bulk load
        dates its engagement milestones with them)."""
        with self.engine.begin() as conn:
            writer = _Writer(conn)
            if crossings is None:
                for _low, _high, (frame, contacts) in self._ranges_scored(
                        progress, PolarsBulkScoring.changed_in_range):
                    writer.add(frame, contacts)
            else:
                for _low, _high, ((frame, contacts), found) in self._ranges_scored(
                        progress, PolarsBulkScoring.changed_and_crossings):
                    writer.add(frame, contacts)
                    crossings.append(found)
            changed = writer.finish()
            if changed:
                # Saving a contact keeps its copy of the rank; only a rescore that changed
                # ranks leaves copies to update (1.5-2 s to compare a million rows for none).
                sync_queue_ranks(conn)
            return changed, self.last_watermark

    def changed_in_range(self, low: int, high: int, shape_rules: pl.DataFrame,
                         shape_signals: pl.DataFrame, watermark: int
                         ) -> tuple[pl.DataFrame, int]:
        """The range's contacts whose values changed, and how many contacts it holds."""
        frame = self.rescore_range(low, high, shape_rules, shape_signals, watermark)
        return frame.filter(pl.col("changed")), frame.height

    # ------------------------------------------------------------------ comparing

    def stored(self, low: int, high: int) -> pl.DataFrame:
        cast = "CAST(%s AS TEXT)" if self.engine.dialect.name == "postgresql" else "%s"
        return self._read(
            f"SELECT s.contact_id, s.engagement_score AS score, s.engagement_t0 AS t0, "
            f"{cast % 's.engagement_breakdown'} AS breakdown, "
            f"{cast % 's.engagement_caps'} AS caps, s.recycle_baseline AS baseline, "
            f"c.recycled_at, {cast % 's.signals'} AS signals "
            f"FROM contact_scores s JOIN contacts c ON c.id = s.contact_id "
            f"WHERE s.contact_id >= {int(low)} AND s.contact_id < {int(high)} "
            f"ORDER BY s.contact_id")

    def differences(self, scores: list[ScoreChunk], *, tolerance: float = 1e-9
                    ) -> Iterator[ScoreDifference]:
        for chunk in scores:
            stored = self.stored(chunk.low, chunk.high)
            joined = stored.join(chunk.frame.select(SCORE_COLUMNS), on="contact_id",
                                 how="left", suffix="_new")
            for row in joined.iter_rows(named=True):
                yield from _compare(row, tolerance)


class _Writer:
    """Rewrites changed contact_scores rows inside the caller's transaction.

    Each range is updated as it comes, while the workers compute the next ones. SQLite drops
    the rank index (rebuilt at the end) once a range shows that most of its contacts change:
    maintaining it row by row costs more than sorting it anew. PostgreSQL keeps it (an update
    that is not HOT adds an entry to every index anyway, and dropping it would lock out the
    workers still reading contact_scores); each range goes through a temporary table by COPY.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        self.changed = 0
        self.contacts = 0
        self.index_dropped = False
        # Else the first range's DROP INDEX would commit on its own, and a rescore stopped
        # before the end would leave the index dropped (every later one failing to drop it).
        begin_now(conn)
        if self.pg:
            # Enough memory to join a range's rows without spilling to disk in 16 batches
            # (0.7-1.2 s of the 3-4 s of updating 250k rows).
            conn.execute(text("SET LOCAL work_mem = '64MB'"))
            conn.execute(text(
                "CREATE TEMP TABLE rescore_tmp (contact_id BIGINT, score FLOAT8, t0 FLOAT8,"
                " rank FLOAT8, breakdown TEXT, caps TEXT, baseline FLOAT8, signals TEXT,"
                " rescored BIGINT) ON COMMIT DROP"))

    def add(self, frame: pl.DataFrame, contacts: int) -> None:
        self.contacts += contacts
        self.changed += frame.height
        if frame.height == 0:
            return
        columns = [*SCORE_COLUMNS, "rescored"]
        if self.pg:
            insert_frame(self.conn, "rescore_tmp", frame.select(columns))
            self.conn.execute(text(
                "UPDATE contact_scores SET engagement_score = r.score, engagement_t0 = r.t0, "
                "engagement_rank = r.rank, engagement_breakdown = r.breakdown::json, "
                "engagement_caps = r.caps::json, recycle_baseline = r.baseline, "
                "signals = r.signals::json, rescored = r.rescored FROM rescore_tmp r "
                "WHERE contact_scores.contact_id = r.contact_id "
                "AND contact_scores.contact_id BETWEEN :low AND :high"),
                {"low": frame["contact_id"].min(), "high": frame["contact_id"].max()})
            self.conn.execute(text("TRUNCATE rescore_tmp"))
            return
        if not self.index_dropped and frame.height > REBUILD_INDEX_FROM * contacts:
            self.conn.execute(text("DROP INDEX ix_contact_scores_rank"))
            self.index_dropped = True
        # One statement per row, run by executemany in C, in key order.
        names = ", ".join(f"{STORED_AS[c]} = ?" for c in columns[1:])
        raw: Any = self.conn.connection.driver_connection
        raw.executemany(f"UPDATE contact_scores SET {names} WHERE contact_id = ?",
                        frame.select(*columns[1:], "contact_id").iter_rows())

    def finish(self) -> int:
        if self.index_dropped:
            self.conn.execute(text("CREATE INDEX ix_contact_scores_rank "
                                   "ON contact_scores (engagement_rank)"))
        return self.changed


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


def sync_queue_ranks(conn: Connection) -> int:
    """Copy the engagement rank of every owned contact whose copy differs (contacts.queue_rank,
    which a rep's queue sorts by); how many were copied."""
    if conn.dialect.name == "postgresql":
        sql = ("UPDATE contacts c SET queue_rank = s.engagement_rank FROM contact_scores s "
               "WHERE s.contact_id = c.id AND c.owner_id IS NOT NULL "
               "AND c.queue_rank IS DISTINCT FROM s.engagement_rank")
    else:
        rank = "(SELECT s.engagement_rank FROM contact_scores s WHERE s.contact_id = contacts.id)"
        sql = (f"UPDATE contacts SET queue_rank = {rank} "
               f"WHERE owner_id IS NOT NULL AND queue_rank IS NOT {rank}")
    return int(conn.execute(text(sql)).rowcount)
