"""Forms and their landing pages: define them, show each visitor the fields still unknown
about them (progressive profiling), and take submissions.

A submission is one transaction: the contact is found or created (by email, merging the
anonymous visitor's history as identify does), its consent and answers are recorded, the
``form_submitted`` event (and, for a gated item, its ``content_download``) goes through
scoring and the stage rules, the gated asset's email is queued and the form's
autoresponders run. Bad input names its field and writes nothing; a person who asked to be
forgotten is refused before anything is written; a replayed submission changes nothing.

A public form fills what is unknown about a person and never overwrites what is known: anyone
can type anyone's email into it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from leadflow.domain.config import Question
from leadflow.domain.content import KEY_RE, LANGUAGE_RE, ContentItem
from leadflow.domain.errors import Conflict, InvalidInput, NotFound
from leadflow.domain.forms import FIELD_LABELS, Form, Known, fields_to_ask
from leadflow.domain.identity import normalize_email
from leadflow.domain.lifecycle import evaluate
from leadflow.domain.model import Account, ConsentRecord, Contact
from leadflow.domain.nurture_config import PROFILE_FIELDS
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.qualification import evaluate as evaluate_qualification
from leadflow.domain.qualification import parse_answer
from leadflow.services import nurture
from leadflow.services.common import ensure_not_suppressed, persist_outcome, refit
from leadflow.services.contacts import (
    AccountIn,
    email_owner,
    normalize_contact_fields,
    refit_colleagues,
    upsert_account,
)
from leadflow.services.context import Context
from leadflow.services.events import EventIn, IdentifyIn, identify_in, record_in, validate_event
from leadflow.services.mail_queue import queue_asset

CONTACT_PROFILE_FIELDS = ("first_name", "last_name", "title", "phone", "country")
ACCOUNT_PROFILE_FIELDS = ("company", "company_size", "industry")
ANSWER_FIELDS = ("budget", "timeline", "authority")
CONSENT_FIELDS = ("consent", "newsletter")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
# Everything a submission may carry; other keys (a submit button's name…) are ignored.
SUBMISSION_FIELDS = ("email", *PROFILE_FIELDS, *CONSENT_FIELDS, *UTM_FIELDS)
TRUE_WORDS = {"on", "yes", "true", "1", "y", "oui"}
FALSE_WORDS = {"", "off", "no", "false", "0", "n", "non"}
SUBMISSION_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
LIMITS = {"name": 300, "headline": 300, "pitch": 20_000, "consent_label": 500,
          "company": 300, "industry": 100, "utm_source": 200, "utm_medium": 200,
          "utm_campaign": 200}
MAX_EMPLOYEES = 2**31 - 1


# -- defining forms ---------------------------------------------------------------------------

# Refusals a public form's ticked box never overrides.
UNVERIFIED_OVERRIDES = ("unsubscribe", "complaint")

@dataclass
class FormIn:
    """A form as a marketer defines it. Empty ``fields`` and ``max_fields`` 0 follow the
    configuration's ``nurture.profiling`` defaults."""

    key: str
    name: str
    headline: str = ""
    pitch: str = ""
    item_key: str | None = None
    fields: list[str] = field(default_factory=list)
    max_fields: int = 0
    consent_label: str = "Send me occasional emails about this topic."
    newsletter: bool = False
    language: str = "en"
    active: bool = True


FORM_CHANGES = tuple(f for f in FormIn.__dataclass_fields__ if f != "key")


def _text(value: Any, name: str, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"expected text, got {value!r}", field=name)
    text = value.strip()
    if required and not text:
        raise InvalidInput(f"a form needs a {name}", field=name)
    if len(text) > LIMITS[name]:
        raise InvalidInput(f"longer than {LIMITS[name]} characters", field=name)
    return text


