"""Hand-off to sales: a contact entering a hand-off stage gets an owner (account owner,
territory, weighted round robin) and a follow-up task due within the SLA of its temperature,
in the transaction that moved it. Every assignment is on the contact's timeline."""

from __future__ import annotations

from leadflow.domain.assignment import Assignment, Rep, choose_owner
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.model import Contact
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.sales import FOLLOW_UP, SALES_STAGE_ROLES, Task
from leadflow.domain.users import SALES_ROLES, User
from leadflow.domain.webhooks import CONTACT_ASSIGNED

HANDOFF = "handoff"


def _reps(users: list[User], at: float) -> list[Rep]:
    return [Rep(id=u.id, weight=u.weight, available=u.takes_prospects(at),
                territories=u.territories, assigned=u.assigned, name=u.name)
            for u in users if u.role in SALES_ROLES]


def follow_up_title(contact: Contact) -> str:
    return f"Follow up {contact.display_name}"[:300]


def open_follow_up(uow: UnitOfWork, config: LifecycleConfig, contact: Contact, *,
                   at: float, actor: str) -> Task:
    """A follow-up task for the owner, due within the SLA of the contact's temperature."""
    assert contact.id is not None
    assert contact.owner_id is not None
    due = config.sales.follow_up_due(at, contact.temperature)
    return uow.tasks.add(contact_id=contact.id, owner_id=contact.owner_id, kind=FOLLOW_UP,
                         title=follow_up_title(contact), due_at=due, at=at, by=actor)


def announce(uow: UnitOfWork, contact: Contact, owner: User, task: Task | None, *,
              at: float, rule: str, reason: str) -> None:
    uow.outbox.add(topic=CONTACT_ASSIGNED, contact_id=contact.id, at=at, payload={
        "contact": {"id": contact.id, "stage": contact.stage, "temperature": contact.temperature},
        "owner": {"id": owner.id, "email": owner.email, "name": owner.name},
        "rule": rule, "reason": reason,
        "task": None if task is None else {"id": task.id, "due_at": task.due_at}, "at": at})


def hand_off(uow: UnitOfWork, config: LifecycleConfig, contact: Contact, *, at: float,
             actor: str, note_unassigned: bool = True) -> Assignment | None:
    """Give an unowned contact in a hand-off stage its owner and first follow-up task.
    The caller saves the contact. None when no rep can take it (it stays unassigned, which
    the managers' list shows)."""
    assert contact.id is not None
    users = uow.users.all()
    account = uow.accounts.get(contact.account_id) if contact.account_id else None
    choice = choose_owner(_reps(users, at), country=contact.country or (
        account.country if account else None), region=contact.region,
        account_owner_id=account.owner_id if account else None)
    if choice is None:  # nobody at all can take it: no active rep in the office
        if note_unassigned:
            uow.history.add_audit(contact.id, at, actor, "unassigned",
                                  {"reason": "no sales rep is available"})
        return None
    owner = next(u for u in users if u.id == choice.rep_id)
    contact.owner_id = owner.id
    if choice.counted:
        uow.users.count_assigned(owner.id)
    task = open_follow_up(uow, config, contact, at=at, actor=actor)
    uow.history.add_audit(contact.id, at, actor, "assigned", {
        "owner_id": owner.id, "owner": owner.email, "rule": choice.rule,
        "reason": choice.reason, "temperature": contact.temperature,
        "follow_up_task_id": task.id, "follow_up_due_at": task.due_at})
    announce(uow, contact, owner, task, at=at, rule=choice.rule, reason=choice.reason)
    return choice


def hand_off_if_needed(uow: UnitOfWork, config: LifecycleConfig, contact: Contact, *,
                       at: float, actor: str) -> None:
    """A contact in a hand-off or commit stage has an owner and an open task: give it what
    it lacks (a deal opened on a lead that no one owned goes to sales too)."""
    if config.role_of(contact.stage) not in SALES_STAGE_ROLES:
        return
    if contact.owner_id is None:
        hand_off(uow, config, contact, at=at, actor=actor)
    elif contact.id is not None and not uow.tasks.open_for(contact.id):
        open_follow_up(uow, config, contact, at=at, actor=actor)
