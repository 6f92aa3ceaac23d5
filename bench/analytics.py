"""Funnel analytics on the 1M-contact demo, beside bare COUNT(*) baselines of the same run.

    python bench/analytics.py                       # the SQLite demo under bench/data
    python bench/analytics.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

It only reads: the demo must be there already (bench/rescore.py or bench/work_queue.py build
it), and the schema is used as it is (no migration runs). Times, each the median of --runs
runs after one warm-up run:
- baselines: COUNT(*) of the stage changes and of the contacts; and the cheapest per-contact
  aggregate over the stage changes (their latest time, GROUP BY contact), the floor of any
  figure that looks at each contact's history;
- the funnel of every contact (`leadflow analytics funnel`, GET /api/v1/analytics/funnel), and
  broken down by source, by first campaign and by content consumed;
- time in stage (median and p90 per stage) and SLA per rep.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from leadflow.adapters.config_file import load_config
from leadflow.adapters.db import tables as t
from leadflow.adapters.db.analytics_reads import SqlAnalyticsReads
from leadflow.adapters.db.engine import make_engine
from leadflow.domain.analytics import FunnelShape

DEFAULT = Path(__file__).parent / "data" / "leadflow.db"


def median_s(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm the caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=f"sqlite:///{DEFAULT}")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    engine = make_engine(args.database_url)
    config = load_config(None)
    shape = FunnelShape.of(config)
    stages = [s.key for s in config.stages]
    sc = t.stage_changes.c
    with engine.connect() as conn:
        contacts = conn.execute(select(func.count()).select_from(t.contacts)).scalar() or 0
        if not contacts:
            raise SystemExit("no contacts: build the demo first (python bench/rescore.py)")
        changes = conn.execute(select(func.count()).select_from(t.stage_changes)).scalar()
        print(f"{engine.dialect.name}: {contacts:,} contacts, {changes:,} stage changes; "
              f"median of {args.runs} runs")
        reads = SqlAnalyticsReads(conn)
        latest = select(sc.contact_id, func.max(sc.at)).group_by(sc.contact_id).subquery()
        measured = {
            "baseline COUNT(*) stage changes": lambda: conn.execute(
                select(func.count()).select_from(t.stage_changes)).scalar(),
            "baseline COUNT(*) contacts": lambda: conn.execute(
                select(func.count()).select_from(t.contacts)).scalar(),
            "baseline GROUP BY contact (latest change)": lambda: conn.execute(
                select(func.count()).select_from(latest)).scalar(),
            "funnel": lambda: reads.funnel_groups(shape=shape, stages=stages, by=None),
            "funnel by source": lambda: reads.funnel_groups(shape=shape, stages=stages,
                                                            by="source"),
            "funnel by campaign": lambda: reads.funnel_groups(shape=shape, stages=stages,
                                                              by="campaign"),
            "funnel by content": lambda: reads.funnel_groups(shape=shape, stages=stages,
                                                             by="content"),
            "time in stage": lambda: reads.stage_times(by=None),
            "SLA per rep": lambda: reads.sla(now=time.time()),
        }
        first: dict[str, float] = {}
        for name, fn in measured.items():
            seconds = median_s(fn, args.runs)
            first.setdefault("count", seconds)
            if name.startswith("baseline GROUP BY"):
                first["group"] = seconds
            ratios = f"{seconds / first['count']:9.1f}x COUNT(*)"
            if "group" in first and not name.startswith("baseline"):
                ratios += f" {seconds / first['group']:6.1f}x GROUP BY"
            print(f"{name:42s} {seconds:8.3f} s {ratios}", flush=True)

if __name__ == "__main__":
    main()
