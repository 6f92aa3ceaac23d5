"""Full rescore of the demo against a plain GROUP BY sum of points over the same events.

    python bench/rescore.py                      # SQLite under bench/data, 1M contacts
    python bench/rescore.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

Builds the demo first when the database holds no contacts (that takes minutes). Prints the
baseline's time, the rescore's time (recompute + write) and the ratio of the two, measured in
the same run because these machines are shared and noisy.

Two rescores are timed: one under the rules the scores were computed with (everything is
recomputed, nothing needs rewriting), and one after a rule edit that changes every score (the
half-life goes from 30 to 21 days), which rewrites every contact with events. The database is
put back under the shipped rules afterwards (not timed).

On PostgreSQL, contact_scores and contacts are vacuumed before each timed pass (not timed): a
rewrite leaves a dead row per changed row, which autovacuum would clear on a server that runs
it. The load average is printed with the figures, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import polars as pl
from sqlalchemy import func, select, text

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.read_models import late_contacts
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.demo.install import install_demo
from leadflow.domain.config import parse_config
from leadflow.domain.ports import NullProgress
from leadflow.entrypoints.cli.output import RichProgress
from leadflow.services.rescore import check_scores, rescore_all


def baseline(app: App) -> tuple[float, int]:
    """Sum of each event's rule points per contact: no caps, no decay, no breakdown."""
    scoring = app.bulk_scoring()
    points = scoring.shape_rules().group_by("shape_id").agg(pl.col("points").sum())
    with app.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_points"))
        conn.execute(text("CREATE TABLE bench_points (shape_id INTEGER PRIMARY KEY, "
                          "points FLOAT NOT NULL)"))
        for sid, p in points.iter_rows():
            conn.execute(text("INSERT INTO bench_points VALUES (:s, :p)"), {"s": sid, "p": p})
    with app.engine.connect() as conn:
        start = time.perf_counter()
        rows = conn.execute(text(
            "SELECT e.contact_id, SUM(p.points) FROM events e "
            "JOIN bench_points p ON p.shape_id = e.shape_id GROUP BY e.contact_id")).fetchall()
        elapsed = time.perf_counter() - start
    with app.engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_points"))
    return elapsed, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--check", action="store_true", help="also time rescore --check")
    args = parser.parse_args()
    data = Path(__file__).parent / "data"
    app = App(Settings(data_dir=data, database_url=args.database_url))
    with app.engine.connect() as conn:
        contacts = conn.execute(select(func.count()).select_from(t.contacts)).scalar() or 0
    if contacts == 0:
        start = time.perf_counter()
        totals = install_demo(app, contacts=args.contacts, seed=7, progress=RichProgress())
        print(f"demo: {totals['contacts']:,} contacts, {totals['events']:,} events "
              f"in {time.perf_counter() - start:.1f} s")
    with app.engine.connect() as conn:
        contacts = conn.execute(select(func.count()).select_from(t.contacts)).scalar() or 0
        events = conn.execute(select(func.count()).select_from(t.events)).scalar() or 0
    dialect = app.engine.dialect.name
    print(f"{dialect}: {contacts:,} contacts, {events:,} events")

    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    base_s, groups = baseline(app)
    print(f"baseline GROUP BY sum of points: {base_s:.2f} s ({groups:,} contacts)")

    def vacuum() -> None:
        if dialect == "postgresql":
            with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM contact_scores, contacts"))

    def full_rescore(target: App) -> tuple[float, int]:
        vacuum()
        start = time.perf_counter()
        with target.engine.connect() as conn:
            report = rescore_all(scoring=target.bulk_scoring(), progress=NullProgress(),
                                 uow_factory=target.uow, ctx=target.ctx,
                                 late_contacts=lambda w: late_contacts(conn, w))
        return time.perf_counter() - start, report.contacts_changed

    full_rescore(app)  # scores as this code computes them, so the next pass is a pure one
    same_s, same_n = full_rescore(app)
    print(f"full rescore, rules unchanged: {same_s:.2f} s ({same_n:,} contacts rewritten); "
          f"ratio to baseline {same_s / base_s:.2f}x")
    raw = dict(app.config.raw)
    raw["engagement"] = {**raw["engagement"], "half_life_days": 21}
    edited = App(app.settings, config=parse_config(raw))
    edit_s, edit_n = full_rescore(edited)
    print(f"full rescore after a rule edit: {edit_s:.2f} s ({edit_n:,} contacts rewritten); "
          f"ratio to baseline {edit_s / base_s:.2f}x")
    full_rescore(app)
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if args.check:
        start = time.perf_counter()
        check = check_scores(scoring=app.bulk_scoring(), progress=NullProgress())
        print(f"rescore --check: {time.perf_counter() - start:.2f} s, "
              f"{check.differing_contacts} contact(s) differ")


if __name__ == "__main__":
    main()
