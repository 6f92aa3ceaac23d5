"""Use cases on contacts and accounts: create, update, enter a lead by hand."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from leadflow.domain.errors import Conflict, InvalidInput, NotFound
from leadflow.domain.identity import normalize_email
from leadflow.domain.lifecycle import evaluate, first_seen, move
from leadflow.domain.model import ACCOUNT_ROLES, Account, ConsentRecord, Contact, StageChange
from leadflow.domain.ports import UnitOfWork
from leadflow.services.common import (
    ensure_not_suppressed,
    load_contact,
    persist_outcome,
    record_stage_change,
    refit,
)
from leadflow.services.context import Context

CONTACT_FIELDS = ("email", "phone", "first_name", "last_name", "title", "seniority",
                  "account_role", "country", "region", "language", "source")
CONSENT_CHANNELS = ("email", "phone", "sms", "newsletter")


@dataclass
class AccountIn:
    name: str
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    country: str | None = None
    annual_revenue: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class ContactIn:
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    seniority: str | None = None
    account_role: str | None = None
    country: str | None = None
    region: str | None = None
    language: str | None = None
    source: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    account: AccountIn | None = None
    consent: dict[str, bool] = field(default_factory=dict)
    consent_source: str = "manual"
    anonymous_id: str | None = None
    user_id: str | None = None


def _clean_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def normalize_contact_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise contact fields; raise InvalidInput naming the field."""
    out: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in CONTACT_FIELDS:
            raise InvalidInput(f"unknown contact field {name!r}", field=name)
        value = _clean_text(raw)
        if name == "email":
            value = normalize_email(value)
        elif name == "country" and value is not None:
            value = value.upper()
            if len(value) != 2 or not value.isalpha():
                raise InvalidInput(f"expected a 2-letter country code, got {raw!r}",
                                   field="country")
        elif name == "account_role" and value is not None:
            value = value.lower().replace(" ", "_")
            if value not in ACCOUNT_ROLES:
                raise InvalidInput(f"expected one of {', '.join(ACCOUNT_ROLES)}, got {raw!r}",
                                   field="account_role")
        elif name in ("seniority", "source", "language") and value is not None:
            value = value.lower()
        elif name == "phone" and value is not None:
            digits = [c for c in value if c.isdigit()]
            if len(digits) < 5 or any(not (c.isdigit() or c in "+-. ()/") for c in value):
                raise InvalidInput(f"not a valid phone number: {raw!r}", field="phone")
        if value is not None and len(value) > FIELD_LIMITS.get(name, 320):
            raise InvalidInput(f"longer than {FIELD_LIMITS.get(name, 320)} characters",
                               field=name)
        out[name] = value
    return out


FIELD_LIMITS = {"phone": 50, "first_name": 200, "last_name": 200, "title": 200,
                "seniority": 50, "region": 100, "language": 10, "source": 100}
ACCOUNT_LIMITS = {"name": 300, "domain": 300, "industry": 100}


def upsert_account(*, uow: UnitOfWork, data: AccountIn, now: float,
                   current: int | None = None) -> Account:
    """Find the account (by domain; without one, the contact's ``current`` account or the
    account of that name) or create it, and update what the input says."""
    name = _clean_text(data.name)
    if not name:
        raise InvalidInput("an account needs a name", field="account.name")
    domain = _clean_text(data.domain)
    domain = domain.lower() if domain else None
    if data.employees is not None and (not isinstance(data.employees, int)
                                       or isinstance(data.employees, bool)
                                       or not 0 <= data.employees <= 2**31 - 1):
        raise InvalidInput("expected a whole number of employees", field="account.employees")
    if domain:
        account = uow.accounts.get_by_domain(domain)
    else:
        account = uow.accounts.get(current) if current is not None else None
        if account is None or account.name.lower() != name.lower():
            account = uow.accounts.get_by_name(name)
    industry = _clean_text(data.industry)
    country = (_clean_text(data.country) or "").upper() or None
    for key, text in (("name", name), ("domain", domain), ("industry", industry)):
        if text is not None and len(text) > ACCOUNT_LIMITS[key]:
            raise InvalidInput(f"longer than {ACCOUNT_LIMITS[key]} characters",
                               field=f"account.{key}")
    if country is not None and (len(country) != 2 or not country.isalpha()):
        raise InvalidInput(f"expected a 2-letter country code, got {data.country!r}",
                           field="account.country")
    if data.annual_revenue is not None and (isinstance(data.annual_revenue, bool) or not
                                            isinstance(data.annual_revenue, int | float)):
        raise InvalidInput("expected a number", field="account.annual_revenue")
    if account is None:
        account = Account(id=None, name=name, domain=domain, industry=industry,
                          employees=data.employees, country=country,
                          annual_revenue=data.annual_revenue,
                          attributes=dict(data.attributes), created_at=now, updated_at=now)
        uow.accounts.add(account)
        return account
    values: dict[str, Any] = {
        "name": name, "domain": domain, "industry": industry, "employees": data.employees,
        "country": country, "annual_revenue": data.annual_revenue,
    }
    for key, value in values.items():
        if value is not None:
            setattr(account, key, value)
    account.attributes.update(data.attributes)
    account.updated_at = now
    uow.accounts.save(account)
    return account


