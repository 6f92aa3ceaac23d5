"""Emails to the people who work the leads: a reminder that a task comes due, an escalation
of an overdue one to the owner's managers. Written to the outbox with the change that causes
them; the relay hands them to the mail job."""

from __future__ import annotations

from datetime import UTC, datetime

from leadflow.domain.ports import Mailer, OutgoingMail, UnitOfWork
from leadflow.domain.sales import Task
from leadflow.domain.users import User
from leadflow.domain.webhooks import MAIL_NOTIFICATION


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def notify(uow: UnitOfWork, *, to: User, subject: str, text: str, contact_id: int,
           at: float) -> None:
    uow.outbox.add(topic=MAIL_NOTIFICATION, contact_id=contact_id, at=at,
                   payload={"to": to.email, "name": to.name, "subject": subject, "text": text})


def remind(uow: UnitOfWork, task: Task, owner: User, *, at: float) -> None:
    notify(uow, to=owner, contact_id=task.contact_id, at=at,
           subject=f"Due {_when(task.due_at)}: {task.title}",
           text=f"Hello {owner.name},\n\n{task.title} (contact {task.contact_id}) is due "
                f"{_when(task.due_at)}.\n\nleadflow queue --as {owner.email}\n")


def escalate(uow: UnitOfWork, task: Task, owner: User | None, managers: list[User], *,
             at: float) -> None:
    who = owner.name if owner is not None else f"user {task.owner_id}"
    for manager in managers:
        notify(uow, to=manager, contact_id=task.contact_id, at=at,
               subject=f"Overdue: {task.title} ({who})",
               text=f"Hello {manager.name},\n\n{who}'s task \"{task.title}\" on contact "
                    f"{task.contact_id} was due {_when(task.due_at)} and is still open.\n\n"
                    "leadflow cracks\n")


def send_notification(*, uow: UnitOfWork, mailer: Mailer, sender: str, outbox_id: int) -> bool:
    """Send one notification from the outbox; False when it is gone (the contact was
    erased since). Its Message-ID is fixed, so the file outbox keeps one copy on a retry."""
    with uow:
        message = uow.webhooks.payload_of(outbox_id)
    if message is None or message.topic != MAIL_NOTIFICATION:
        return False
    p = message.payload
    mailer.send(OutgoingMail(sender=sender, to=f"{p['name']} <{p['to']}>", subject=p["subject"],
                             text=p["text"], message_id=f"<notification-{outbox_id}@leadflow>"))
    return True