def _valid_form(uow: UnitOfWork, data: FormIn) -> Form:
    """The form as stored, every field checked; InvalidInput or NotFound names the field."""
    key = str(data.key or "").strip().lower()
    if not KEY_RE.match(key):
        raise InvalidInput("a key is lower-case letters, digits and dashes, like "
                           "'crm-guide'", field="key")
    fields = [str(f).strip().lower() for f in data.fields]
    for name in fields:
        if name not in PROFILE_FIELDS:
            raise InvalidInput(f"unknown field {name!r} (fields: {', '.join(PROFILE_FIELDS)})",
                               field="fields")
    if len(set(fields)) != len(fields):
        raise InvalidInput("a field is listed twice", field="fields")
    if isinstance(data.max_fields, bool) or not isinstance(data.max_fields, int) \
            or not 0 <= data.max_fields <= 20:
        raise InvalidInput("expected a whole number from 0 (the configuration's default) "
                           "to 20", field="max_fields")
    language = str(data.language or "").strip().lower()
    if not LANGUAGE_RE.match(language):
        raise InvalidInput("expected a two-letter language code like 'en'", field="language")
    for flag in ("newsletter", "active"):
        if not isinstance(getattr(data, flag), bool):
            raise InvalidInput("expected true or false", field=flag)
    item_key = (data.item_key or "").strip().lower() or None
    if item_key is not None:
        item = uow.content.get(item_key)
        if item is None:
            raise NotFound(f"no content item {item_key!r} to gate", field="item_key")
        if item.archived:
            raise InvalidInput(f"content item {item_key!r} is archived", field="item_key")
    return Form(key=key, name=_text(data.name, "name", required=True),
                headline=_text(data.headline, "headline"), pitch=_text(data.pitch, "pitch"),
                item_key=item_key, fields=tuple(fields), max_fields=data.max_fields,
                consent_label=_text(data.consent_label, "consent_label", required=True),
                newsletter=data.newsletter, language=language, active=data.active)


def create_form(*, uow: UnitOfWork, ctx: Context, data: FormIn) -> Form:
    with uow:
        form = _valid_form(uow, data)
        if uow.forms.get(form.key) is not None:
            raise Conflict(f"a form with key {form.key!r} exists already", field="key")
        made = uow.forms.add(form, ctx.clock.now())
        uow.commit()
    return made


def update_form(*, uow: UnitOfWork, ctx: Context, key: str, changes: Mapping[str, Any]
                ) -> Form:
    """Change the fields given (any of FORM_CHANGES); the key stays."""
    for name in changes:
        if name not in FORM_CHANGES:
            raise InvalidInput(f"unknown form field {name!r}", field=name)
    with uow:
        current = uow.forms.get(key)
        if current is None:
            raise NotFound(f"no form {key!r}", field="key")
        values = {name: getattr(current, name) for name in FORM_CHANGES}
        values["fields"] = list(current.fields)
        values.update(changes)
        form = replace(_valid_form(uow, FormIn(key=current.key, **values)), id=current.id)
        uow.forms.save(form, ctx.clock.now())
        uow.commit()
    return form


def list_forms(*, uow: UnitOfWork) -> list[Form]:
    with uow:
        return uow.forms.all()


def get_form(*, uow: UnitOfWork, key: str) -> Form:
    with uow:
        form = uow.forms.get(key)
    if form is None:
        raise NotFound(f"no form {key!r}", field="key")
    return form


def effective_fields(ctx: Context, form: Form) -> tuple[list[str], int]:
    """The profiling fields a form asks from, and at most how many at a time."""
    nurture_cfg = ctx.config.nurture
    return (list(form.fields or nurture_cfg.profile_fields),
            form.max_fields or nurture_cfg.profile_max_fields)


# -- what to ask ------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldSpec:
    """How a page shows one field."""

    name: str
    label: str
    input: str  # text | email | tel | number | date | select
    choices: tuple[str, ...] = ()
    max_length: int | None = None


def _question(ctx: Context, name: str) -> Question | None:
    return next((q for q in ctx.config.questions if q.key == name), None)


