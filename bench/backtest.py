"""A backtest of the MQL and SQL thresholds on a demo install, beside reading the same
histories alone in the same run.

    python bench/backtest.py                        # the SQLite demo under bench/data
    python bench/backtest.py --database-url sqlite:////tmp/lf/leadflow.db
    python bench/backtest.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

It only reads: the demo must be there already (`leadflow demo`, or bench/rescore.py for the
1M-contact one). Prints, each the median of --runs runs (1 by default) after a warm-up run:
- baseline: streaming every contact's history (contact, account, events, conversion) through
  the backtest's reads, without replaying anything: the floor of any backtest;
- the backtest of the configuration in force (12 MQL and 12 SQL thresholds), and of a
  candidate configuration (which replays each contact twice: under the candidate and under
  the configuration in force, for the days saved).
"""

from __future__ import annotations

import argparse

from analytics import DEFAULT, median_s  # bench/ is the script's folder
from sqlalchemy import func, select

from leadflow.adapters.clock import SystemClock
from leadflow.adapters.config_file import default_config_text, load_config, parse_config_text
from leadflow.adapters.db import tables as t
from leadflow.adapters.db.backtest_reads import SqlBacktestReads
from leadflow.adapters.db.engine import make_engine
from leadflow.domain.ports import NullProgress
from leadflow.domain.users import OPERATOR
from leadflow.services.backtest import run_backtest
from leadflow.services.context import Context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=f"sqlite:///{DEFAULT}")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    engine = make_engine(args.database_url)
    config = load_config(None)
    ctx = Context(config=config, clock=SystemClock(), suppression_salt="bench")
    candidate = parse_config_text(default_config_text().replace(
        "      when: {type: demo_request}\n      points: 30",
        "      when: {type: demo_request}\n      points: 45"), source="candidate")
    with engine.connect() as conn:
        contacts = conn.execute(select(func.count()).select_from(t.contacts)).scalar() or 0
        events = conn.execute(select(func.count()).select_from(t.events)).scalar() or 0
    if not contacts:
        raise SystemExit("no contacts: build a demo first (leadflow demo)")
    won = [s.key for s in config.stages_with_role("won")]
    erased = [s.key for s in config.stages_with_role("erased")]

    def read_only() -> int:
        with engine.connect() as conn:
            return sum(len(h) for h in SqlBacktestReads(conn).histories(
                won_stages=won, skip_stages=erased, created_before=None))

    def backtest(candidate_config: object = None) -> object:
        with engine.connect() as conn:
            return run_backtest(reads=SqlBacktestReads(conn), ctx=ctx, principal=OPERATOR,
                                progress=NullProgress(),
                                candidate=candidate_config)  # type: ignore[arg-type]

    print(f"{contacts:,} contacts, {events:,} events ({engine.dialect.name})")
    base = median_s(read_only, args.runs)
    print(f"baseline, reading every history:      {base:8.1f} s "
          f"({contacts / base:,.0f} contacts/s)")
    in_force = median_s(backtest, args.runs)
    print(f"backtest, configuration in force:     {in_force:8.1f} s "
          f"({contacts / in_force:,.0f} contacts/s, {in_force / base:.1f}x the baseline)")
    tried = median_s(lambda: backtest(candidate), args.runs)
    print(f"backtest, a candidate configuration:  {tried:8.1f} s "
          f"({contacts / tried:,.0f} contacts/s, {tried / base:.1f}x the baseline)")


if __name__ == "__main__":
    main()
