"""Helpers shared by the use cases: loading, persisting an outcome, suppression checks."""

from __future__ import annotations

from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import NotFound, Suppressed
from leadflow.domain.fit import score_fit
from leadflow.domain.identity import suppression_hash
from leadflow.domain.lifecycle import Outcome
from leadflow.domain.model import Contact
from leadflow.domain.ports import UnitOfWork


def load_contact(uow: UnitOfWork, contact_id: int) -> Contact:
    contact = uow.contacts.get(contact_id)
    if contact is None:
        raise NotFound(f"no contact with id {contact_id}", field="contact_id")
    return contact


def refit(uow: UnitOfWork, contact: Contact, config: LifecycleConfig) -> None:
    account = uow.accounts.get(contact.account_id) if contact.account_id else None
    contact.fit = score_fit(contact, account, config.fit)


def persist_outcome(
    uow: UnitOfWork, contact: Contact, outcome: Outcome, config: LifecycleConfig, *, actor: str,
) -> None:
    """Write the milestones and stage changes an evaluation produced, and the contact."""
    assert contact.id is not None
    for key in outcome.milestones:
        uow.history.add_milestone(contact.id, key, contact.milestones[key], actor,
                                  config.config_version)
    for change in outcome.stage_changes:
        uow.history.add_stage_change(change)
    uow.contacts.save(contact)


def ensure_not_suppressed(
    uow: UnitOfWork, *, salt: str, email: str | None = None, user_id: str | None = None,
    anonymous_id: str | None = None,
) -> None:
    hashes = [suppression_hash(kind, value, salt)
              for kind, value in (("email", email), ("user_id", user_id),
                                  ("anonymous_id", anonymous_id)) if value]
    if uow.suppressions.is_suppressed(hashes):
        raise Suppressed("this person asked to be forgotten; their data may not come back")
