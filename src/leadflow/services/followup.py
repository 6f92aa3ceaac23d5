"""Follow-up: tasks on a contact, the cadence that keeps one open for every owned prospect,
the SLA sweep (reminders before due, escalation when overdue, recycling after a long breach
when the policy is configured), and the rep's answer to a hand-off: accept or reject."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from leadflow.domain.errors import InvalidInput, LeadflowError, MoveNotAllowed
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.sales import FOLLOW_UP, MAX_TS, SALES_STAGE_ROLES, TASK_KINDS, Task
from leadflow.domain.users import Principal, User
from leadflow.domain.webhooks import (
    MILESTONE_REACHED,
    TASK_DUE_SOON,
    TASK_OVERDUE,
    milestone_payload,
)
from leadflow.services import moves, notifications
from leadflow.services.common import load_contact
from leadflow.services.context import Context
from leadflow.services.handoff import HANDOFF, follow_up_title

log = logging.getLogger("leadflow.followup")
SAL = "sal"
SWEEP_BATCH = 500
BREACH_POLICY = "policy:sla_breach"


def _when(value: float | None, field: str) -> float | None:
    if value is not None and (not math.isfinite(value) or not 0 <= value <= MAX_TS):
        raise InvalidInput("a time between 1970 and 2100 (UTC seconds)", field=field)
    return value


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
    _when(due_at, "due_at")
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
        due = due_at if due_at is not None else ctx.config.sales.cadence_due(now)
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
    _when(next_due_at, "next_due_at")
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
                ctx.config.role_of(contact.stage) in SALES_STAGE_ROLES:
            due = next_due_at if next_due_at is not None else ctx.config.sales.cadence_due(now)
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
        if ctx.config.role_of(contact.stage) not in SALES_STAGE_ROLES:
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


def _late(cal_add: Callable[[float, float], float], due: float, by: float, now: float
          ) -> bool | None:
    """Whether a task due at ``due`` is ``by`` working seconds late; None when its due time
    cannot be placed on the calendar (it is skipped, not allowed to stop the sweep)."""
    try:
        return cal_add(due, by) <= now
    except (LeadflowError, OverflowError, OSError, ValueError):
        log.warning("task due time off the calendar", extra={"due_at": due})
        return None


def sweep_follow_ups(*, uow_factory: Callable[[], UnitOfWork], ctx: Context,
                     batch_size: int = SWEEP_BATCH) -> SweepReport:
    """Remind owners of tasks coming due, escalate overdue ones to the owner's managers, and
    (when ``sales.recycle_after`` is set) recycle contacts whose follow-up is overdue that
    long. Each task is reminded and escalated once; several sweeps may run at once."""
    report = SweepReport()
    sales = ctx.config.sales
    cal = sales.calendar
    now = ctx.clock.now()
    while True:
        with uow_factory() as uow:
            due = uow.tasks.due_for_reminder(now, now + sales.reminder_before.seconds(cal),
                                             batch_size)
            users = {u.id: u for u in uow.users.all()} if due else {}
            for task in due:
                if uow.tasks.mark_reminded(task.id, now):
                    uow.outbox.add(topic=TASK_DUE_SOON, contact_id=task.contact_id,
                                   payload=_task_payload(task, now), at=now)
                    owner = users.get(task.owner_id)
                    if owner is not None and owner.active:
                        notifications.remind(uow, task, owner, at=now)
                    report.reminded += 1
            uow.commit()
        if len(due) < batch_size:
            break
    escalate = sales.escalate_after.seconds(cal)
    skipped: set[int] = set()
    while True:
        with uow_factory() as uow:
            users = {u.id: u for u in uow.users.all()}
            batch = [x for x in uow.tasks.unescalated_overdue(now, batch_size + len(skipped))
                     if x.id not in skipped][:batch_size]
            more = len(batch) == batch_size
            for task in batch:
                late = _late(cal.add, task.due_at, escalate, now)
                if late is None:
                    skipped.add(task.id)
                    continue
                if not late:  # oldest first: the rest are not late enough either
                    more = False
                    break
                if not uow.tasks.mark_escalated(task.id, now):
                    continue
                _escalate(uow, task, users, now)
                report.escalated += 1
            uow.commit()
        if not more:
            break
    if sales.recycle_after is not None:
        report.recycled = _recycle_breaches(uow_factory=uow_factory, ctx=ctx, now=now,
                                            batch_size=batch_size)
    return report


def _escalate(uow: UnitOfWork, task: Task, users: dict[int, User], now: float) -> None:
    owner = users.get(task.owner_id)
    managers = [u for u in users.values() if u.role == "sales_manager" and u.active
                and owner is not None and u.team == owner.team and u.id != owner.id]
    payload = _task_payload(task, now)
    payload["managers"] = [{"id": m.id, "email": m.email} for m in managers]
    uow.outbox.add(topic=TASK_OVERDUE, contact_id=task.contact_id, payload=payload, at=now)
    uow.history.add_audit(task.contact_id, now, "policy:sla", "escalated", {
        "task_id": task.id, "due_at": task.due_at, "managers": [m.email for m in managers]})
    notifications.escalate(uow, task, owner, managers, at=now)


def _recycle_breaches(*, uow_factory: Callable[[], UnitOfWork], ctx: Context,
                      now: float, batch_size: int) -> int:
    sales = ctx.config.sales
    assert sales.recycle_after is not None
    breach = sales.recycle_after.seconds(sales.calendar)
    stages = [s.key for s in ctx.config.stages_with_role(HANDOFF)]
    recycled = 0
    done: set[int] = set()
    while True:
        with uow_factory() as uow:
            batch = [x for x in uow.tasks.overdue_follow_ups(now, stages,
                                                             batch_size + len(done))
                     if x.contact_id not in done][:batch_size]
        breached: list[int] = []
        finished = len(batch) < batch_size
        for task in batch:
            late = _late(sales.calendar.add, task.due_at, breach, now)
            if late is False:
                finished = True
                break
            done.add(task.contact_id)
            if late:
                breached.append(task.contact_id)
        for contact_id in dict.fromkeys(breached):
            try:
                moves.recycle(uow=uow_factory(), ctx=ctx, contact_id=contact_id,
                              reason=f"follow-up overdue by more than {sales.recycle_after} "
                                     "of working time", actor=BREACH_POLICY)
                recycled += 1
            except LeadflowError as exc:  # it moved or was erased meanwhile
                log.info("breach recycle skipped", extra={"contact_id": contact_id,
                                                          "reason": str(exc)})
        if finished or not batch:
            return recycled