def email_owner(uow: UnitOfWork, email: str) -> int | None:
    """The contact an email stands for: the one holding it, or else the one it identified
    before (a contact keeps the emails it had, so events sent with them still find it)."""
    holder = uow.contacts.get_by_email(email)
    if holder is not None:
        return holder.id
    return uow.contacts.find_by_identity("email", email)


def _consent(data: ContactIn, now: float) -> dict[str, ConsentRecord]:
    out = {}
    for channel, granted in data.consent.items():
        if channel not in CONSENT_CHANNELS:
            raise InvalidInput(f"unknown consent channel {channel!r}", field=f"consent.{channel}")
        out[channel] = ConsentRecord(channel=channel, granted=bool(granted),
                                     source=data.consent_source, at=now)
    return out


def new_contact(
    *, uow: UnitOfWork, ctx: Context, data: ContactIn, actor: str, stage: str | None = None,
    reason: str | None = None, at: float | None = None, owner_id: int | None = None,
) -> tuple[Contact, list[StageChange]]:
    """Insert a contact at the entry stage (or move it straight to ``stage``), unevaluated;
    owned by ``owner_id`` (a sales user who entered it) when given."""
    now = ctx.clock.now()
    at = now if at is None else at
    values = normalize_contact_fields({k: getattr(data, k) for k in CONTACT_FIELDS})
    ensure_not_suppressed(uow, salt=ctx.suppression_salt, email=values.get("email"),
                          user_id=data.user_id, anonymous_id=data.anonymous_id)
    if values.get("email") and email_owner(uow, values["email"]) is not None:
        raise Conflict(f"a contact with email {values['email']} already exists", field="email")
    account = upsert_account(uow=uow, data=data.account, now=now) if data.account else None
    entry = ctx.config.first_stage("entry").key
    contact = Contact(
        id=None, stage=entry, stage_entered_at=at, created_at=now, updated_at=now,
        account_id=account.id if account else None, attributes=dict(data.attributes),
        consent=_consent(data, now), owner_id=owner_id, **values,
    )
    refit(uow, contact, ctx.config)
    contact_id = uow.contacts.add(contact)
    if owner_id is not None:
        uow.history.add_audit(contact_id, now, actor, "assigned", {
            "owner_id": owner_id, "rule": "entered_by_hand",
            "reason": "entered by this sales user"})
    changes = [first_seen(contact, actor=actor, config=ctx.config)]
    if stage is not None and stage != entry:
        changes.append(move(contact, stage, at=at, actor=actor, config=ctx.config,
                            reason=reason, kind="forward"))
    for change in changes:
        record_stage_change(uow, contact, change, ctx.config)
    for kind, value in (("email", contact.email), ("user_id", data.user_id),
                        ("anonymous_id", data.anonymous_id)):
        if value:
            uow.contacts.add_identity(contact_id, kind, value)
    uow.history.add_audit(contact_id, now, actor, "created",
                          {k: v for k, v in values.items() if v is not None})
    if account is not None and account.id is not None:
        refit_colleagues(uow=uow, ctx=ctx, account_id=account.id, except_id=contact_id,
                         actor=actor)
    return contact, changes


def create_contact(*, uow: UnitOfWork, ctx: Context, data: ContactIn,
                   actor: str = "user", owner_id: int | None = None) -> Contact:
    """Create a contact; it enters the pipeline at the entry stage and rules apply."""
    with uow:
        contact, _ = new_contact(uow=uow, ctx=ctx, data=data, actor=actor, owner_id=owner_id)
        now = ctx.clock.now()
        outcome = evaluate(contact, ctx.config, at=now, now=now)
        persist_outcome(uow, contact, outcome, ctx.config, actor=actor)
        uow.commit()
    return contact


