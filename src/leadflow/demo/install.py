"""Load a generated demo business into the database, then score it as the product would."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
from sqlalchemy import bindparam, func, select, text

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.bulk_load import append_frames, insert_frame, reset_sequences
from leadflow.adapters.db.bulk_temperature import refresh_all_temperatures
from leadflow.adapters.db.repositories import SqlEventRepository
from leadflow.bootstrap import App
from leadflow.demo.generator import Chunk, Generator, make_accounts, shape_catalogue
from leadflow.domain.errors import Conflict
from leadflow.domain.ports import Progress

CHUNK = 50_000
_generator: Generator | None = None


def _use(generator: Generator) -> None:
    global _generator
    _generator = generator


def _generate(start: int, n: int) -> Chunk:
    assert _generator is not None
    return _generator.chunk(start, n)


def reset(app: App) -> None:
    """Delete every row (the schema stays)."""
    with app.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(tb.name for tb in t.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(t.metadata.sorted_tables):
                conn.execute(table.delete())
    if app.engine.dialect.name == "sqlite":
        with app.engine.connect() as conn:
            conn.execute(text("VACUUM"))


def mql_milestones(app: App) -> int:
    """The demo's MQLs: contacts whose engagement stands at or above an engagement-only
    milestone threshold (dated at their last scored event)."""
    inserted = 0
    erased = [s.key for s in app.config.stages_with_role("erased")]
    for m in app.config.milestones:
        if m.when is None or m.when.op != "engagement_at_least":
            continue
        with app.engine.begin() as conn:
            result = conn.execute(text(
                "INSERT INTO milestones (contact_id, key, reached_at, actor, config_version) "
                "SELECT id, CAST(:key AS VARCHAR(50)), engagement_t0, 'rule', "
                "CAST(:version AS VARCHAR(200)) FROM contacts "
                "WHERE engagement_score >= :threshold AND engagement_t0 IS NOT NULL "
                "AND stage NOT IN :erased AND NOT EXISTS (SELECT 1 FROM milestones m "
                "WHERE m.contact_id = contacts.id AND m.key = :key)"
            ).bindparams(bindparam("erased", expanding=True)),
                {"key": m.key, "version": app.config.config_version,
                 "threshold": m.when.number, "erased": erased})
            inserted += result.rowcount or 0
    return inserted


def install_demo(app: App, *, contacts: int, seed: int, progress: Progress,
                 replace: bool = False) -> dict[str, int]:
    """Generate ``contacts`` contacts with their accounts, events and history."""
    with app.engine.connect() as conn:
        existing = conn.execute(select(func.count()).select_from(t.contacts)).scalar() or 0
    if existing and not replace:
        raise Conflict(f"the database already holds {existing} contacts; use --reset to "
                       "replace them with the demo", field="contacts")
    if existing:
        reset(app)
    now = app.clock.now()
    rng = np.random.default_rng(seed)
    accounts = make_accounts(rng, max(50, contacts // 4), now)
    with app.engine.begin() as conn:
        insert_frame(conn, "accounts", accounts.frame)
        events_repo = SqlEventRepository(conn)
        shape_ids = {shape: events_repo.shape_id(shape) for shape in shape_catalogue()}
    generator = Generator(config=app.config, seed=seed, now=now, accounts=accounts,
                          shape_ids=shape_ids)
    totals = {"contacts": 0, "events": 0, "stage_changes": 0, "accounts": accounts.frame.height}
    progress.start("generating demo contacts", contacts)
    starts = list(range(1, contacts + 1, CHUNK))

    def write(chunk: Chunk) -> None:
        append_frames(app.engine, [
            ("contacts", chunk.contacts), ("identities", chunk.identities),
            ("events", chunk.events), ("stage_changes", chunk.stage_changes),
            ("milestones", chunk.milestones)])
        totals["contacts"] += chunk.contacts.height
        totals["events"] += chunk.events.height
        totals["stage_changes"] += chunk.stage_changes.height
        progress.advance(chunk.contacts.height)

    if len(starts) == 1:
        write(generator.chunk(1, contacts))
    else:
        # One process generates the next chunks while this one writes ("spawn": a forked copy
        # of Polars' thread pool can deadlock).
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                                 initializer=_use, initargs=(generator,)) as pool:
            ahead = 2
            pending = {s: pool.submit(_generate, s, min(CHUNK, contacts - s + 1))
                       for s in starts[:ahead]}
            for i, s in enumerate(starts):
                if i + ahead < len(starts):
                    nxt = starts[i + ahead]
                    pending[nxt] = pool.submit(_generate, nxt, min(CHUNK, contacts - nxt + 1))
                write(pending.pop(s).result())
    progress.finish()
    with app.engine.begin() as conn:
        reset_sequences(conn, ["accounts", "contacts"])
    scoring = app.bulk_scoring()
    scoring.write(scoring.recompute(progress), progress)
    totals["mql"] = mql_milestones(app)
    refresh_all_temperatures(app.engine, app.settings.resolved_database_url, app.config,
                             now=now, progress=progress)
    with app.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return totals