def field_spec(ctx: Context, name: str) -> FieldSpec:
    label = FIELD_LABELS.get(name, name.replace("_", " ").capitalize())
    question = _question(ctx, name) if name in ANSWER_FIELDS else None
    if question is not None:
        if question.type == "choice":
            return FieldSpec(name, label, "select", question.choices)
        if question.type == "date":
            return FieldSpec(name, label, "date")
        if question.type == "number":
            return FieldSpec(name, label, "number")
        if question.type == "bool":
            return FieldSpec(name, label, "select", ("yes", "no"))
    inputs = {"phone": "tel", "company_size": "number"}
    lengths = {"country": 2, "phone": 50, "company": 300, "industry": 100}
    return FieldSpec(name, label, inputs.get(name, "text"), max_length=lengths.get(name, 200))


def known_about(uow: UnitOfWork, contact: Contact | None) -> Known:
    """What a contact has told us so far, by profiling field."""
    if contact is None:
        return Known()
    account = uow.accounts.get(contact.account_id) if contact.account_id else None
    answers = contact.qualification.answers
    values: dict[str, Any] = {name: getattr(contact, name) for name in CONTACT_PROFILE_FIELDS}
    values.update(company=account.name if account else None,
                  company_size=account.employees if account else None,
                  industry=account.industry if account else None)
    for name in ANSWER_FIELDS:
        values[name] = answers.get(name, contact.attributes.get(name))
    if values["authority"] is None:
        values["authority"] = contact.account_role
    return Known(values)


def _active_form(uow: UnitOfWork, form_key: str) -> Form:
    form = uow.forms.get(form_key)
    if form is None or not form.active:
        raise NotFound(f"no form {form_key!r}", field="key")
    return form


def _visitor(uow: UnitOfWork, ctx: Context, contact_id: int | None) -> Contact | None:
    """The contact a profile link names, following merges; None when unknown or erased."""
    if contact_id is None:
        return None
    contact = uow.contacts.get(contact_id)
    if contact is None:
        survivor = uow.contacts.merged_into(contact_id)
        contact = uow.contacts.get(survivor) if survivor is not None else None
    if contact is None or ctx.config.is_erased(contact.stage):
        return None
    return contact


def _ask(ctx: Context, form: Form, known: Known) -> list[str]:
    nurture_cfg = ctx.config.nurture
    return fields_to_ask(form, known, default_fields=nurture_cfg.profile_fields,
                         default_max=nurture_cfg.profile_max_fields)


def fields_for(*, uow: UnitOfWork, ctx: Context, form_key: str, contact_id: int | None
               ) -> list[str]:
    """The profiling fields to show now: what is still unknown about this contact (everything
    for a visitor we do not know), in the form's order, at most the form's N."""
    with uow:
        form = _active_form(uow, form_key)
        return _ask(ctx, form, known_about(uow, _visitor(uow, ctx, contact_id)))


@dataclass(frozen=True)
class LandingPage:
    form: Form
    item: ContentItem | None
    fields: list[FieldSpec]
    ask_email: bool  # False when a profile link names a contact whose email we have
    first_name: str | None  # whom a profile link greets
    contact_id: int | None


def landing_page(*, uow: UnitOfWork, ctx: Context, form_key: str, contact_id: int | None
                 ) -> LandingPage:
    """Everything a landing page shows: the form, the item it gates, the fields to ask."""
    with uow:
        form = _active_form(uow, form_key)
        visitor = _visitor(uow, ctx, contact_id)
        item = uow.content.get(form.item_key) if form.item_key else None
        names = _ask(ctx, form, known_about(uow, visitor))
    return LandingPage(form=form, item=item if item and not item.archived else None,
                       fields=[field_spec(ctx, n) for n in names],
                       ask_email=visitor is None or visitor.email is None,
                       first_name=visitor.first_name if visitor else None,
                       contact_id=visitor.id if visitor else None)