def create_manual_lead(
    *, uow: UnitOfWork, ctx: Context, data: ContactIn, reason: str,
    referred_by_id: int | None = None, actor: str = "user", owner_id: int | None = None,
) -> Contact:
    """A rep heard of someone: the contact enters as a lead, with the reason (and referrer)."""
    if not reason or not reason.strip():
        raise InvalidInput("say why this person is a lead", field="reason")
    details = normalize_contact_fields({"email": data.email, "phone": data.phone})
    if not (details["email"] or details["phone"]):
        raise InvalidInput("a lead needs an email or a phone number", field="email")
    with uow:
        if referred_by_id is not None and uow.contacts.get(referred_by_id) is None:
            raise NotFound(f"no contact with id {referred_by_id} to refer this lead",
                           field="referred_by_id")
        if data.source is None:
            data.source = "referral" if referred_by_id is not None else "manual"
        interest = ctx.config.first_stage("interest").key
        contact, _ = new_contact(uow=uow, ctx=ctx, data=data, actor=actor, stage=interest,
                                 reason=reason.strip(), owner_id=owner_id)
        contact.referred_by_id = referred_by_id
        now = ctx.clock.now()
        outcome = evaluate(contact, ctx.config, at=now, now=now)
        persist_outcome(uow, contact, outcome, ctx.config, actor=actor)
        uow.commit()
    return contact


def update_contact(
    *, uow: UnitOfWork, ctx: Context, contact_id: int, changes: dict[str, Any],
    attributes: dict[str, Any] | None = None, account: AccountIn | None = None,
    actor: str = "user",
) -> Contact:
    """Change contact fields (and its account); fit and rules are re-evaluated."""
    values = normalize_contact_fields(changes)
    with uow:
        contact = load_contact(uow, contact_id)
        if ctx.config.is_erased(contact.stage):
            raise Conflict("this contact was erased and cannot be edited", field="contact_id")
        now = ctx.clock.now()
        if values.get("email") and values["email"] != contact.email:
            ensure_not_suppressed(uow, salt=ctx.suppression_salt, email=values["email"])
            other = email_owner(uow, values["email"])
            if other is not None and other != contact.id:
                raise Conflict(f"a contact with email {values['email']} already exists",
                               field="email")
            uow.contacts.add_identity(contact_id, "email", values["email"])
        diff = {k: [getattr(contact, k), v] for k, v in values.items() if getattr(contact, k) != v}
        for key, value in values.items():
            setattr(contact, key, value)
        if attributes:
            for key, value in attributes.items():
                if contact.attributes.get(key) != value:
                    diff[f"attributes.{key}"] = [contact.attributes.get(key), value]
                    contact.attributes[key] = value
        acc = None
        if account is not None:
            acc = upsert_account(uow=uow, data=account, now=now, current=contact.account_id)
            if acc.id != contact.account_id:
                diff["account_id"] = [contact.account_id, acc.id]
                contact.account_id = acc.id
        contact.updated_at = now
        refit(uow, contact, ctx.config)
        outcome = evaluate(contact, ctx.config, at=now, now=now)
        persist_outcome(uow, contact, outcome, ctx.config, actor=actor)
        if acc is not None and acc.id is not None:
            refit_colleagues(uow=uow, ctx=ctx, account_id=acc.id, except_id=contact_id,
                             actor=actor)
        if diff:
            uow.history.add_audit(contact_id, now, actor, "updated", diff)
        uow.commit()
    return contact


def refit_colleagues(*, uow: UnitOfWork, ctx: Context, account_id: int, except_id: int,
                     actor: str) -> None:
    """An account changed: the fit of its other contacts (and what follows from it) too."""
    now = ctx.clock.now()
    others = [i for i in uow.accounts.contact_ids(account_id) if i != except_id]
    for other in uow.contacts.get_many(others):
        before = (other.fit.score, other.fit.grade, other.fit.excluded_by)
        refit(uow, other, ctx.config)
        if (other.fit.score, other.fit.grade, other.fit.excluded_by) == before:
            continue
        other.updated_at = now
        persist_outcome(uow, other, evaluate(other, ctx.config, at=now, now=now), ctx.config,
                        actor=actor)


def contact_input_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(ContactIn))
