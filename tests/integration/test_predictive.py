"""The predictive conversion score trained on the install's own history (both databases):
known drivers come back as each contact's reasons, excluded and later data are never read,
versions keep their metrics, one is active, scoring is incremental, explain works.

The history is generated through the services (contacts created, then their events tracked
in one batch): a contact becomes a lead when it submits a form, a customer when it buys.
Whether it buys depends on two known inputs only — a senior job (director, vp) and having
replied to an email before becoming a lead; country, source and page views are noise.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event, select

from leadflow.adapters.db import tables as t
from leadflow.adapters.ml.history import training_rows
from leadflow.adapters.ml.learners import (
    Candidate,
    LeadflowModel,
    OneHotLogistic,
    gradient_boosting,
    one_hot_logistic,
)
from leadflow.adapters.ml.store import SqlPredictiveStore
from leadflow.bootstrap import App
from leadflow.domain.config import LifecycleConfig, parse_config
from leadflow.domain.errors import ConfigInvalid, InvalidInput, NotFound
from leadflow.domain.lifecycle import evaluate
from leadflow.domain.ports import NullProgress
from leadflow.domain.predictive import informative, resolve_target
from leadflow.services import predictive
from leadflow.services.common import persist_outcome
from leadflow.services.contacts import AccountIn, ContactIn, create_contact, new_contact
from leadflow.services.events import EventIn, record_event
from leadflow.services.tracking_bulk import record_many
from tests.conftest import FakeClock

DAY = 86_400.0
SENIOR = ("director", "vp")
# Skewed so that the typical (most frequent) seniority is a junior one.
SENIORITIES = ("manager",) * 9 + ("analyst",) * 4 + ("director",) * 4 + ("vp",) * 3
# The buyers' won_reason attribute is read only because it is named an input here; it and the
# account role (both filled in once a contact bought) are excluded, as they should be.
LEAKY = "contact.attributes.won_reason"
MODEL = {"attributes": [LEAKY], "exclude": ["contact.account_role", LEAKY]}


def quick_learner() -> LeadflowModel:
    """leadflow's model with two small candidates: seconds, not minutes, in tests."""
    return LeadflowModel(choices=[
        Candidate("gradient boosting (40 trees)",
                  lambda f, seed, rows: gradient_boosting(f, seed=seed, trees=40, leaves=8)),
        Candidate("logistic (C=1)",
                  lambda f, seed, rows: one_hot_logistic(f, c=1.0, seed=seed, min_frequency=5,
                                                         quantiles=max(2, min(100, rows)))),
    ])


def with_model(app: App, **model: Any) -> LifecycleConfig:
    raw = copy.deepcopy(app.config.raw)
    raw["model"] = {**raw.get("model", {}), **model}
    config = parse_config(raw)
    app.use_config(config)
    return config


@dataclass
class History:
    now: float
    converted: set[int] = field(default_factory=set)
    leads: dict[int, float] = field(default_factory=dict)  # contact id → became a lead
    replied: set[int] = field(default_factory=set)
    senior: set[int] = field(default_factory=set)


def generate(app: App, clock: FakeClock, *, n: int = 260, seed: int = 5) -> History:
    """Contacts created one after the other (in one transaction, as create_contact would),
    then their events tracked in one batch."""
    rng = random.Random(seed)
    now = clock.now()
    start = now - 330 * DAY
    history = History(now=now)
    events: list[EventIn] = []
    with app.uow() as uow:
        for i in range(n):
            created = start + i * (240 * DAY / n)
            clock.t = created
            seniority = rng.choice(SENIORITIES)
            replies = rng.choice((0, 0, 0, 1, 2))
            logit = -2.6 + 3.0 * (seniority in SENIOR) + 2.4 * (replies > 0)
            buys = rng.random() < 1 / (1 + math.exp(-logit))
            email = f"p{i}@co{i}.example"
            contact, _ = new_contact(uow=uow, ctx=app.ctx, actor="test", data=ContactIn(
                email=email, seniority=seniority, country=rng.choice(("FR", "DE", "GB", "US")),
                source=rng.choice(("web", "fair", "ads")),
                account_role="decision_maker" if buys else "user",  # known only afterwards
                attributes={"won_reason": "price ok"} if buys else {},
                account=AccountIn(name=f"Co {i}", domain=f"co{i}.example",
                                  industry=rng.choice(("software", "retail")), employees=300)))
            persist_outcome(uow, contact, evaluate(contact, app.config, at=created, now=created),
                            app.config, actor="test")
            assert contact.id is not None
            lead_at = created + rng.uniform(0.5, 5) * DAY
            for _ in range(rng.randint(0, 4)):
                events.append(EventIn(type="page_view", email=email, url="/blog",
                                      ts=rng.uniform(created, lead_at - 60)))
            for _ in range(replies):
                events.append(EventIn(type="email_replied", email=email,
                                      ts=rng.uniform(created, lead_at - 60)))
            events.append(EventIn(type="form_submitted", email=email, url="/contact",
                                  ts=lead_at))
            history.leads[contact.id] = lead_at
            if seniority in SENIOR:
                history.senior.add(contact.id)
            if replies:
                history.replied.add(contact.id)
            if buys:
                events.append(EventIn(type="purchase", email=email,
                                      ts=lead_at + rng.uniform(5, 60) * DAY))
                history.converted.add(contact.id)
        uow.commit()
    clock.t = now
    events.sort(key=lambda e: e.ts or 0.0)
    with app.uow() as uow:
        record_many(uow=uow, ctx=app.ctx, events=events)
        uow.commit()
    return history


