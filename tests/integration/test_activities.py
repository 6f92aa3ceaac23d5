"""Activities, personal email over a real SMTP server (aiosmtpd on loopback) and inbound
email, on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from leadflow.adapters.db import tables as t
from leadflow.adapters.mail.senders import FileMailer, SmtpMailer
from leadflow.bootstrap import App
from leadflow.domain.errors import InvalidInput, MoveNotAllowed, NotFound, Unavailable
from leadflow.domain.users import Principal
from leadflow.services.activities import (
    ActivityIn,
    log_activity,
    log_inbound_email,
    send_personal_email,
)
from leadflow.services.contact_view import contact_view
from leadflow.services.users import create_user, principal_of
from tests.conftest import good_fit_contact


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    with socket.socket() as probe:  # aiosmtpd checks readiness by connecting: no port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, inbox
    controller.stop()


def engagement(app: App, contact_id: int) -> float:
    view = contact_view(uow=app.uow(), ctx=app.ctx, contact_id=contact_id)
    return float(view["engagement"]["score"])


def rob(app: App) -> Principal:
    user = create_user(uow=app.uow(), ctx=app.ctx, email="rob@sales.example", name="Rob Sales",
                       role="sales_rep")
    return principal_of(user, scope="write")


def test_an_answered_call_scores_and_an_unanswered_one_does_not(app: App) -> None:
    who = rob(app)
    c = good_fit_contact(app)
    assert c.id is not None
    before = engagement(app, c.id)
    log_activity(uow=app.uow(), ctx=app.ctx, contact_id=c.id, principal=who,
                 data=ActivityIn(kind="call", outcome="no_answer"))
    assert engagement(app, c.id) == before
    log_activity(uow=app.uow(), ctx=app.ctx, contact_id=c.id, principal=who,
                 data=ActivityIn(kind="call", outcome="reached", body="wants a quote"))
    assert engagement(app, c.id) == before + 10
    timeline = contact_view(uow=app.uow(), ctx=app.ctx, contact_id=c.id)["timeline"]
    calls = [e for e in timeline if e["kind"] == "activity"]
    assert [e["outcome"] for e in calls] == ["reached", "no_answer"]
    with pytest.raises(InvalidInput, match="kind is one of"):
        log_activity(uow=app.uow(), ctx=app.ctx, contact_id=c.id, principal=who,
                     data=ActivityIn(kind="telepathy"))


def test_a_personal_email_goes_out_over_smtp_and_is_on_the_timeline(
        app: App, smtp: tuple[Controller, Inbox]) -> None:
    controller, inbox = smtp
    mailer = SmtpMailer(host="127.0.0.1", port=controller.port, username=None, password=None,
                        starttls=False)
    who = rob(app)
    c = good_fit_contact(app)
    assert c.id is not None
    sent = send_personal_email(uow=app.uow(), ctx=app.ctx, mailer=mailer, contact_id=c.id,
                               subject="Your trial", text="Hello Ann <3", principal=who,
                               inbound_address="log@inbound.example")
    [(sender, recipients, raw)] = inbox.messages
    assert sender == "rob@sales.example"
    assert sorted(recipients) == ["ann@example.com", "log@inbound.example"]
    message = message_from_bytes(raw, policy=default_policy)
    assert message["Reply-To"] == "rob@sales.example"
    assert message["Message-ID"] == sent.message_id
    assert "Bcc" not in message  # the BCC is an envelope recipient, not a header
    with app.engine.connect() as conn:
        [row] = conn.execute(select(t.activities)).all()
    assert (row.kind, row.direction, row.subject) == ("email", "outbound", "Your trial")


def test_a_failed_send_logs_nothing(app: App) -> None:
    dead = SmtpMailer(host="127.0.0.1", port=9, username=None, password=None, starttls=False,
                      timeout=2)
    who = rob(app)
    c = good_fit_contact(app)
    assert c.id is not None
    with pytest.raises(Unavailable, match="cannot send email"):
        send_personal_email(uow=app.uow(), ctx=app.ctx, mailer=dead, contact_id=c.id,
                            subject="Hi", text="Hello", principal=who)
    with app.engine.connect() as conn:
        assert conn.execute(select(t.activities)).all() == []


def test_no_personal_email_to_someone_who_opted_out(app: App, tmp_path: Any) -> None:
    who = rob(app)
    c = good_fit_contact(app, consent={"email": False})
    assert c.id is not None
    with pytest.raises(MoveNotAllowed, match="does not want email"):
        send_personal_email(uow=app.uow(), ctx=app.ctx, mailer=FileMailer(tmp_path / "out"),
                            contact_id=c.id, subject="Hi", text="Hello", principal=who)
    assert not (tmp_path / "out").exists()


REPLY = b"""From: Ann Example <Ann@Example.com>
To: rob@sales.example
Subject: Re: Your trial
Message-ID: <reply-1@example.com>
Date: Mon, 02 Mar 2026 08:30:00 +0000

Sounds good, call me tomorrow.
"""

FORWARD = b"""From: Rob Sales <rob@sales.example>
To: log@inbound.example
Subject: Fwd: pricing
Message-ID: <fwd-1@sales.example>

---------- Forwarded message ---------
From: Ann Example <ann@example.com>
Subject: pricing

What would 50 seats cost?
"""


def test_an_inbound_reply_is_logged_once_and_scores(app: App) -> None:
    rob(app)
    c = good_fit_contact(app)
    assert c.id is not None
    before = engagement(app, c.id)
    first = log_inbound_email(uow=app.uow(), ctx=app.ctx, raw=REPLY)
    assert first.activity is not None
    assert (first.activity.contact_id, first.activity.direction) == (c.id, "inbound")
    assert "call me tomorrow" in (first.activity.body or "")
    assert engagement(app, c.id) == pytest.approx(before + 15, abs=0.01)
    assert log_inbound_email(uow=app.uow(), ctx=app.ctx, raw=REPLY).duplicate
    forwarded = log_inbound_email(uow=app.uow(), ctx=app.ctx, raw=FORWARD)
    assert forwarded.activity is not None
    assert (forwarded.activity.contact_id, forwarded.activity.direction,
            forwarded.activity.created_by) == (c.id, "inbound", "user:rob@sales.example")
    with pytest.raises(NotFound, match="no contact with email"):
        log_inbound_email(uow=app.uow(), ctx=app.ctx,
                          raw=REPLY.replace(b"Ann@Example.com", b"nobody@else.example")
                          .replace(b"reply-1", b"reply-2"))