# -- submissions ------------------------------------------------------------------------------

@dataclass
class Parsed:
    email: str | None
    contact: dict[str, Any]
    company: str | None
    company_size: int | None
    industry: str | None
    answers: dict[str, Any]  # qualification questions of the configuration
    attributes: dict[str, Any]  # answers the configuration asks no question about
    consent: bool
    newsletter: bool
    utm: dict[str, str | None]


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    word = "" if value is None else str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InvalidInput(f"expected a ticked or unticked box, got {value!r}", field=name)


def _optional_text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InvalidInput(f"expected text, got {value!r}", field=name)
    text = str(value).strip()
    if len(text) > LIMITS.get(name, 320):
        raise InvalidInput(f"longer than {LIMITS.get(name, 320)} characters", field=name)
    return text or None


def _employees(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidInput("expected a number of employees", field="company_size")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        text = re.sub(r"[\s,._']", "", str(value))
        if not text.isdigit():
            raise InvalidInput(f"expected a number of employees, got {value!r}",
                               field="company_size")
        number = int(text)
    if not 0 < number <= MAX_EMPLOYEES:
        raise InvalidInput("expected a number of employees from 1 up", field="company_size")
    return number


def parse_submission(ctx: Context, data: Mapping[str, Any]) -> Parsed:
    """Check every value of a submission before anything is written; InvalidInput names the
    first bad field. Empty values count as not given."""
    values = {k: data[k] for k in SUBMISSION_FIELDS if k in data}
    for name, value in values.items():
        if isinstance(value, dict | list):
            raise InvalidInput("expected a single value", field=name)
    email_raw = values.get("email")
    if email_raw is not None and not isinstance(email_raw, str):
        raise InvalidInput(f"not a valid email address: {email_raw!r}", field="email")
    email = normalize_email(email_raw)
    contact = normalize_contact_fields({
        name: _optional_text(values.get(name), name) for name in CONTACT_PROFILE_FIELDS})
    answers: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for name in ANSWER_FIELDS:
        raw = values.get(name)
        question = _question(ctx, name)
        if question is None:
            text = _optional_text(raw, name)
            if text is not None:
                attributes[name] = text
            continue
        try:
            answer = parse_answer(question, raw.strip() if isinstance(raw, str) else raw)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field=name) from None
        if answer is not None:
            answers[name] = answer
    return Parsed(
        email=email, contact={k: v for k, v in contact.items() if v is not None},
        company=_optional_text(values.get("company"), "company"),
        company_size=_employees(values.get("company_size")),
        industry=_optional_text(values.get("industry"), "industry"),
        answers=answers, attributes=attributes,
        consent=_flag(values.get("consent"), "consent"),
        newsletter=_flag(values.get("newsletter"), "newsletter"),
        utm={name: _optional_text(values.get(name), name) for name in UTM_FIELDS})


@dataclass(frozen=True)
class Submission:
    contact_id: int | None
    form: Form
    item: ContentItem | None
    asset_queued: bool  # an email with the gated item was queued by this submission
    duplicate: bool = False  # a replay of a submission taken before: nothing changed


def _fingerprint(form_key: str, submission_id: str, who: str) -> str:
    """Tells one submission from its replays; hashed, so no email lands in message ids."""
    raw = f"{form_key}\x1f{submission_id}\x1f{who}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def _fill_account(uow: UnitOfWork, ctx: Context, contact: Contact, parsed: Parsed, *,
                  actor: str, now: float) -> dict[str, list[Any]]:
    """Link the contact to its company and fill what is unknown about that company."""
    diff: dict[str, list[Any]] = {}
    account: Account | None = uow.accounts.get(contact.account_id) \
        if contact.account_id else None
    if account is None and parsed.company is not None:
        account = uow.accounts.get_by_name(parsed.company) or upsert_account(
            uow=uow, data=AccountIn(name=parsed.company), now=now)
        contact.account_id = account.id
        diff["account_id"] = [None, account.id]
    if account is None:
        return diff
    changed = False
    for name, value in (("employees", parsed.company_size), ("industry", parsed.industry)):
        if value is not None and getattr(account, name) in (None, ""):
            diff[f"account.{name}"] = [None, value]
            setattr(account, name, value)
            changed = True
    if changed and account.id is not None and contact.id is not None:
        account.updated_at = now
        uow.accounts.save(account)
        refit_colleagues(uow=uow, ctx=ctx, account_id=account.id, except_id=contact.id,
                         actor=actor)
    return diff


