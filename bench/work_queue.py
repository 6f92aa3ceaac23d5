"""A rep's work queue on the 1M-contact demo, against a bare indexed SELECT of the same rows.

    python bench/work_queue.py                      # SQLite under bench/data, 1M contacts
    python bench/work_queue.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

Builds the demo first when the database holds no contacts (minutes), and its sales team when
it holds no users. Times, for the rep who owns the most prospects and opportunities:
- the queue query (open tasks by due time; prospects by temperature order, then score, with
  each one's next task), as `leadflow queue` and `GET /api/v1/queue` run it;
- `GET /api/v1/queue` end to end in process (authentication, query, JSON);
- the baseline: the same page of that rep's contacts by the (owner, stage) index, unsorted.
Each figure is the median of repeated runs, measured in the same run as the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.work_queues import rep_queue
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.demo.install import install_demo
from leadflow.demo.sales_team import install_sales_team
from leadflow.entrypoints.api.app import create_app
from leadflow.entrypoints.cli.output import RichProgress
from leadflow.services.api_keys import create_api_key

RUNS = 30


def median_ms(fn: Callable[[], object], runs: int = RUNS) -> float:
    fn()  # warm the caches: what a rep who opens the queue twice sees
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    app = App(Settings(data_dir=Path(__file__).parent / "data",
                       database_url=args.database_url))
    with app.engine.connect() as conn:
        contacts = conn.execute(select(func.count()).select_from(t.contacts)).scalar() or 0
        users = conn.execute(select(func.count()).select_from(t.users)).scalar() or 0
    if contacts == 0:
        install_demo(app, contacts=args.contacts, seed=7, progress=RichProgress())
    elif users == 0:
        install_sales_team(app, seed=7)
    c = t.contacts.c
    stages = [s.key for s in app.config.stages if s.role in ("handoff", "commit")]
    owned = (select(c.owner_id, func.count().label("n"))
             .where(c.owner_id.is_not(None), c.stage.in_(stages))
             .group_by(c.owner_id).order_by(func.count().desc()).limit(1))
    with app.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(t.contacts)).scalar() or 0
        owner_id, n = conn.execute(owned).one()
        email = conn.execute(select(t.users.c.email).where(t.users.c.id == owner_id)).scalar()
    print(f"{app.engine.dialect.name}: {total:,} contacts; rep {email} owns {n:,} prospects "
          f"and opportunities; page of {args.limit}")

    bare = (select(c.id, c.stage, c.temperature, c.owner_id)
            .where(c.owner_id == owner_id, c.stage.in_(stages)).limit(args.limit))
    with app.engine.connect() as conn:
        base = median_ms(lambda: conn.execute(bare).all())
        query = median_ms(lambda: rep_queue(conn, app.config, owner_id=owner_id,
                                            now=app.clock.now(), limit=args.limit))
    token = create_api_key(uow=app.uow(), ctx=app.ctx, name="bench", kind="secret",
                           scopes=["read"], user=owner_id).token
    with TestClient(create_app(app)) as client:
        headers = {"Authorization": f"Bearer {token}"}

        def http() -> None:
            answer = client.get(f"/api/v1/queue?limit={args.limit}", headers=headers)
            assert answer.status_code == 200, answer.text
        api = median_ms(http)
    print(f"baseline, indexed SELECT of the rep's rows: {base:.2f} ms")
    print(f"queue query:            {query:.2f} ms; ratio to baseline {query / base:.1f}x")
    print(f"GET /api/v1/queue:      {api:.2f} ms; ratio to baseline {api / base:.1f}x")


if __name__ == "__main__":
    main()
