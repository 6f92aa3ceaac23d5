"""Nurture and email end to end on SQLite and PostgreSQL, sent over a real SMTP server
(aiosmtpd on loopback): content by maturity, the frequency cap (also with workers racing),
sending once, unsubscribe, opens and clicks, and erasure."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select

from leadflow.adapters.db import tables as t
from leadflow.adapters.mail.senders import SmtpMailer
from leadflow.adapters.mail.templates import JinjaRenderer
from leadflow.bootstrap import App
from leadflow.domain.content import ContentItem
from leadflow.domain.errors import Suppressed
from leadflow.domain.mail_policy import MARKETING, NEWSLETTER
from leadflow.domain.model import ConsentRecord
from leadflow.entrypoints.api.app import create_app
from leadflow.services import nurture
from leadflow.services.api_keys import create_api_key
from leadflow.services.contact_view import contact_view
from leadflow.services.contacts import ContactIn, create_contact
from leadflow.services.events import EventIn, record_event
from leadflow.services.mail_queue import queue_mail
from leadflow.services.mail_sending import Postage, send_due, sweep_interrupted
from leadflow.services.moves import erase
from leadflow.services.users import create_user
from tests.conftest import FakeClock, good_fit_contact

DAY = 86400.0

LIBRARY = [
    ContentItem(key="what-is-lead-scoring", title="What is lead scoring?", url="/guides/scoring",
                maturity="discovery", format="article", topics=("scoring",)),
    ContentItem(key="funnel-basics", title="Funnel basics", url="/guides/funnel",
                maturity="discovery", format="article", topics=("funnel",)),
    ContentItem(key="crm-comparison", title="CRM comparison", url="/wp/crm-comparison",
                maturity="evaluation", format="white_paper", premium=True, topics=("crm",)),
    ContentItem(key="roi-case-study", title="How Acme doubled its pipeline",
                url="/cases/acme", maturity="evaluation", format="case_study",
                topics=("crm",)),
    ContentItem(key="pricing", title="Pricing and plans", url="/pricing",
                maturity="decision", format="pricing"),
    ContentItem(key="guide-fr", title="Le guide du scoring", url="/fr/guide",
                maturity="discovery", format="article", language="fr"),
    ContentItem(key="news-1", title="Newsletter #1: the funnel issue", url="/news/1",
                maturity="discovery", format="newsletter_issue"),
]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as probe:  # aiosmtpd checks readiness by connecting: no port 0
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def postage(app: App, smtp: tuple[Controller, Inbox]) -> Postage:
    controller, _ = smtp
    return Postage(mailer=SmtpMailer(host="127.0.0.1", port=controller.port, username=None,
                                     password=None, starttls=False),
                   renderer=JinjaRenderer(), links=app.links, sender="Acme <hello@acme.example>",
                   company="Acme")


def library(app: App) -> dict[str, ContentItem]:
    with app.uow() as uow:
        items = {i.key: uow.content.add(i, app.clock.now()) for i in LIBRARY}
        uow.commit()
    return items


def lead(app: App, email: str, **fields: Any) -> int:
    c = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email=email, **fields))
    assert c.id is not None
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="form_submitted",
                                                           contact_id=c.id))
    return c.id


def subscribe(app: App, contact_id: int) -> None:
    with app.uow() as uow:
        contact = uow.contacts.get(contact_id)
        assert contact is not None
        contact.consent["newsletter"] = ConsentRecord("newsletter", True, "form:news", 0.0)
        uow.contacts.save(contact)
        uow.commit()


def rows(app: App, contact_id: int | None = None) -> list[Any]:
    query = select(t.mail_messages).order_by(t.mail_messages.c.id)
    if contact_id is not None:
        query = query.where(t.mail_messages.c.contact_id == contact_id)
    with app.engine.connect() as conn:
        return list(conn.execute(query))


def send(app: App, postage: Postage) -> Any:
    return send_due(uow=app.uow, ctx=app.ctx, postage=postage)


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_new_lead_gets_discovery_content_with_unsubscribe_headers(
        app: App, postage: Postage, smtp: tuple[Controller, Inbox]) -> None:
    _, inbox = smtp
    library(app)
    cid = lead(app, "lea@example.com", first_name="Léa <b>")
    report = nurture.tick(uow=app.uow, ctx=app.ctx)
    assert (report.entered, report.queued) == (1, 1)
    assert send(app, postage).sent == 1
    [msg] = inbox.to("lea@example.com")
    assert msg["Subject"] in ("What is lead scoring?", "Funnel basics")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/m/u/")
    html = msg.get_body(preferencelist=("html",))
    assert html is not None
    assert "Léa &lt;b&gt;" in html.get_content()  # escaped in HTML
    assert "/m/o/" in html.get_content()
    [row] = rows(app, cid)
    assert (row.status, row.category, row.track_key) == ("sent", MARKETING, "lead_discovery")
    # The next step waits four days; nothing more goes before.
    assert nurture.tick(uow=app.uow, ctx=app.ctx).queued == 0
    clock: FakeClock = app.clock  # type: ignore[assignment]
    clock.advance(4 * DAY + 60)
    assert nurture.tick(uow=app.uow, ctx=app.ctx).queued == 1
    send(app, postage)
    subjects = {m["Subject"] for m in inbox.to("lea@example.com")}
    assert subjects == {"What is lead scoring?", "Funnel basics"}  # never the same item twice


def test_a_french_lead_gets_french_content_and_template(app: App, postage: Postage,
                                                        smtp: tuple[Controller, Inbox]) -> None:
    _, inbox = smtp
    library(app)
    lead(app, "jean@example.fr", first_name="Jean", language="fr")
    nurture.tick(uow=app.uow, ctx=app.ctx)
    send(app, postage)
    [msg] = inbox.to("jean@example.fr")
    assert msg["Subject"] == "Le guide du scoring"
    assert "Bonjour Jean" in text_of(msg)


def test_a_prospect_owned_by_sales_leaves_marketing_and_gets_decision_stage_content(
        app: App, postage: Postage, smtp: tuple[Controller, Inbox]) -> None:
    _, inbox = smtp
    library(app)
    create_user(uow=app.uow(), ctx=app.ctx, email="rob@acme.example", name="Rob Sales",
                role="sales_rep")
    c = good_fit_contact(app, email="pat@bigco.example", first_name="Pat")
    assert c.id is not None
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="form_submitted",
                                                           contact_id=c.id))
    nurture.tick(uow=app.uow, ctx=app.ctx)
    with app.reader() as uow:
        assert [e.track_key for e in uow.enrollments.of_contact(c.id)] == ["lead_discovery"]
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="demo_request",
                                                           contact_id=c.id))
    view = contact_view(uow=app.uow(), ctx=app.ctx, contact_id=c.id)
    assert view["stage"] == "prospect"
    assert view["owner"]["email"] == "rob@acme.example"
    report = nurture.tick(uow=app.uow, ctx=app.ctx)
    assert report.left == 1
    assert report.entered == 1
    with app.uow() as uow:
        status = {e.track_key: e.status for e in uow.enrollments.of_contact(c.id)}
    assert status == {"lead_discovery": "left", "prospect_decision": "active"}
    # The discovery email queued while it was a lead is not sent to the prospect.
    clock: FakeClock = app.clock  # type: ignore[assignment]
    clock.advance(2 * DAY + 60)
    nurture.tick(uow=app.uow, ctx=app.ctx)
    send(app, postage)
    got = inbox.to("pat@bigco.example")
    sent_items = [r.item_id for r in rows(app, c.id) if r.status == "sent"]
    with app.uow() as uow:
        maturities = {uow.content.get_by_id(i).maturity for i in sent_items}  # type: ignore[union-attr]
    assert maturities
    assert maturities <= {"evaluation", "decision"}
    assert all(m["From"].startswith("Rob Sales") for m in got)
    assert all(m["Reply-To"] == "rob@acme.example" for m in got)


def test_a_customer_gets_only_the_newsletter(app: App, postage: Postage,
                                             smtp: tuple[Controller, Inbox]) -> None:
    _, inbox = smtp
    items = library(app)
    cid = lead(app, "cus@example.com")
    nurture.tick(uow=app.uow, ctx=app.ctx)  # queues a discovery email while a lead
    subscribe(app, cid)
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="purchase", contact_id=cid))
    assert contact_view(uow=app.uow(), ctx=app.ctx, contact_id=cid)["stage"] == "customer"
    nurture.tick(uow=app.uow, ctx=app.ctx)
    assert nurture.send_newsletter(uow=app.uow(), ctx=app.ctx, item_key="news-1") == 1
    report = send(app, postage)
    assert report.reasons == {"customers get only the newsletter": 1}
    [msg] = inbox.to("cus@example.com")
    assert msg["Subject"] == "Newsletter #1: the funnel issue"
    statuses = {(r.category, r.status) for r in rows(app, cid)}
    assert statuses == {(MARKETING, "skipped"), (NEWSLETTER, "sent")}
    assert items["news-1"].id in {r.item_id for r in rows(app, cid)}
    # A second send of the same issue queues nothing.
    assert nurture.send_newsletter(uow=app.uow(), ctx=app.ctx, item_key="news-1") == 0


def burst(app: App, contact_id: int, item: ContentItem, n: int, *, at: float) -> None:
    with app.uow() as uow:
        for i in range(n):
            queue_mail(uow, contact_id=contact_id, category=MARKETING if i % 3 else NEWSLETTER,
                       template="content" if i % 3 else "newsletter",
                       dedupe_key=f"b:{contact_id}:{at}:{i}", priority=10 + i, at=at,
                       item=item, expires_in=60 * DAY)
        uow.commit()


def test_a_burst_never_exceeds_the_cap_and_held_mail_waits_for_the_window(
        app: App, postage: Postage, smtp: tuple[Controller, Inbox]) -> None:
    _, inbox = smtp
    items = library(app)
    cid = lead(app, "busy@example.com")
    subscribe(app, cid)
    burst(app, cid, items["crm-comparison"], 8, at=app.clock.now())
    report = send(app, postage)
    assert (report.sent, report.held) == (3, 5)
    sent = [r for r in rows(app, cid) if r.status == "sent"]
    assert sorted(r.priority for r in sent) == [15, 16, 17]  # the highest priorities first
    clock: FakeClock = app.clock  # type: ignore[assignment]
    clock.advance(29 * DAY)
    assert send(app, postage).sent == 0
    clock.advance(DAY + 60)
    assert send(app, postage).sent == 3
    assert len(inbox.to("busy@example.com")) == 6


def test_transactional_email_is_outside_the_cap(app: App, postage: Postage,
                                                smtp: tuple[Controller, Inbox]) -> None:
    from leadflow.services.mail_queue import queue_asset
    _, inbox = smtp
    items = library(app)
    cid = lead(app, "asker@example.com")
    burst(app, cid, items["funnel-basics"], 3, at=app.clock.now())
    subscribe(app, cid)
    assert send(app, postage).sent == 3
    with app.uow() as uow:
        queue_asset(uow, contact_id=cid, item=items["crm-comparison"], form_key="wp",
                    submission="s1", at=app.clock.now())
        uow.commit()
    assert send(app, postage).sent == 1
    asset = inbox.to("asker@example.com")[-1]
    assert asset["Subject"] == "Your copy: CRM comparison"
    assert asset["List-Unsubscribe"] is None
    assert "/p/wp?t=" in text_of(asset)  # the link to the profile form


def test_two_workers_racing_never_exceed_the_cap_nor_send_twice(
        app: App, postage: Postage, smtp: tuple[Controller, Inbox]) -> None:
    _, inbox = smtp
    items = library(app)
    contacts = [lead(app, f"race{i}@example.com") for i in range(4)]
    for cid in contacts:
        subscribe(app, cid)
        burst(app, cid, items["crm-comparison"], 12, at=app.clock.now())
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker() -> None:
        try:
            start.wait()
            send_due(uow=app.uow, ctx=app.ctx, postage=postage, batch_size=5)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    for i, cid in enumerate(contacts):
        assert len(inbox.to(f"race{i}@example.com")) == 3
        assert sum(r.status == "sent" for r in rows(app, cid)) == 3
    ids = [m["Message-ID"] for m in inbox.messages]
    assert len(ids) == len(set(ids)) == 12


def test_a_retried_send_sends_once_and_a_claim_left_by_a_dead_worker_goes_once(
        app: App, postage: Postage, smtp: tuple[Controller, Inbox]) -> None:
    _, inbox = smtp
    items = library(app)
    cid = lead(app, "once@example.com")
    down = Postage(mailer=SmtpMailer(host="127.0.0.1", port=free_port(), username=None,
                                     password=None, starttls=False, timeout=2),
                   renderer=postage.renderer, links=postage.links, sender=postage.sender,
                   company="Acme")
    nurture.tick(uow=app.uow, ctx=app.ctx)
    assert send(app, down).retried == 1  # the server is unreachable: queued again, later
    [row] = rows(app, cid)
    assert (row.status, row.attempts) == ("queued", 1)
    assert send(app, postage).sent == 0  # not yet due
    clock: FakeClock = app.clock  # type: ignore[assignment]
    clock.advance(61)
    assert send(app, postage).sent == 1
    assert send(app, postage).sent == 0  # the job run again: nothing twice
    assert len(inbox.to("once@example.com")) == 1
    # A worker that died after claiming, before the mailer had it: queued again, sent once.
    with app.uow() as uow:
        queue_mail(uow, contact_id=cid, category=MARKETING, template="content",
                   dedupe_key="crash", priority=5, at=clock.now(), item=items["roi-case-study"])
        uow.commit()
    from leadflow.services.mail_sending import SendReport, claim_due
    with app.uow() as uow:
        claimed, _ = claim_due(uow=uow, ctx=app.ctx, batch_size=10, report=SendReport())
        uow.commit()
    assert len(claimed) == 1
    assert send(app, postage).sent == 0  # claimed: no other worker takes it
    clock.advance(3601)
    assert sweep_interrupted(uow=app.uow, ctx=app.ctx) == 1
    assert send(app, postage).sent == 1
    assert rows(app, cid)[-1].status == "sent"
    assert len(inbox.to("once@example.com")) == 2


def test_a_hard_bounce_from_the_server_stops_all_email(app: App, postage: Postage,
                                                       smtp: tuple[Controller, Inbox]) -> None:
    _, inbox = smtp
    library(app)
    inbox.refuse.add("gone@example.com")
    cid = lead(app, "gone@example.com")
    nurture.tick(uow=app.uow, ctx=app.ctx)
    assert send(app, postage).failed == 1
    with app.uow() as uow:
        contact = uow.contacts.get(cid)
        assert contact is not None
        assert contact.mail_status == "bounced"
    clock: FakeClock = app.clock  # type: ignore[assignment]
    clock.advance(10 * DAY)
    report = nurture.tick(uow=app.uow, ctx=app.ctx)
    assert report.left == 1  # a bounced address leaves its tracks
    assert send(app, postage).sent == 0


def links_in(msg: EmailMessage) -> dict[str, str]:
    html = msg.get_body(preferencelist=("html",))
    assert html is not None
    body = str(html.get_content())
    out = {}
    for kind in ("o", "c", "u"):
        start = body.index(f"http://127.0.0.1:8000/m/{kind}/")
        out[kind] = body[start:body.index('"', start)].replace("&amp;", "&")
    return out


def test_opens_and_clicks_raise_engagement_and_unsubscribe_stops_marketing(
        app: App, postage: Postage, smtp: tuple[Controller, Inbox]) -> None:
    _, inbox = smtp
    library(app)
    cid = lead(app, "reader@example.com")
    nurture.tick(uow=app.uow, ctx=app.ctx)
    send(app, postage)
    [msg] = inbox.to("reader@example.com")
    found = links_in(msg)

    def score() -> float:
        return float(contact_view(uow=app.uow(), ctx=app.ctx,
                                  contact_id=cid)["engagement"]["score"])
    before = score()
    with TestClient(create_app(app)) as web:
        def path(url: str) -> str:
            parts = urlsplit(url)
            return parts.path + (f"?{parts.query}" if parts.query else "")
        pixel = web.get(path(found["o"]))
        assert (pixel.status_code, pixel.headers["content-type"]) == (200, "image/gif")
        web.get(path(found["o"]))  # a second open counts once
        assert score() == before + 1
        click = web.get(path(found["c"]), follow_redirects=False)
        assert click.status_code == 302
        assert click.headers["location"].startswith("http://127.0.0.1:8000/guides/")
        assert score() == before + 1 + 3
        forged = found["c"].replace("guides", "evil")
        assert web.get(path(forged), follow_redirects=False).status_code == 404
        # The clicked item counts as consumed: it is not offered again.
        with app.uow() as uow:
            assert len(uow.content.consumed(cid)) == 1
        page = web.get(path(found["u"]))
        assert page.status_code == 200
        assert "<form" in page.text
        with app.uow() as uow:
            contact = uow.contacts.get(cid)
            assert contact is not None
            assert "email" not in contact.consent  # opening the page changed nothing
        done = web.post(path(found["u"]), content=b"List-Unsubscribe=One-Click",
                        headers={"content-type": "application/x-www-form-urlencoded"})
        assert done.status_code == 200
        assert web.post(path(found["u"]).replace("/m/u/", "/m/u/9"),
                        content=b"").status_code in (404, 422)
    with app.uow() as uow:
        contact = uow.contacts.get(cid)
        assert contact is not None
        assert (contact.consent["email"].granted, contact.consent["email"].source) == (
            False, "unsubscribe")
    assert score() < before  # unsubscribing costs points
    clock: FakeClock = app.clock  # type: ignore[assignment]
    clock.advance(30 * DAY)
    nurture.tick(uow=app.uow, ctx=app.ctx)
    report = send(app, postage)
    assert report.sent == 0
    assert len(inbox.to("reader@example.com")) == 1


def test_erasure_leaves_no_trace_of_sent_email_and_nothing_brings_them_back(
        app: App, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    library(app)
    cid = lead(app, "Erin.Secret@Example.com", first_name="Erinna", last_name="Quasimodo")
    nurture.tick(uow=app.uow, ctx=app.ctx)
    report = send_due(uow=app.uow, ctx=app.ctx, postage=app.postage)  # the file outbox
    assert report.sent == 1
    outbox = app.settings.data_dir / "mail-outbox"
    assert any("Erinna" in p.read_text() for p in outbox.glob("*.eml"))
    erase(uow=app.uow(), ctx=app.ctx, contact_id=cid, reason="asked to be forgotten",
          mailer=app.mailer)
    for path in app.settings.data_dir.rglob("*"):
        if path.is_file() and path.suffix == ".eml":
            text = path.read_text(errors="replace").lower()
            assert "erin.secret" not in text
            assert "erinna" not in text
    with app.engine.connect() as conn:
        dump = "\n".join(repr(tuple(r)) for table in t.metadata.sorted_tables
                         for r in conn.execute(select(table))).lower()
    for secret in ("erin.secret", "erinna", "quasimodo"):
        assert secret not in dump
    with pytest.raises(Suppressed):
        record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(
            type="page_view", email="ERIN.SECRET@example.COM"))
    with TestClient(create_app(app)) as web:
        key = create_api_key(uow=app.uow(), ctx=app.ctx, name="site", kind="public").token
        replay = web.post("/v1/track", auth=(key, ""), json={
            "userId": "erin-1", "event": "Viewed", "context": {"traits": {
                "email": "ERIN.SECRET@EXAMPLE.COM"}}})
        assert replay.status_code == 200
        assert replay.json()["stored"] == 0
    assert nurture.tick(uow=app.uow, ctx=app.ctx).queued == 0
    assert {r.status for r in rows(app, cid)} == {"sent"}
    with app.engine.connect() as conn:
        assert conn.execute(select(t.contacts.c.id)).scalars().all() == [cid]
    logged = caplog.text.lower()
    for secret in ("erin.secret", "erinna", "quasimodo"):
        assert secret not in logged


def test_a_pass_after_the_first_looks_only_at_contacts_changed_since(app: App) -> None:
    library(app)
    clock: FakeClock = app.clock  # type: ignore[assignment]
    first = lead(app, "early@example.com")
    with app.uow() as uow:  # a lead the first pass must not see: its track is retired below
        uow.enrollments.add(nurture.Enrollment(
            contact_id=first, track_key="lead_discovery", status="left", step=1,
            next_at=None, entered_at=clock.now(), updated_at=clock.now()))
        uow.commit()
    clock.advance(3600)
    started = clock.now()
    second = lead(app, "late@example.com")
    report = nurture.tick(uow=app.uow, ctx=app.ctx, changed_since=started)
    assert report.entered == 1  # the contact changed since; the earlier one is untouched
    with app.reader() as uow:
        assert [e.status for e in uow.enrollments.of_contact(first)] == ["left"]
        assert [e.status for e in uow.enrollments.of_contact(second)] == ["active"]
    # A full pass resumes the earlier lead where it left off: at its wait (step 1).
    assert nurture.tick(uow=app.uow, ctx=app.ctx).entered == 1
    with app.reader() as uow:
        [resumed] = uow.enrollments.of_contact(first)
    assert (resumed.status, resumed.step, resumed.next_at) == ("active", 2,
                                                               clock.now() + 4 * DAY)


def test_held_email_does_not_go_once_the_contact_left_the_audience(
        app: App, postage: Postage, smtp: tuple[Controller, Inbox]) -> None:
    _, inbox = smtp
    items = library(app)
    create_user(uow=app.uow(), ctx=app.ctx, email="rob@acme.example", name="Doe, John",
                role="sales_rep")
    c = good_fit_contact(app, email="moved@bigco.example")
    assert c.id is not None
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="form_submitted",
                                                           contact_id=c.id))
    with app.uow() as uow:  # queued for the lead (its track already done), then held
        for key, track in (("funnel-basics", "lead_discovery"), ("crm-comparison", None)):
            queue_mail(uow, contact_id=c.id, category=MARKETING, template="content",
                       dedupe_key=f"held:{key}", priority=30, at=app.clock.now(),
                       item=items[key], track_key=track)
        uow.commit()
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="demo_request",
                                                           contact_id=c.id))
    report = send(app, postage)
    assert report.reasons == {"no longer in the audience of track lead_discovery": 1}
    assert report.sent == 1  # evaluation content still fits a prospect
    # A sales track's email goes out in the owner's name, even one with a comma in it.
    with app.uow() as uow:
        queue_mail(uow, contact_id=c.id, category=MARKETING, template="content",
                   dedupe_key="owner", priority=40, at=app.clock.now(),
                   item=items["pricing"], track_key="prospect_decision",
                   sender_id=uow.contacts.get(c.id).owner_id)  # type: ignore[union-attr]
        uow.commit()
    assert send(app, postage).sent == 1
    last = inbox.to("moved@bigco.example")[-1]
    assert last["From"].addresses[0].display_name == "Doe, John"
    assert last["From"].addresses[0].addr_spec == "hello@acme.example"


def test_an_email_interrupted_while_sending_counts_against_the_cap(app: App) -> None:
    """A worker that stopped while sending may have handed the email over: it is failed, never
    sent again — and counted against the frequency cap as if it went out."""
    from leadflow.services.mail_sending import SendReport, claim_due
    library(app)
    cid = lead(app, "maybe@example.com")
    clock: FakeClock = app.clock  # type: ignore[assignment]
    with app.uow() as uow:
        queue_mail(uow, contact_id=cid, category=MARKETING, template="content",
                   dedupe_key="maybe", priority=5, at=clock.now())
        uow.commit()
    with app.uow() as uow:
        claimed, _ = claim_due(uow=uow, ctx=app.ctx, batch_size=10, report=SendReport())
        assert uow.mail.start_sending([m.id for m in claimed if m.id is not None])
        uow.commit()
    since = clock.now() - 86400
    clock.advance(3601)
    assert sweep_interrupted(uow=app.uow, ctx=app.ctx) == 1
    with app.uow() as uow:
        assert [r.status for r in rows(app, cid)] == ["failed"]
        assert len(uow.mail.capped_sent_at(cid, since, [MARKETING])) == 1