def _record_profile(uow: UnitOfWork, ctx: Context, contact: Contact, form: Form,
                    parsed: Parsed, *, actor: str, at: float) -> None:
    """What the form told us, where nothing was known; consent ticked; all in the timeline."""
    assert contact.id is not None
    now = ctx.clock.now()
    diff: dict[str, list[Any]] = {}
    for name, value in parsed.contact.items():
        if getattr(contact, name) in (None, ""):
            diff[name] = [None, value]
            setattr(contact, name, value)
    if contact.language is None:
        diff["language"] = [None, form.language]
        contact.language = form.language
    diff.update(_fill_account(uow, ctx, contact, parsed, actor=actor, now=now))
    for name, value in parsed.attributes.items():
        if contact.attributes.get(name) in (None, ""):
            diff[f"attributes.{name}"] = [None, value]
            contact.attributes[name] = value
    old_answers = contact.qualification.answers
    new_answers = {k: v for k, v in parsed.answers.items() if old_answers.get(k) is None}
    if new_answers:
        merged = {**{k: v for k, v in old_answers.items() if v is not None}, **new_answers}
        result = evaluate_qualification(ctx.config.questions, merged, now=now,
                                        account_role=contact.account_role)
        result.answers, result.by, result.at = merged, actor, now
        contact.qualification = result
        uow.history.add_audit(contact.id, now, actor, "qualification",
                              {"answers": new_answers, "passed": result.passed,
                               "missing": result.missing, "failed": result.failed})
    source = f"form:{form.key}"
    granted = [c for c, ticked in (("email", parsed.consent),
                                   ("newsletter", parsed.newsletter and form.newsletter))
               if ticked]  # an unticked box is no answer, not a refusal
    refused = contact.consent.get("email")
    if refused is not None and not refused.granted and refused.source in UNVERIFIED_OVERRIDES:
        # Anyone may type anyone's email into a public form: a tick does not undo an
        # unsubscribe or a spam complaint (that takes the person, not a form).
        diff["consent.ignored"] = [refused.source, granted]
        granted = []
    for channel in granted:
        before = contact.consent.get(channel)
        diff[f"consent.{channel}"] = [before.granted if before else None, True]
        contact.consent[channel] = ConsentRecord(channel=channel, granted=True, source=source,
                                                 at=at)
    contact.updated_at = now
    refit(uow, contact, ctx.config)
    persist_outcome(uow, contact, evaluate(contact, ctx.config, at=now, now=now), ctx.config,
                    actor=actor)
    if diff:
        uow.history.add_audit(contact.id, now, actor, "form_submitted", diff)


def _resolve(uow: UnitOfWork, ctx: Context, parsed: Parsed, *, anonymous_id: str | None,
             profile_token_contact: int | None, actor: str) -> tuple[Contact, str]:
    """The contact a submission is about: by its email (the profile link's contact when it
    gives none), merged with the anonymous visitor who filled it in."""
    visitor = _visitor(uow, ctx, profile_token_contact)
    email = parsed.email
    if email is None:
        email = visitor.email if visitor else None
        if email is None:
            raise InvalidInput("an email address is needed to send you the content",
                               field="email")
    ensure_not_suppressed(uow, salt=ctx.suppression_salt, email=email,
                          anonymous_id=anonymous_id)
    if visitor is not None and visitor.id is not None and visitor.email is None \
            and email_owner(uow, email) is None:
        uow.contacts.add_identity(visitor.id, "email", email)  # the link's contact gives it
    created = email_owner(uow, email) is None and (
        anonymous_id is None or uow.contacts.find_by_identity("anonymous_id",
                                                              anonymous_id) is None)
    contact = identify_in(uow=uow, ctx=ctx, data=IdentifyIn(anonymous_id=anonymous_id,
                                                            email=email), actor=actor)
    if created and contact.source is None:
        contact.source = (parsed.utm["utm_source"] or "form").lower()[:100]
    return contact, email