def new_lead(app: App, clock: FakeClock, email: str, *, seniority: str, replies: int) -> int:
    """A contact that became a lead yesterday."""
    contact = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
        email=email, seniority=seniority, country="FR", source="web",
        account=AccountIn(name=email, domain=email.split("@")[1], industry="software",
                          employees=300)))
    assert contact.id is not None
    for k in range(replies):
        track(app, email, "email_replied", clock.now() - (3 + k) * DAY)
    track(app, email, "form_submitted", clock.now() - DAY, url="/contact")
    return contact.id


def track(app: App, email: str, kind: str, ts: float, url: str | None = None) -> None:
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type=kind, email=email, ts=ts,
                                                           url=url))


def train(app: App, **kwargs: Any) -> predictive.ModelVersion:
    return predictive.train(store=SqlPredictiveStore(app.engine), ctx=app.ctx,
                            learner=quick_learner(), baseline=OneHotLogistic(),
                            trained_by="test", progress=NullProgress(), **kwargs)


@pytest.fixture
def history(app: App, clock: FakeClock) -> History:
    with_model(app, **MODEL)
    return generate(app, clock)


@contextmanager
def statements(app: App) -> Iterator[list[str]]:
    """Every SQL statement the engine runs inside the block."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(app.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(app.engine, "before_cursor_execute", record)


# ------------------------------------------------------------------------- the examples


def test_examples_are_leads_labelled_within_the_horizon(app: App, history: History) -> None:
    with app.engine.connect() as conn:
        examples = training_rows(conn, config=app.config, target=resolve_target(app.config),
                                 horizon_days=90, now=history.now, exclude=())
    rows = examples.rows
    first = {}
    for cid, cutoff, label in zip(rows.lines, rows.times, rows.labels, strict=True):
        assert cutoff + 90 * DAY <= history.now  # the horizon has passed
        first.setdefault(cid, cutoff)
        if cid not in history.converted:
            assert not label
    # Each contact's first example is taken when it became a lead.
    assert all(abs(first[cid] - history.leads[cid]) < 1e-6 for cid in first)
    assert set(first) == {cid for cid, at in history.leads.items()
                          if at + 90 * DAY <= history.now}
    # A converted contact is labelled positive at least once, and never after it converted.
    assert {cid for cid, label in zip(rows.lines, rows.labels, strict=True) if label} \
        == history.converted & set(first)


def test_a_version_keeps_its_metrics_and_never_reads_stage_owner_or_opportunity(
        app: App, history: History) -> None:
    version = train(app)
    names = " ".join(version.features)
    for word in ("stage", "owner", "opportunit", "milestone", "deal", "purchase", "temperature",
                 "fit", "persona", "qualification"):
        assert word not in names, word
    assert "contact.seniority" in version.features
    assert "events.type.email_replied" in version.features
    not_read = {n["what"] for n in version.details["not_read"]}
    assert {"contact.stage", "contact.owner_id", "opportunities", "events of type purchase"} \
        <= not_read
    [listed] = predictive.list_versions(store=SqlPredictiveStore(app.engine))
    assert listed == version
    m = listed.metrics
    for name in ("auc", "average_precision", "brier", "lift_top_decile"):
        assert isinstance(m[name], float), name
        assert isinstance(m["baseline"][name], float), name
    assert 0.5 < m["auc"] <= 1.0  # the drivers are learnable
    assert m["test"]["examples"] + m["train"]["examples"] == listed.examples
    assert 0 < listed.positives < listed.examples
    assert not listed.active
    assert listed.trained_by == "test"
    assert listed.target == "customer"
    assert listed.horizon_days == 90


def test_a_leaking_column_in_the_exclusion_config_is_not_read(app: App,
                                                               history: History) -> None:
    with statements(app) as seen:
        version = train(app)
    assert seen
    assert not any("won_reason" in s or "account_role" in s for s in seen)
    assert LEAKY not in version.features
    assert "contact.account_role" not in version.features
    assert LEAKY not in version.details["columns_read"]
    assert {LEAKY, "contact.account_role"} <= {n["what"] for n in version.details["not_read"]}
    assert version.metrics["auc"] < 0.95  # nothing gives the outcome away
    # Without the exclusion, both are read — and the leak makes a perfect, useless model.
    with_model(app, exclude=[])
    with statements(app) as seen:
        leaky = train(app)
    assert any("won_reason" in s for s in seen)
    assert any("account_role" in s for s in seen)
    assert {LEAKY, "contact.account_role"} <= set(leaky.features)
    assert leaky.metrics["auc"] == 1.0


def test_an_event_recorded_after_the_outcome_does_not_change_the_model(
        app: App, clock: FakeClock, history: History) -> None:
    store = SqlPredictiveStore(app.engine)
    before = train(app)
    with app.engine.connect() as conn:
        rows_before = training_rows(conn, config=app.config, target=resolve_target(app.config),
                                    horizon_days=90, now=history.now,
                                    exclude=app.config.model.exclude).rows
    rows_before, _ = informative(rows_before)
    # After every example's outcome window: replies and pricing visits ten days ago, for
    # buyers and non-buyers alike, and a buyer's visits the day after it bought.
    for cid in sorted(history.leads)[:40]:
        email = f"p{cid - 1}@co{cid - 1}.example"
        track(app, email, "email_replied", history.now - 10 * DAY)
        track(app, email, "page_view", history.now - 9 * DAY, url="/pricing")
    with app.engine.connect() as conn:
        bought = conn.execute(select(t.stage_changes.c.contact_id, t.stage_changes.c.at).where(
            t.stage_changes.c.to_stage == "customer").limit(5)).all()
        emails = dict(conn.execute(select(t.contacts.c.id, t.contacts.c.email)).all())
    for cid, at in bought:
        track(app, emails[cid], "email_replied", at + DAY)
    clock.t = history.now  # trained at the same moment
    after = train(app)
    assert after.metrics == before.metrics
    assert after.features == before.features
    assert after.examples == before.examples
    assert after.positives == before.positives
    first, second = store.load_model(before), store.load_model(after)
    assert first.model.probabilities(rows_before) == second.model.probabilities(rows_before)


# ------------------------------------------------------------------------- versions


def test_activate_switches_the_active_version(app: App, history: History) -> None:
    store = SqlPredictiveStore(app.engine)
    none = predictive.contact_prediction(store=store, ctx=app.ctx, contact_id=1)
    assert none.version is None
    assert none.why_none == "no model is active"
    one, two = train(app), train(app, horizon_days=60)
    predictive.activate(store=store, ctx=app.ctx, version_id=one.id, score_now=False,
                        progress=NullProgress())
    assert [v.id for v in store.versions() if v.active] == [one.id]
    # Not scored yet: a prediction is computed when asked, and not stored.
    lead = min(set(history.leads) - history.converted)
    computed = predictive.contact_prediction(store=store, ctx=app.ctx, contact_id=lead)
    assert computed.prediction is not None
    assert 0 < computed.prediction.probability < 1
    assert store.count(one.id) == 0
    buyer = min(history.converted)
    found = predictive.contact_prediction(store=store, ctx=app.ctx, contact_id=buyer)
    assert found.prediction is None
    assert "customer" in (found.why_none or "")
    first = predictive.score(store=store, ctx=app.ctx, progress=NullProgress())
    assert first.full  # the first pass after an activation scores everyone
    assert first.scored == store.count(one.id) > 0
    predictive.activate(store=store, ctx=app.ctx, version_id=two.id, progress=NullProgress())
    assert [v.id for v in store.versions() if v.active] == [two.id]
    with app.engine.connect() as conn:
        used = set(conn.execute(select(t.contact_predictions.c.version_id)).scalars())
    assert used == {two.id}
    with pytest.raises(NotFound):
        predictive.activate(store=store, ctx=app.ctx, version_id=999, progress=NullProgress())


def test_scoring_is_incremental(app: App, clock: FakeClock, history: History) -> None:
    store = SqlPredictiveStore(app.engine)
    version = train(app)
    full = predictive.activate(store=store, ctx=app.ctx, version_id=version.id,
                               progress=NullProgress())
    open_leads = set(history.leads) - history.converted
    assert full.scored == len(open_leads) == store.count(version.id)
    with app.engine.connect() as conn:
        at_first = dict(conn.execute(select(t.contact_predictions.c.contact_id,
                                            t.contact_predictions.c.scored_at)).all())
    quiet = predictive.score(store=store, ctx=app.ctx, progress=NullProgress())
    assert (quiet.full, quiet.considered, quiet.scored) == (False, 0, 0)
    clock.advance(60)
    [changed, bought] = sorted(open_leads)[:2]
    track(app, f"p{changed - 1}@co{changed - 1}.example", "email_replied", clock.now())
    track(app, f"p{bought - 1}@co{bought - 1}.example", "purchase", clock.now())
    clock.advance(60)
    report = predictive.score(store=store, ctx=app.ctx, progress=NullProgress())
    assert (report.full, report.considered, report.scored, report.forgotten) == \
        (False, 2, 1, 1)  # the buyer is no longer scored
    with app.engine.connect() as conn:
        now = dict(conn.execute(select(t.contact_predictions.c.contact_id,
                                       t.contact_predictions.c.scored_at)).all())
    assert bought not in now
    assert now[changed] > at_first[changed]
    assert {c: at for c, at in now.items() if c != changed} == \
        {c: at for c, at in at_first.items() if c not in (changed, bought)}
    again = predictive.score(store=store, ctx=app.ctx, progress=NullProgress(), full=True)
    assert again.full
    assert again.scored == len(open_leads) - 1


# ------------------------------------------------------------------------- reasons


def test_known_drivers_come_back_as_each_contacts_reasons(app: App, clock: FakeClock,
                                                           history: History) -> None:
    store = SqlPredictiveStore(app.engine)
    version = train(app)
    predictive.activate(store=store, ctx=app.ctx, version_id=version.id,
                        progress=NullProgress())
    keen = new_lead(app, clock, "keen@keen.example", seniority="director", replies=2)
    cool = new_lead(app, clock, "cool@cool.example", seniority="manager", replies=0)
    hot = predictive.contact_prediction(store=store, ctx=app.ctx, contact_id=keen,
                                        fresh=True, save=True)
    cold = predictive.contact_prediction(store=store, ctx=app.ctx, contact_id=cool,
                                         fresh=True)
    assert hot.prediction is not None
    assert cold.prediction is not None
    assert hot.prediction.probability > cold.prediction.probability + 0.2
    reasons = {r["feature"]: r for r in hot.prediction.reasons[:3]}
    assert {"contact.seniority", "events.type.email_replied"} <= set(reasons), reasons
    assert reasons["contact.seniority"]["value"] == "director"
    assert reasons["contact.seniority"]["reference"] == "manager"
    assert all(r["log_odds"] > 0 and r["effect"] > 0 and r["direction"] == "up"
               for r in reasons.values() if r["feature"] != "lead.days_as_lead")
    # The cool lead is at the typical value of both drivers: neither is one of its reasons.
    assert not {"contact.seniority", "events.type.email_replied"} & {
        r["feature"] for r in cold.prediction.reasons}
    # Noise never outweighs a driver.
    weight = {r["feature"]: abs(r["log_odds"]) for r in hot.prediction.reasons}
    for noise in ("contact.country", "contact.source", "account.industry"):
        assert weight.get(noise, 0.0) < min(weight["contact.seniority"],
                                            weight["events.type.email_replied"])
    # explain saved it; the stored prediction is what the page and the API show.
    stored = predictive.contact_prediction(store=store, ctx=app.ctx, contact_id=keen)
    assert stored.prediction == hot.prediction


# ------------------------------------------------------------------------- configuration


def test_a_milestone_target_and_the_model_section_are_checked(app: App) -> None:
    assert resolve_target(app.config, "milestone:mql").keys == ("mql",)
    assert resolve_target(app.config).keys == ("customer",)
    assert resolve_target(app.config, "prospect").keys == ("prospect", "opportunity",
                                                           "customer")
    with pytest.raises(InvalidInput, match="unknown milestone"):
        resolve_target(app.config, "milestone:nope")
    with pytest.raises(InvalidInput, match="unknown target"):
        resolve_target(app.config, "lead")
    with pytest.raises(ConfigInvalid) as caught:
        with_model(app, target="suspect", horizon_days=0, exclude=["contact.stage"],
                   attributes=["events.total"])
    where = {p.location for p in caught.value.problems}
    assert {"model.target", "model.horizon_days", "model.exclude[0]",
            "model.attributes[0]"} <= where


def test_too_little_history_is_a_clear_error(app: App) -> None:
    with pytest.raises(InvalidInput, match="at least 50 examples"):
        train(app)
