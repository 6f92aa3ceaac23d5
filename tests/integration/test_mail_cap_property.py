"""Property: whatever sequence of triggers queues email for a contact, and whenever the sender
runs, no 30-day window ever holds more than the cap of marketing email (newsletter included);
transactional email is never held; nothing goes after it expired or twice."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.content import ContentItem
from leadflow.domain.mail_policy import CAPPED, MARKETING, NEWSLETTER, TRANSACTIONAL
from leadflow.domain.model import ConsentRecord
from leadflow.services.contacts import ContactIn, create_contact
from leadflow.services.mail_queue import queue_mail
from leadflow.services.mail_sending import send_due
from tests.conftest import FakeClock

HOUR = 3600.0
DAY = 24 * HOUR

trigger = st.tuples(
    st.floats(min_value=0, max_value=20 * DAY),                # wait before the trigger
    st.sampled_from([MARKETING, MARKETING, NEWSLETTER, TRANSACTIONAL]),
    st.integers(min_value=1, max_value=99),                    # priority
    st.sampled_from([None, 2 * DAY, 10 * DAY, 45 * DAY]),      # expires after
    st.booleans(),                                             # the sender runs after it
)

counter = itertools.count()


def make_app(tmp: Path) -> tuple[App, FakeClock, ContentItem]:
    clock = FakeClock()
    app = App(Settings(database_url=f"sqlite:///{tmp / 'cap.db'}", data_dir=tmp / "data"),
              clock=clock)
    with app.uow() as uow:
        item = uow.content.add(ContentItem(key="guide", title="Guide", url="/guide",
                                           maturity="discovery", format="article"), 0.0)
        uow.commit()
    return app, clock, item


def test_no_window_ever_holds_more_than_the_cap(tmp_path: Path) -> None:
    app, clock, item = make_app(tmp_path)
    cap = app.config.nurture.cap

    @settings(max_examples=int(os.environ.get("CAP_EXAMPLES", "30")), deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(trigger, min_size=1, max_size=14))
    def check(triggers: list[tuple[float, str, int, float | None, bool]]) -> None:
        n = next(counter)
        contact = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
            email=f"p{n}@example.com"))
        assert contact.id is not None
        with app.uow() as uow:
            found = uow.contacts.get(contact.id)
            assert found is not None
            found.consent["newsletter"] = ConsentRecord("newsletter", True, "test", 0.0)
            uow.contacts.save(found)
            uow.commit()
        for i, (wait, category, priority, expires, run) in enumerate(triggers):
            clock.advance(wait)
            with app.uow() as uow:
                queue_mail(uow, contact_id=contact.id, category=category,
                           template={MARKETING: "content", NEWSLETTER: "newsletter",
                                     TRANSACTIONAL: "asset"}[category],
                           dedupe_key=f"p{n}:{i}", priority=priority, at=clock.now(),
                           item=item, expires_in=expires)
                uow.commit()
            if run:
                send_due(uow=app.uow, ctx=app.ctx, postage=app.postage)
        for _ in range(4):  # let held mail go as windows free up
            send_due(uow=app.uow, ctx=app.ctx, postage=app.postage)
            clock.advance(16 * DAY)
        with app.engine.connect() as conn:
            rows = list(conn.execute(select(t.mail_messages).where(
                t.mail_messages.c.contact_id == contact.id)))
        sent = sorted(r.claimed_at for r in rows if r.status == "sent" and r.category in CAPPED)
        for i, start in enumerate(sent):
            in_window = [s for s in sent[i:] if s < start + cap.window]
            assert len(in_window) <= cap.emails, (start, sent)
        for r in rows:
            assert r.status in ("sent", "skipped"), (r.status, r.reason)
            if r.status == "sent":
                assert r.expires_at is None or r.claimed_at <= r.expires_at
            if r.category == TRANSACTIONAL:
                assert r.not_before == r.created_at  # never held by the cap
                assert r.status == "sent" or r.reason == "expired"
            if r.status == "skipped":
                assert r.reason in ("expired", "over the frequency cap"), r.reason
        assert len({r.message_id for r in rows if r.status == "sent"}) == sum(
            r.status == "sent" for r in rows)

    try:
        check()
    finally:
        app.engine.dispose()