def submit(*, uow: UnitOfWork, ctx: Context, form_key: str, data: Mapping[str, Any],
           anonymous_id: str | None, profile_token_contact: int | None, at: float,
           submission_id: str) -> Submission:
    """Take one form submission in one transaction (see the module's docstring).

    ``profile_token_contact`` is the contact a verified profile link names: its email may then
    be left out. ``submission_id`` is the same for a request and its replays (a page renders
    one per form shown; the API takes one or makes one), so a replay queues no second email.
    Raises InvalidInput naming the field, NotFound for an unknown or inactive form, and
    Suppressed for a person who asked to be forgotten; none of them writes anything.
    """
    if not isinstance(submission_id, str) or not SUBMISSION_RE.match(submission_id):
        raise InvalidInput("a submission id is 1 to 100 letters, digits and . _ : -",
                           field="submission_id")
    anonymous_id = _optional_text(anonymous_id, "anonymous_id")
    parsed = parse_submission(ctx, data)
    actor = f"form:{form_key}"
    with uow:
        uow.serialize("tracking")  # creates contacts and identities as tracking does
        form = _active_form(uow, form_key)
        item = uow.content.get(form.item_key) if form.item_key else None
        item = item if item is not None and not item.archived else None
        contact, email = _resolve(uow, ctx, parsed, anonymous_id=anonymous_id,
                                  profile_token_contact=profile_token_contact, actor=actor)
        assert contact.id is not None
        token = _fingerprint(form.key, submission_id, email)
        message_id = f"form:{token}"
        if uow.events.has_message(message_id):  # leaving without commit undoes _resolve
            return Submission(contact_id=contact.id, form=form, item=item,
                              asset_queued=False, duplicate=True)
        _record_profile(uow, ctx, contact, form, parsed, actor=actor, at=at)
        now = ctx.clock.now()
        properties = {"form": form.key, "item": item.key if item else None}
        record_in(uow=uow, ctx=ctx, event=validate_event(EventIn(
            type="form_submitted", contact_id=contact.id, ts=at, message_id=message_id,
            url=f"/p/{form.key}", properties=dict(properties),
            utm_source=parsed.utm["utm_source"], utm_medium=parsed.utm["utm_medium"],
            utm_campaign=parsed.utm["utm_campaign"]), now=now))
        queued = False
        if item is not None:
            record_in(uow=uow, ctx=ctx, event=validate_event(EventIn(
                type="content_download", contact_id=contact.id, ts=at,
                message_id=f"{message_id}:download", url=item.url,
                content_stage=item.maturity, premium=item.premium,
                properties=dict(properties)), now=now))
            queued = queue_asset(uow, contact_id=contact.id, item=item, form_key=form.key,
                                 submission=token, at=at) is not None
        run_form_autoresponders(uow, ctx, contact, form.key, at)
        uow.commit()
    return Submission(contact_id=contact.id, form=form, item=item, asset_queued=queued)


def run_form_autoresponders(uow: UnitOfWork, ctx: Context, contact: Contact, form_key: str,
                            at: float) -> int:
    """The nurture autoresponders this form triggers, queued in the submission's unit of
    work; how many emails they queued."""
    assert contact.id is not None
    return nurture.on_form_submitted(uow, ctx, contact_id=contact.id, form_key=form_key, at=at)
