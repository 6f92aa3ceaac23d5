"""Follow-up: tasks on a contact, the cadence that keeps one open for every owned prospect,
the SLA sweep (reminders before due, escalation when overdue, recycling after a long breach
when the policy is configured), and the rep's answer to a hand-off: accept or reject."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from leadflow.domain.errors import InvalidInput, MoveNotAllowed
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.sales import FOLLOW_UP, TASK_KINDS, Task
from leadflow.domain.users import Principal
from leadflow.domain.webhooks import (
    MILESTONE_REACHED,
    TASK_DUE_SOON,
    TASK_OVERDUE,
    milestone_payload,
)
from leadflow.services import moves
from leadflow.services.common import load_contact
from leadflow.services.context import Context
from leadflow.services.handoff import HANDOFF, follow_up_title

OWNED_ROLES = (HANDOFF, "commit")
SAL = "sal"
SWEEP_BATCH = 500
BREACH_POLICY = "policy:sla_breach"


def _title(value: str | None, default: str) -> str:
    title = (value or "").strip() or default
    if len(title) > 300:
        raise InvalidInput("at most 300 characters", field="title")
    return title


def create_task(*, uow: UnitOfWork, ctx: Context, contact_id: int, kind: str,
                title: str | None, due_at: float | None, actor: str,
                owner_id: int | None = None) -> Task:
    """A task on a contact for its owner (or the given sales user), due at ``due_at``
    (default: the cadence from now, in working time)."""
    if kind not in TASK_KINDS:
        raise InvalidInput(f"kind is one of {', '.join(TASK_KINDS)}", field="kind")
    now = ctx.clock.now()
    with uow:
        contact = load_contact(uow, contact_id)
        owner = owner_id or contact.owner_id
        if owner is None:
            raise InvalidInput("this contact has no owner: name the task's owner",
                               field="owner_id")
        user = uow.users.get(owner)
        if user is None or not user.active:
            raise InvalidInput(f"no active user {owner}", field="owner_id")
        sales = ctx.config.sales
        due = due_at if due_at is not None else sales.calendar.add(
            now, sales.cadence.seconds(sales.calendar))
        task = uow.tasks.add(contact_id=contact_id, owner_id=owner, kind=kind,
                             title=_title(title, follow_up_title(contact)), due_at=due, at=now,
                             by=actor)
        uow.history.add_audit(contact_id, now, actor, "task_created",
                              {"task_id": task.id, "kind": kind, "due_at": due})
        uow.commit()
    return task


def complete_task(*, uow: UnitOfWork, ctx: Context, task_id: int, outcome: str | None,
                  actor: str, next_due_at: float | None = None,
                  next_title: str | None = None) -> Task | None:
    """Close a task. An owned prospect or opportunity always keeps an open next task: when
    this was its last, the next follow-up is opened (at ``next_due_at``, default the cadence).
    Returns that next task, if one was opened."""
    now = ctx.clock.now()
    with uow:
        task = uow.tasks.get(task_id)
        if task is None:
            raise InvalidInput(f"no task {task_id}", field="task_id")
        if not task.open:
            raise InvalidInput(f"task {task_id} is done already", field="task_id")
        uow.tasks.complete(task_id, at=now, by=actor, outcome=(outcome or "").strip() or None)
        contact = load_contact(uow, task.contact_id)
        uow.history.add_audit(task.contact_id, now, actor, "task_done",
                              {"task_id": task_id, "outcome": outcome})
        follow: Task | None = None
        if contact.owner_id is not None and not uow.tasks.open_for(task.contact_id) and \
                ctx.config.role_of(contact.stage) in OWNED_ROLES:
            sales = ctx.config.sales
            due = next_due_at if next_due_at is not None else sales.calendar.add(
                now, sales.cadence.seconds(sales.calendar))
            follow = uow.tasks.add(contact_id=task.contact_id, owner_id=contact.owner_id,
                                   kind=FOLLOW_UP,
                                   title=_title(next_title, follow_up_title(contact)),
                                   due_at=due, at=now, by=actor)
        uow.commit()
    return follow


def accept(*, uow: UnitOfWork, ctx: Context, contact_id: int, principal: Principal) -> None:
    """The owner takes the prospect: milestone ``sal`` (sales accepted)."""
    now = ctx.clock.now()
    with uow:
        contact = load_contact(uow, contact_id)
        if ctx.config.role_of(contact.stage) not in OWNED_ROLES:
            raise MoveNotAllowed(f"only a prospect or opportunity can be accepted; this "
                                 f"contact is {contact.stage}", field="stage")
        if SAL not in ctx.config.milestone_keys():
            raise MoveNotAllowed("the pipeline has no 'sal' milestone", field="milestone")
        if principal.role == "sales_rep" and contact.owner_id != principal.user_id:
            raise MoveNotAllowed("only its owner accepts a prospect", field="owner")
        if SAL in contact.milestones:
            raise MoveNotAllowed("accepted already", field="milestone")
        contact.milestones[SAL] = now
        contact.updated_at = now
        uow.history.add_milestone(contact_id, SAL, now, principal.name,
                                  ctx.config.config_version)
        uow.outbox.add(topic=MILESTONE_REACHED, contact_id=contact_id,
                       payload=milestone_payload(contact, SAL), at=now)
        uow.contacts.save(contact)
        uow.commit()


def reject(*, uow: UnitOfWork, ctx: Context, contact_id: int, reason: str,
           principal: Principal) -> None:
    """The owner sends the prospect back to marketing, with a reason: it is recycled."""
    why = (reason or "").strip()
    if not why:
        raise InvalidInput("a rejection needs a reason", field="reason")
    with uow:
        contact = load_contact(uow, contact_id)
    if ctx.config.role_of(contact.stage) != HANDOFF:
        raise MoveNotAllowed(f"only a prospect can be rejected; this contact is "
                             f"{contact.stage}", field="stage")
    moves.recycle(uow=uow, ctx=ctx, contact_id=contact_id, reason=f"rejected by sales: {why}",
                  actor=principal.name)


@dataclass
class SweepReport:
    reminded: int = 0
    escalated: int = 0
    recycled: int = 0


def _task_payload(task: Task, now: float) -> dict[str, object]:
    return {"task": {"id": task.id, "kind": task.kind, "title": task.title,
                     "due_at": task.due_at, "owner_id": task.owner_id},
            "contact": {"id": task.contact_id}, "at": now}


def sweep_follow_ups(*, uow_factory: Callable[[], UnitOfWork], ctx: Context) -> SweepReport:
    """Remind owners of tasks coming due, escalate overdue ones to the owner's managers, and
    (when ``sales.recycle_after`` is set) recycle contacts whose follow-up is overdue that
    long. Each task is reminded and escalated once; several sweeps may run at once."""
    report = SweepReport()
    sales = ctx.config.sales
    cal = sales.calendar
    now = ctx.clock.now()
    with uow_factory() as uow:
        for task in uow.tasks.due_for_reminder(now + sales.reminder_before.seconds(cal),
                                               SWEEP_BATCH):
            if uow.tasks.mark_reminded(task.id, now):
                uow.outbox.add(topic=TASK_DUE_SOON, contact_id=task.contact_id,
                               payload=_task_payload(task, now), at=now)
                report.reminded += 1
        escalate = sales.escalate_after.seconds(cal)
        users = {u.id: u for u in uow.users.all()}
        for task in uow.tasks.overdue(now, SWEEP_BATCH):
            if task.escalated_at is not None or cal.add(task.due_at, escalate) > now:
                continue
            if not uow.tasks.mark_escalated(task.id, now):
                continue
            owner = users.get(task.owner_id)
            managers = [u for u in users.values() if u.role == "sales_manager" and u.active
                        and owner is not None and u.team == owner.team and u.id != owner.id]
            payload = _task_payload(task, now)
            payload["managers"] = [{"id": m.id, "email": m.email} for m in managers]
            uow.outbox.add(topic=TASK_OVERDUE, contact_id=task.contact_id, payload=payload,
                           at=now)
            uow.history.add_audit(task.contact_id, now, "policy:sla", "escalated", {
                "task_id": task.id, "due_at": task.due_at,
                "managers": [m.email for m in managers]})
            report.escalated += 1
        uow.commit()
    if sales.recycle_after is not None:
        report.recycled = _recycle_breaches(uow_factory=uow_factory, ctx=ctx, now=now)
    return report


def _recycle_breaches(*, uow_factory: Callable[[], UnitOfWork], ctx: Context,
                      now: float) -> int:
    sales = ctx.config.sales
    assert sales.recycle_after is not None
    breach = sales.recycle_after.seconds(sales.calendar)
    with uow_factory() as uow:
        late = [t for t in uow.tasks.overdue(now, SWEEP_BATCH)
                if t.kind == FOLLOW_UP and sales.calendar.add(t.due_at, breach) <= now]
        contacts = {c.id: c for c in uow.contacts.get_many(sorted({t.contact_id for t in late}))}
    recycled = 0
    for contact_id, contact in contacts.items():
        assert contact_id is not None
        if ctx.config.role_of(contact.stage) != HANDOFF:
            continue
        moves.recycle(uow=uow_factory(), ctx=ctx, contact_id=contact_id,
                      reason=f"follow-up overdue by more than {sales.recycle_after} "
                             "of working time", actor=BREACH_POLICY)
        recycled += 1
    return recycled
