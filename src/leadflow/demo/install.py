"""Load a generated demo business into the database, then score it as the product would."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import polars as pl

from leadflow.adapters.db.bulk_load import (
    analyze,
    append_frames,
    count_contacts,
    delete_everything,
    end_load,
    mark_engagement_milestones,
    start_load,
)
from leadflow.adapters.db.bulk_temperature import refresh_all_temperatures
from leadflow.bootstrap import App
from leadflow.demo.content_library import install_content
from leadflow.demo.generator import Chunk, Generator, make_accounts, shape_catalogue
from leadflow.demo.sales_team import install_sales_team
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


def install_demo(app: App, *, contacts: int, seed: int, progress: Progress,
                 replace: bool = False) -> dict[str, int]:
    """Generate ``contacts`` contacts with their accounts, events and history."""
    existing = count_contacts(app.engine)
    if existing and not replace:
        raise Conflict(f"the database already holds {existing} contacts; use --reset to "
                       "replace them with the demo", field="contacts")
    if existing:
        delete_everything(app.engine)
        app.data_replaced()
    now = app.clock.now()
    rng = np.random.default_rng(seed)
    accounts = make_accounts(rng, max(50, contacts // 4), now)
    shape_ids = start_load(app.engine, accounts.frame, shape_catalogue())
    generator = Generator(config=app.config, seed=seed, now=now, accounts=accounts,
                          shape_ids=shape_ids)
    totals = {"contacts": 0, "events": 0, "stage_changes": 0, "accounts": accounts.frame.height}
    progress.start("generating demo contacts", contacts)
    starts = list(range(1, contacts + 1, CHUNK))

    def write(chunk: Chunk) -> None:
        append_frames(app.engine, [
            ("contacts", chunk.contacts), ("contact_scores", chunk.scores),
            ("identities", chunk.identities),
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
    end_load(app.engine, ["accounts", "contacts"])
    crossings: list[pl.DataFrame] = []
    app.bulk_scoring().rescore(progress, crossings=crossings)
    totals["mql"] = mark_engagement_milestones(app.engine, app.config, crossings)
    refresh_all_temperatures(app.engine, app.settings.resolved_database_url, app.config,
                             now=now, progress=progress)
    totals.update(install_sales_team(app, seed=seed))
    totals.update(install_content(app))
    analyze(app.engine)
    return totals
