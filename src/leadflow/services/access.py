"""Who may reach which record: every route and command that names a contact, an account, a
task or an opportunity asks here first. A rep reaches what they own, a manager their team's,
admins and marketers everything."""

from __future__ import annotations

from leadflow.domain.errors import Forbidden, NotFound
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.sales import Opportunity, Task
from leadflow.domain.users import Principal
from leadflow.services.common import load_contact
from leadflow.services.contacts import AccountIn


def _refuse(principal: Principal, what: str) -> Forbidden:
    owner = "your team" if principal.role == "sales_manager" else "you"
    return Forbidden(f"{what} is not owned by {owner}", field="authorization")


def ensure_contact_access(*, uow: UnitOfWork, principal: Principal, contact_id: int) -> None:
    if principal.sees_all:
        return
    with uow:
        contact = load_contact(uow, contact_id)
    if not principal.sees_owner(contact.owner_id):
        raise _refuse(principal, f"contact {contact_id}")


def ensure_account_access(*, uow: UnitOfWork, principal: Principal, account_id: int,
                          write: bool = False) -> None:
    """An account is readable by its owner's side and by whoever owns one of its contacts;
    a sales user changes it only when it is their side's, or every contact in it is (a
    change refits every contact of the account)."""
    with uow:
        account = uow.accounts.get(account_id)
        if account is None:
            raise NotFound(f"no account {account_id}", field="account_id")
        if principal.sees_all or principal.sees_owner(account.owner_id):
            return
        owners = {c.owner_id for c in uow.contacts.get_many(uow.accounts.contact_ids(account_id))}
    allowed = all if write else any
    if not owners or not allowed(principal.sees_owner(o) for o in owners):
        raise _refuse(principal, f"account {account_id}")


def ensure_account_body(*, uow: UnitOfWork, principal: Principal,
                        data: AccountIn | None) -> None:
    """An account in a contact's body is created or updated along with it: a sales user may
    name an existing account only when they may change it."""
    if data is None or principal.sees_all:
        return
    with uow:
        domain = (data.domain or "").strip().lower() or None
        found = uow.accounts.get_by_domain(domain) if domain else \
            uow.accounts.get_by_name((data.name or "").strip())
    if found is not None and found.id is not None:
        ensure_account_access(uow=uow, principal=principal, account_id=found.id, write=True)


def visible_task(*, uow: UnitOfWork, principal: Principal, task_id: int) -> Task:
    with uow:
        task = uow.tasks.get(task_id)
    if task is None:
        raise NotFound(f"no task {task_id}", field="task_id")
    if not principal.sees_owner(task.owner_id):
        raise _refuse(principal, f"task {task_id}")
    return task


def visible_opportunity(*, uow: UnitOfWork, principal: Principal,
                        opportunity_id: int) -> Opportunity:
    with uow:
        opportunity = uow.opportunities.get(opportunity_id)
        owner = None
        if opportunity is not None:
            contact = uow.contacts.get(opportunity.contact_id)
            owner = contact.owner_id if contact is not None else None
    if opportunity is None:
        raise NotFound(f"no opportunity {opportunity_id}", field="opportunity_id")
    if not (principal.sees_owner(opportunity.owner_id) or principal.sees_owner(owner)):
        raise _refuse(principal, f"opportunity {opportunity_id}")
    return opportunity
