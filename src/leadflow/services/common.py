"""Helpers shared by the use cases: loading, persisting an outcome, suppression checks."""

from __future__ import annotations

from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import Merged, NotFound, Suppressed
from leadflow.domain.fit import score_fit
from leadflow.domain.identity import suppression_hash
from leadflow.domain.lifecycle import Outcome
from leadflow.domain.model import Contact, StageChange
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.webhooks import outcome_messages, stage_message, temperature_message
from leadflow.services.handoff import hand_off_if_needed


def load_contact(uow: UnitOfWork, contact_id: int) -> Contact:
    contact = uow.contacts.get(contact_id)
    if contact is None:
        survivor = uow.contacts.merged_into(contact_id)
        if survivor is not None:
            raise Merged(contact_id, survivor)
        raise NotFound(f"no contact with id {contact_id}", field="contact_id")
    return contact


def refit(uow: UnitOfWork, contact: Contact, config: LifecycleConfig) -> None:
    account = uow.accounts.get(contact.account_id) if contact.account_id else None
    contact.fit = score_fit(contact, account, config.fit)


def persist_outcome(
    uow: UnitOfWork, contact: Contact, outcome: Outcome, config: LifecycleConfig, *, actor: str,
) -> None:
    """Write the milestones and stage changes an evaluation produced, the webhook messages
    they cause, and the contact."""
    assert contact.id is not None
    for key in outcome.milestones:
        uow.history.add_milestone(contact.id, key, contact.milestones[key], actor,
                                  config.config_version)
    uow.history.add_stage_changes(outcome.stage_changes)
    uow.outbox.add_many(outcome_messages(contact, outcome, at=contact.updated_at))
    if outcome.stage_changes:
        hand_off_if_needed(uow, config, contact, at=contact.updated_at, actor=actor)
    uow.contacts.save(contact)


def record_stage_change(uow: UnitOfWork, contact: Contact, change: StageChange,
                        config: LifecycleConfig) -> None:
    """Store a stage change and, in the same transaction, what it causes: the webhook
    message, and the hand-off to sales when it enters a hand-off stage. The caller saves the
    contact."""
    uow.history.add_stage_change(change)
    uow.outbox.add_many([stage_message(contact, change)])
    hand_off_if_needed(uow, config, contact, at=change.at, actor=change.actor)


def record_temperature_change(uow: UnitOfWork, contact: Contact, *, before: str | None,
                              at: float) -> None:
    uow.outbox.add_many([temperature_message(contact, before, at)])


def ensure_not_suppressed(
    uow: UnitOfWork, *, salt: str, email: str | None = None, user_id: str | None = None,
    anonymous_id: str | None = None,
) -> None:
    hashes = [suppression_hash(kind, value, salt)
              for kind, value in (("email", email), ("user_id", user_id),
                                  ("anonymous_id", anonymous_id)) if value]
    if uow.suppressions.is_suppressed(hashes):
        raise Suppressed("this person asked to be forgotten; their data may not come back")
