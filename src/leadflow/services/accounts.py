"""Accounts: create, show, change. A change refits every contact of the account."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from leadflow.domain.errors import Conflict, NotFound
from leadflow.domain.model import Account
from leadflow.domain.ports import UnitOfWork
from leadflow.services.contacts import AccountIn, refit_colleagues, upsert_account
from leadflow.services.context import Context


def create_account(*, uow: UnitOfWork, ctx: Context, data: AccountIn) -> Account:
    """Create an account (or update the one with the same domain)."""
    with uow:
        account = upsert_account(uow=uow, data=data, now=ctx.clock.now())
        uow.commit()
    return account


def get_account(*, uow: UnitOfWork, account_id: int) -> Account:
    with uow:
        account = uow.accounts.get(account_id)
    if account is None:
        raise NotFound(f"no account with id {account_id}", field="account_id")
    return account


def update_account(*, uow: UnitOfWork, ctx: Context, account_id: int,
                   changes: dict[str, Any], actor: str = "user") -> Account:
    """Change an account's fields; its contacts' fit and stage rules follow."""
    with uow:
        account = uow.accounts.get(account_id)
        if account is None:
            raise NotFound(f"no account with id {account_id}", field="account_id")
        merged = {k: v for k, v in asdict(account).items()
                  if k in AccountIn.__dataclass_fields__}
        attributes = changes.pop("attributes", None) or {}
        merged.update({k: v for k, v in changes.items() if v is not None})
        merged["attributes"] = attributes
        domain = merged.get("domain")
        if domain and domain.lower() != (account.domain or ""):
            other = uow.accounts.get_by_domain(domain.lower())
            if other is not None and other.id != account_id:
                raise Conflict(f"account {other.id} has the domain {domain.lower()}",
                               field="domain")
            account.domain = domain.lower()
        # upsert_account finds this account again by its domain, or else by id and name.
        if isinstance(merged.get("name"), str) and merged["name"].strip():
            account.name = merged["name"].strip()
        uow.accounts.save(account)
        updated = upsert_account(uow=uow, data=AccountIn(**merged), now=ctx.clock.now(),
                                 current=account_id)
        assert updated.id is not None
        refit_colleagues(uow=uow, ctx=ctx, account_id=updated.id, except_id=0, actor=actor)
        uow.commit()
    return updated
