"""Backtests over a history made by the real services (SQLite and PostgreSQL): the report
equals a brute-force computation that runs the engine once per threshold on the recorded
events; a candidate configuration changes the answer; reps may not run one; erased contacts and
newer cohorts stay out."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from leadflow.adapters.config_file import default_config_text, parse_config_text
from leadflow.adapters.csv_mapping import load_mapping
from leadflow.adapters.csv_source import open_csv
from leadflow.adapters.db import backtest_reads
from leadflow.adapters.db.backtest_reads import SqlBacktestReads
from leadflow.bootstrap import App
from leadflow.domain.backtest import History
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import Forbidden
from leadflow.domain.fit import score_fit
from leadflow.domain.ports import NullProgress
from leadflow.domain.users import OPERATOR, Principal
from leadflow.services.backtest import BacktestReport, run_backtest
from leadflow.services.contacts import ContactIn, create_contact
from leadflow.services.events import EventIn, record_event
from leadflow.services.importing import import_contacts
from leadflow.services.moves import erase, move_stage, qualify
from leadflow.services.opportunities import create_opportunity, win_opportunity
from tests.conftest import FakeClock, good_fit_contact
from tests.unit.test_backtest import engine_times, with_thresholds

DEAL_EVENTS = ("deal_created", "deal_won", "deal_lost", "purchase")
HOUR = 3600.0
DAY = 24 * HOUR
KINDS = [("page_view", {"url": "/blog"}), ("page_view", {"url": "/pricing"}),
         ("content_download", {}), ("content_download", {"premium": True}),
         ("form_submitted", {}), ("webinar_attended", {}), ("email_clicked", {}),
         ("demo_request", {"url": "/demo"})]


@dataclass
class Made:
    ids: list[int]
    bought: dict[int, float]
    created: dict[int, float]
    recycles: dict[int, list[float]] = field(default_factory=dict)
    qualified: dict[int, float] = field(default_factory=dict)


PASSING = {"budget": "approved", "authority": "decision_maker", "need": True,
           "timeline": "2027-01-15", "has_crm_data": True}


def make_history(app: App, clock: FakeClock, *, seed: int = 5, people: int = 14) -> Made:
    """People with random behaviour over a few weeks; some buy (a deal won), some are moved
    back to lead (recycled) once or twice, some pass qualification, some events arrive late
    (dated days before the latest); about a third are misfits (no persona: never handed off)
    and one works for a competitor (excluded)."""
    rng = random.Random(seed)
    made = Made([], {}, {})
    for i in range(people):
        if i == 1:
            c = good_fit_contact(app, "spy@hubspot.com")
        elif i % 3 == 2:
            c = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
                email=f"p{i}@shop.example", seniority="junior", country="US"))
        else:
            c = good_fit_contact(app, f"p{i}@p{i}.example")
        assert c.id is not None
        made.ids.append(c.id)
        made.created[c.id] = clock.now()
        clock.advance(HOUR)
    for _ in range(people * 7):
        cid = rng.choice(made.ids)
        if cid in made.bought:
            continue
        kind, shape = rng.choice(KINDS)
        clock.advance(rng.uniform(0.1, 2.0) * DAY)
        late = rng.random() < 0.15
        record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(
            type=kind, contact_id=cid, **shape,  # type: ignore[arg-type]
            ts=clock.now() - rng.uniform(1, 4) * DAY if late else None))
        roll = rng.random()
        with app.reader() as uow:
            contact = uow.contacts.get(cid)
        assert contact is not None
        if roll < 0.25 and contact.stage in ("prospect", "opportunity"):
            move_stage(uow=app.uow(), ctx=app.ctx, contact_id=cid, to_stage="lead",
                       reason="not now")
            made.recycles.setdefault(cid, []).append(clock.now())
        elif 0.25 <= roll < 0.32 and cid not in made.qualified \
                and contact.stage != "disqualified":
            qualify(uow=app.uow(), ctx=app.ctx, contact_id=cid, answers=PASSING)
            made.qualified[cid] = clock.now()
        elif 0.32 <= roll < 0.37 and contact.stage != "disqualified":
            deal = create_opportunity(uow_factory=app.uow, ctx=app.ctx, contact_id=cid,
                                      name="Deal", amount=1000, currency="EUR")
            clock.advance(DAY)
            win_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=deal.id)
            made.bought[cid] = clock.now()
    return made


def backtest(app: App, principal: Principal = OPERATOR, **args: object) -> BacktestReport:
    with app.engine.connect() as conn:
        return run_backtest(reads=SqlBacktestReads(conn), ctx=app.ctx, principal=principal,
                            progress=NullProgress(), **args)  # type: ignore[arg-type]


def brute_force(app: App, made: Made, config: LifecycleConfig, kind: str, threshold: float,
                ids: list[int]) -> tuple[int, int, int]:
    """(flagged, flagged customers, customers): the engine run on each contact's recorded
    events, moves back and qualification (times kept by the test) with the rule's threshold
    set, one threshold at a time. SQL: when the engine moved it to the hand-off stage by its
    rule (a deal's jump past it says nothing of the threshold)."""
    tried = with_thresholds(config, mql=threshold, sql=threshold)
    flagged = converted = 0
    for cid in ids:
        with app.uow() as uow:
            contact = uow.contacts.get(cid)
            assert contact is not None
            account = uow.accounts.get(contact.account_id) if contact.account_id else None
            events = uow.events.history(cid)
        contact.fit = score_fit(contact, account, config.fit)
        bought = made.bought.get(cid)
        if kind == "sql":  # a deal moves a contact past the hand-off whatever the threshold
            events = [(ts, e) for ts, e in events if e.type not in DEAL_EVENTS]
        mql, sql = engine_times(History(
            contact, events, bought, recycles=tuple(made.recycles.get(cid, ())),
            qualified_at=made.qualified.get(cid)), tried)
        hit = (mql if kind == "mql" else sql) is not None
        flagged += hit
        converted += hit and bought is not None
    return flagged, converted, sum(cid in made.bought for cid in ids)


def test_the_report_equals_the_engine_run_per_threshold(app: App, clock: FakeClock) -> None:
    made = make_history(app, clock)
    assert 2 <= len(made.bought) < len(made.ids)  # the seed makes buyers and others
    assert made.recycles  # and moves back
    assert made.qualified
    report = backtest(app, mql_thresholds=[5, 15, 25, 50], sql_thresholds=[20, 45, 90],
                      min_flagged=1)
    assert (report.contacts, report.customers) == (len(made.ids), len(made.bought))
    assert report.in_force
    mql, sql = report.sweeps
    assert [r.threshold for r in mql.results] == [5, 15, 25, 40, 50]  # 40: the current one
    assert [r.threshold for r in sql.results] == [20, 45, 60, 90]
    for s in (mql, sql):
        for r in s.results:
            assert (r.flagged, r.converted, s.customers) == brute_force(
                app, made, app.config, s.kind, r.threshold, made.ids), (s.kind, r.threshold)
            assert r.recall == (r.converted / s.customers)
        current = next(r for r in s.results if r.threshold == s.current)
        assert current.median_days_saved in (0.0, None)  # the configuration in force itself
    assert any(0 < r.flagged < len(made.ids) for r in mql.results)


def candidate_text() -> str:
    """The shipped configuration, where any page view is worth 20 points."""
    return default_config_text().replace(
        "      when: {type: page_view}\n      points: 1\n      cap: {points: 10, per: day}",
        "      when: {type: page_view}\n      points: 20")


def test_a_candidate_configuration(app: App, clock: FakeClock) -> None:
    made = make_history(app, clock)
    text = candidate_text()
    assert text != default_config_text()
    candidate = parse_config_text(text, source="candidate")
    assert candidate.digest != app.config.digest
    report = backtest(app, candidate=candidate, mql_thresholds=[15, 30], min_flagged=1)
    assert not report.in_force
    for r in report.sweeps[0].results:
        assert (r.flagged, r.converted, report.customers) == brute_force(
            app, made, candidate, "mql", r.threshold, made.ids)
    before = {r.threshold: r.flagged for r in backtest(
        app, mql_thresholds=[15, 30], min_flagged=1).sweeps[0].results}
    after = {r.threshold: r.flagged for r in report.sweeps[0].results}
    assert after[15] >= before[15]
    assert after != before
    # Compared with the configuration in force: flagged sooner, never later, at 40 too.
    at_40 = next(r for r in report.sweeps[0].results if r.threshold == 40)
    assert at_40.median_days_saved is None or at_40.median_days_saved >= 0


def test_who_is_replayed(app: App, clock: FakeClock) -> None:
    made = make_history(app, clock)
    erase(uow=app.uow(), ctx=app.ctx, contact_id=made.ids[0], reason="asked")
    assert backtest(app).contacts == len(made.ids) - 1
    cut = made.created[made.ids[5]]
    assert backtest(app, created_before=cut).contacts == 4  # 1 to 4: 0 is erased
    rep = Principal(name="rita", role="sales_rep", scope="write", user_id=7)
    with pytest.raises(Forbidden):
        backtest(app, rep)


def test_customers_imported_as_such_are_left_out(app: App, clock: FakeClock,
                                                 tmp_path: Path) -> None:
    """A contact imported as a customer bought at some unknown time (the import's stands in),
    and one with no behaviour before buying could not be flagged by any threshold: both
    would only blur every threshold's recall and days."""
    made = make_history(app, clock, people=5)
    mapping = tmp_path / "customers.yaml"
    mapping.write_text('name: customers\nid: ref\nstage:\n  key: customer\n'
                       '  reason: "customers before leadflow"\ncontact:\n  email: email\n',
                       encoding="utf-8")
    csv = tmp_path / "customers.csv"
    csv.write_text("ref,email\n1,old1@client.example\n2,old2@client.example\n",
                   encoding="utf-8")
    spec = load_mapping(mapping)
    source = open_csv(csv, spec)
    done = import_contacts(uow_factory=app.uow, ctx=app.ctx, mapping=spec, rows=source.rows(),
                           total=source.total, progress=NullProgress())
    assert not done.bad
    # and one who bought through sales before any tracked behaviour
    walk_in = good_fit_contact(app, "walkin@acme.example")
    assert walk_in.id is not None
    deal = create_opportunity(uow_factory=app.uow, ctx=app.ctx, contact_id=walk_in.id,
                              name="Walk-in", amount=500, currency="EUR")
    win_opportunity(uow_factory=app.uow, ctx=app.ctx, opportunity_id=deal.id)
    report = backtest(app)
    assert (report.contacts, report.customers, report.left_out) == (
        len(made.ids), len(made.bought), 3)


def test_worker_processes_give_the_same_report(app: App, clock: FakeClock,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A large install replays in two worker processes, by ranges of ids: the same figures."""
    make_history(app, clock)
    candidate = parse_config_text(candidate_text(), source="candidate")
    monkeypatch.setattr(backtest_reads, "RANGE", 4)  # several ranges, some of them uneven

    def run(parallel_from: int) -> BacktestReport:
        with app.engine.connect() as conn:
            return run_backtest(reads=SqlBacktestReads(conn, parallel_from=parallel_from),
                                ctx=app.ctx, principal=OPERATOR, progress=NullProgress(),
                                candidate=candidate, mql_thresholds=[10, 25, 50],
                                min_flagged=1)
    here, there = run(10**9), run(0)
    assert there == here
    assert here.contacts > 8


def test_an_empty_install(app: App) -> None:
    report = backtest(app)
    assert (report.contacts, report.customers) == (0, 0)
    assert all(r.flagged == 0 and r.recall is None for s in report.sweeps for r in s.results)
    assert all(s.suggested is None for s in report.sweeps)
