"""Importing the X Education file (9,240 rows): rows per second, first import and re-import.

    python bench/import_csv.py                         # a fresh SQLite file in a temp dir
    python bench/import_csv.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    python bench/import_csv.py --profile 30            # cProfile the first import, top 30

The database must be empty (a PostgreSQL one is emptied first). Prints the time and rows/s of
the first import (every row a new contact) and of the second (every row unchanged), each with
its ratio to a baseline measured in the same run: reading and planning the same rows (the CSV
read, every value mapped, the row's events made) without writing anything.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from datetime import UTC
from pathlib import Path

from sqlalchemy import create_engine, text

from leadflow.adapters.csv_mapping import load_mapping
from leadflow.adapters.csv_source import open_csv
from leadflow.adapters.db import tables
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.ports import NullProgress
from leadflow.services.import_rows import plan_row
from leadflow.services.importing import ImportReport, import_contacts

LEADS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "x_education_leads" \
    / "Leads.csv"


def run(app: App, path: Path) -> ImportReport:
    spec = load_mapping("x_education")
    source = open_csv(path, spec)
    return import_contacts(uow_factory=app.uow, ctx=app.ctx, mapping=spec, rows=source.rows(),
                           total=source.total, progress=NullProgress())


def read_only(path: Path) -> float:
    """Seconds to read the file and plan every row as the import does, writing nothing."""
    spec = load_mapping("x_education")
    start = time.perf_counter()
    source = open_csv(path, spec)
    for row in source.rows():
        plan_row(spec, row, now=time.time(), tz=UTC)
    return time.perf_counter() - start


def empty(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        existing = [t.name for t in tables.metadata.sorted_tables
                    if conn.dialect.has_table(conn, t.name)]
        if existing:
            conn.execute(text(f"TRUNCATE {', '.join(existing)} RESTART IDENTITY CASCADE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--file", type=Path, default=LEADS)
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'leadflow.db'}"
        if args.database_url:
            empty(url)
        app = App(Settings(database_url=url, data_dir=Path(tmp) / "data"))
        assert app.ctx is not None  # the database migrated, outside the timing
        base = read_only(args.file)
        print(f"baseline, reading and planning the rows: {base:.1f} s")
        for label in ("first import", "again"):
            profiler = cProfile.Profile() if args.profile and label == "first import" else None
            start = time.perf_counter()
            if profiler:
                profiler.enable()
            report = run(app, args.file)
            if profiler:
                profiler.disable()
            took = time.perf_counter() - start
            print(f"{label}: {report.rows} rows in {took:.1f} s, {report.rows / took:.0f} rows/s, "
                  f"{took / base:.1f}x the baseline (imported {report.imported}, unchanged "
                  f"{report.unchanged}, bad {len(report.bad)})")
            if profiler:
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
        app.engine.dispose()


if __name__ == "__main__":
    main()
