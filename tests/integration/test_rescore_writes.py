"""What a full rescore writes besides contact_scores: the copy of each owned contact's rank
that a rep's queue sorts by follows a rule edit, and a rescore that changes nothing leaves it;
a rescore stopped half-way writes nothing, its index changes included."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import inspect, select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.read_models import late_contacts
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.config import parse_config
from leadflow.domain.ports import NullProgress
from leadflow.services.assignments import reassign
from leadflow.services.events import EventIn, record_event
from leadflow.services.rescore import check_scores, rescore_all
from leadflow.services.users import create_user
from tests.conftest import FakeClock, good_fit_contact


def _ranks(app: App) -> dict[int, tuple[float | None, float]]:
    c, s = t.contacts.c, t.contact_scores.c
    with app.engine.connect() as conn:
        return {r.id: (r.queue_rank, r.engagement_rank) for r in conn.execute(
            select(c.id, c.queue_rank, s.engagement_rank).join(
                t.contact_scores, s.contact_id == c.id).where(c.owner_id.is_not(None)))}


def _rescore(app: App) -> int:
    with app.engine.connect() as conn:
        return rescore_all(scoring=app.bulk_scoring(), progress=NullProgress(),
                           uow_factory=app.uow, ctx=app.ctx,
                           late_contacts=lambda w: late_contacts(conn, w)).contacts_changed


def test_queue_ranks_follow_a_rescore(app: App, clock: FakeClock, settings: Settings) -> None:
    rob = create_user(uow=app.uow(), ctx=app.ctx, email="rob@sales.example", name="rob",
                      role="sales_rep").id
    owned = []
    for i in range(5):
        c = good_fit_contact(app, f"q{i}@q{i}.example")
        assert c.id is not None
        for k in range(i + 1):
            record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(
                type="content_download" if k % 2 else "page_view", contact_id=c.id,
                url=f"/p{k}"))
            clock.advance(3600)
        if i != 2:
            reassign(uow=app.uow(), ctx=app.ctx, contact_id=c.id, owner=rob, reason="test",
                     actor="test")
            owned.append(c.id)
    before = _ranks(app)
    assert sorted(before) == owned
    assert all(q == r for q, r in before.values())
    raw = copy.deepcopy(app.config.raw)
    raw["engagement"]["half_life_days"] = 9  # every rank moves
    edited = App(settings, clock=clock, config=parse_config(raw))
    try:
        assert _rescore(edited) >= len(owned)
        after = _ranks(edited)
        assert all(q == r for q, r in after.values())
        assert all(after[cid][1] != before[cid][1] for cid in owned)
        assert _rescore(edited) == 0  # nothing changed: nothing to copy, copies still right
        assert _ranks(edited) == after
    finally:
        if "engine" in edited.__dict__:
            edited.engine.dispose()


class Interrupted(Exception):
    pass


class StopAfterFirstRange:
    """A progress bar whose user presses Ctrl-C once the first range has been written."""

    def start(self, description: str, total: int) -> None:
        del description, total

    def advance(self, amount: int) -> None:
        raise Interrupted

    def finish(self) -> None:
        return None


def test_a_rescore_stopped_half_way_writes_nothing(app: App, clock: FakeClock,
                                                   settings: Settings) -> None:
    for i in range(20):  # three ranges of 7 contacts
        c = good_fit_contact(app, f"s{i}@s{i}.example")
        assert c.id is not None
        record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(
            type="page_view", contact_id=c.id, url="/pricing"))
        clock.advance(3600)
    raw = copy.deepcopy(app.config.raw)
    raw["engagement"]["half_life_days"] = 9  # every contact of the first range changes
    edited = App(settings, clock=clock, config=parse_config(raw))
    try:
        with pytest.raises(Interrupted):
            edited.bulk_scoring().rescore(StopAfterFirstRange())
        # SQLite dropped the rank index for the rewrite: the drop is undone with the rest
        indexes = {ix["name"] for ix in inspect(app.engine).get_indexes("contact_scores")}
        assert "ix_contact_scores_rank" in indexes
        assert check_scores(scoring=app.bulk_scoring(), progress=NullProgress()
                            ).differences == []
        assert _rescore(edited) == 20  # and the next rescore runs in full
        assert check_scores(scoring=edited.bulk_scoring(), progress=NullProgress()
                            ).differences == []
    finally:
        if "engine" in edited.__dict__:
            edited.engine.dispose()
