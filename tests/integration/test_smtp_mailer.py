"""SmtpMailer against a real aiosmtpd server: connections are kept and reused, one a server
dropped is replaced, a refused recipient is undeliverable, and no socket is left open. And
sending in batches: what went is recorded as sent even when the batch breaks off."""

from __future__ import annotations

import gc
import socket
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from leadflow.adapters.db import tables as t
from leadflow.adapters.mail.senders import SmtpMailer
from leadflow.adapters.mail.templates import JinjaRenderer
from leadflow.bootstrap import App
from leadflow.domain.content import ContentItem
from leadflow.domain.errors import Unavailable, Undeliverable
from leadflow.domain.mail_policy import TRANSACTIONAL
from leadflow.domain.ports import OutgoingMail
from leadflow.services import mail_sending
from leadflow.services.mail_queue import queue_mail
from tests.conftest import FakeClock, good_fit_contact


class Inbox:
    """Keeps who each message went to and over which connection (the client's port)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, tuple[str, int]]] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for to in envelope.rcpt_tos:
            self.messages.append((to, session.peer))
        return "250 OK"

    @property
    def connections(self) -> set[tuple[str, int]]:
        return {peer for _, peer in self.messages}


def free_port() -> int:
    with socket.socket() as probe:  # aiosmtpd checks readiness by connecting: no port 0
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def mailer_for(port: int) -> SmtpMailer:
    return SmtpMailer(host="127.0.0.1", port=port, username=None, password=None,
                      starttls=False, timeout=5)


def mail(to: str, n: int = 0) -> OutgoingMail:
    return OutgoingMail(sender="Acme <hello@acme.example>", to=to, subject=f"Hello {n}",
                        text="Hello there", html="<p>Hello there</p>",
                        message_id=f"<m{n}.{to}@leadflow>")


def test_one_connection_carries_message_after_message(
        server: tuple[Controller, Inbox]) -> None:
    controller, inbox = server
    with mailer_for(controller.port) as mailer:
        for n in range(5):
            mailer.send(mail("ann@example.com", n))
    assert len(inbox.messages) == 5
    assert len(inbox.connections) == 1


def test_threads_sending_at_once_never_share_a_connection(
        server: tuple[Controller, Inbox]) -> None:
    controller, inbox = server
    errors: list[BaseException] = []
    start = threading.Barrier(3)
    with mailer_for(controller.port) as mailer:

        def worker(i: int) -> None:
            try:
                start.wait()
                for n in range(20):
                    mailer.send(mail(f"t{i}@example.com", n))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
    assert not errors, errors
    assert len(inbox.messages) == 60
    assert len(inbox.connections) <= 3
    # Every message arrived whole, once: each connection carried one thread's at a time.
    assert sorted(to for to, _ in inbox.messages) == sorted(
        f"t{i}@example.com" for i in range(3) for _ in range(20))


def test_a_connection_the_server_dropped_is_opened_again() -> None:
    first, port = Inbox(), free_port()
    controller = Controller(first, hostname="127.0.0.1", port=port)
    controller.start()
    with mailer_for(port) as mailer:
        try:
            mailer.send(mail("ann@example.com", 1))
        finally:
            controller.stop()  # closes the connection the mailer keeps
        second = Inbox()
        restarted = Controller(second, hostname="127.0.0.1", port=port)
        restarted.start()
        try:
            mailer.send(mail("ann@example.com", 2))
            mailer.send(mail("ann@example.com", 3))
        finally:
            restarted.stop()
        # No server at all: one new connection is tried, then the mailer gives up.
        with pytest.raises(Unavailable, match="cannot send email"):
            mailer.send(mail("ann@example.com", 4))
    assert [to for to, _ in first.messages] == ["ann@example.com"]
    assert [to for to, _ in second.messages] == ["ann@example.com"] * 2
    assert len(second.connections) == 1


def test_a_refused_recipient_is_undeliverable_and_the_connection_stays_good(
        server: tuple[Controller, Inbox]) -> None:
    controller, inbox = server
    inbox.refuse = {"gone@example.com": "550 5.1.1 no such mailbox",
                    "full@example.com": "452 4.2.2 mailbox full"}
    with mailer_for(controller.port) as mailer:
        mailer.send(mail("ann@example.com", 1))
        with pytest.raises(Undeliverable, match="refused the recipient: 550"):
            mailer.send(mail("gone@example.com", 2))
        with pytest.raises(Unavailable, match="deferred the recipient"):
            mailer.send(mail("full@example.com", 3))
        mailer.send(mail("bob@example.com", 4))
    assert [to for to, _ in inbox.messages] == ["ann@example.com", "bob@example.com"]
    assert len(inbox.connections) == 1


def test_a_mailer_nobody_closed_leaves_no_socket_open(
        server: tuple[Controller, Inbox]) -> None:
    controller, inbox = server
    mailer = mailer_for(controller.port)
    mailer.send(mail("ann@example.com"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del mailer
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert len(inbox.messages) == 1


class BreaksOff:
    """Sends through ``mailer`` until the ``n``th message, where it raises ``error``."""

    def __init__(self, mailer: SmtpMailer, n: int, error: BaseException) -> None:
        self.mailer, self.n, self.calls, self.error = mailer, n, 0, error

    def send(self, mail: OutgoingMail) -> None:
        self.calls += 1
        if self.calls == self.n:
            raise self.error
        self.mailer.send(mail)

    def forget(self, message_ids: Any) -> None:
        del message_ids


def six_asset_emails(app: App) -> None:
    with app.uow() as uow:
        item = uow.content.add(ContentItem(key="guide", title="A guide", url="/guide",
                                           maturity="discovery", format="article"),
                               app.clock.now())
        uow.commit()
    for i in range(6):
        c = good_fit_contact(app, email=f"c{i}@example.com")
        assert c.id is not None
        with app.uow() as uow:
            queue_mail(uow, contact_id=c.id, category=TRANSACTIONAL, template="asset",
                       dedupe_key=f"k{i}", priority=100 - i, at=app.clock.now(), item=item,
                       form_key="f")
            uow.commit()


def statuses(app: App) -> list[Any]:
    with app.engine.connect() as conn:
        return list(conn.execute(select(t.mail_messages.c.dedupe_key, t.mail_messages.c.status,
                                        t.mail_messages.c.sent_at, t.mail_messages.c.subject)
                                 .order_by(t.mail_messages.c.dedupe_key)))


def test_a_bug_on_one_message_queues_it_again_and_the_batch_goes_on(
        app: App, server: tuple[Controller, Inbox], monkeypatch: pytest.MonkeyPatch) -> None:
    controller, inbox = server
    monkeypatch.setattr(mail_sending, "RECORD_EVERY", 2)
    six_asset_emails(app)
    with mailer_for(controller.port) as smtp:
        postage = mail_sending.Postage(mailer=BreaksOff(smtp, 4, RuntimeError("a bug")),
                                       renderer=JinjaRenderer(), links=app.links,
                                       sender="Acme <hello@acme.example>", company="Acme")
        report = mail_sending.send_due(uow=app.uow, ctx=app.ctx, postage=postage)
    assert (report.sent, report.retried) == (5, 1)
    assert [r.status for r in statuses(app)] == ["sent"] * 3 + ["queued"] + ["sent"] * 2
    assert len(inbox.messages) == 5


def test_what_went_is_recorded_sent_when_a_worker_dies_mid_batch(
        app: App, server: tuple[Controller, Inbox], monkeypatch: pytest.MonkeyPatch) -> None:
    controller, inbox = server
    monkeypatch.setattr(mail_sending, "RECORD_EVERY", 2)
    six_asset_emails(app)
    with mailer_for(controller.port) as smtp:
        postage = mail_sending.Postage(mailer=BreaksOff(smtp, 4, SystemExit(1)),
                                       renderer=JinjaRenderer(), links=app.links,
                                       sender="Acme <hello@acme.example>", company="Acme")
        with pytest.raises(SystemExit):
            mail_sending.send_due(uow=app.uow, ctx=app.ctx, postage=postage)
    rows = statuses(app)
    # Three went (recorded two, then one as the batch broke off); the fourth was handed to
    # the mailer (it may have gone); the last two were only claimed.
    assert [r.status for r in rows] == ["sent"] * 3 + ["sending"] + ["claimed"] * 2
    assert all(r.sent_at is not None and r.subject for r in rows[:3])
    assert sorted(to for to, _ in inbox.messages) == [f"c{i}@example.com" for i in range(3)]
    clock: FakeClock = app.clock  # type: ignore[assignment]
    clock.advance(mail_sending.INTERRUPTED_AFTER + 1)
    assert mail_sending.sweep_interrupted(uow=app.uow, ctx=app.ctx) == 3
    assert [r.status for r in statuses(app)] == ["sent"] * 3 + ["failed"] + ["queued"] * 2
    with mailer_for(controller.port) as smtp:
        postage = mail_sending.Postage(mailer=smtp, renderer=JinjaRenderer(), links=app.links,
                                       sender="Acme <hello@acme.example>", company="Acme")
        assert mail_sending.send_due(uow=app.uow, ctx=app.ctx, postage=postage).sent == 2
    assert len(inbox.messages) == 5  # the one that may have gone is not sent twice
