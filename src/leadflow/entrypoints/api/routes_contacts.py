"""REST: contacts, their stage moves and qualification, accounts, events."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from leadflow.adapters.db.read_models import SORTS, ContactFilters, list_contacts, parse_grades
from leadflow.domain.model import Account, Contact
from leadflow.domain.users import SALES_ROLES
from leadflow.entrypoints.api.auth import AppDep, ContactReader, ContactWriter, Reader, Writer
from leadflow.entrypoints.api.schemas import (
    AccountCreate,
    AccountRead,
    AccountUpdate,
    ContactCreate,
    ContactPage,
    ContactRead,
    ContactUpdate,
    EventBatch,
    EventCreate,
    EventRead,
    Qualification,
    Reason,
    StageMove,
)
from leadflow.services import accounts as account_services
from leadflow.services import contacts as contact_services
from leadflow.services import moves
from leadflow.services.access import (
    ensure_account_access,
    ensure_account_body,
    ensure_contact_access,
)
from leadflow.services.contact_view import contact_view
from leadflow.services.contacts import AccountIn, ContactIn
from leadflow.services.events import EventIn, EventResult, record_event, record_events
from leadflow.services.temperatures import refresh_expired_temperatures

router = APIRouter(prefix="/api/v1")


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()] or None


@router.get("/contacts", response_model=ContactPage, tags=["contacts"])
def contacts_list(
    app: AppDep, who: Reader,
    stage: Annotated[list[str] | None, Query(description="Stage key(s); repeat or comma")] = None,
    temperature: Annotated[list[str] | None, Query()] = None,
    grade: Annotated[str | None, Query(description="'A,B' or 'B+'")] = None,
    min_score: Annotated[float | None, Query(gt=0)] = None,
    milestone: str | None = None, source: str | None = None, owner_id: int | None = None,
    q: Annotated[str | None, Query(description="Text in email or name")] = None,
    sort: Annotated[str, Query(description=f"One of {', '.join(SORTS)}")] = "score",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Contacts with the CLI's filters and sorts, a page at a time."""
    filters = ContactFilters(stage=_split(stage), temperature=_split(temperature),
                             grade=parse_grades(grade) if grade else None,
                             min_score=min_score, milestone=milestone, source=source,
                             owner_id=owner_id, search=q, visible_owners=who.visible_owners)
    # As `leadflow contacts list` does: temperatures the clock alone changed are read anew.
    refresh_expired_temperatures(uow_factory=app.uow, ctx=app.ctx)
    with app.engine.connect() as conn:
        items, total = list_contacts(conn, app.config, filters, now=app.clock.now(), sort=sort,
                                     limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/contacts/{contact_id}", response_model=ContactRead, tags=["contacts"])
def contacts_get(contact_id: int, app: AppDep, _: ContactReader,
                 timeline: Annotated[int, Query(ge=0, le=1000)] = 100) -> dict[str, Any]:
    """One contact: scores with their breakdown, stage, milestones, temperature, timeline."""
    return contact_view(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                        timeline_limit=timeline)


def _view(app: AppDep, contact: Contact) -> dict[str, Any]:
    assert contact.id is not None
    return contact_view(uow=app.uow(), ctx=app.ctx, contact_id=contact.id, timeline_limit=20)


def _account_in(data: AccountCreate | None) -> AccountIn | None:
    return None if data is None else AccountIn(**data.model_dump())


@router.post("/contacts", response_model=ContactRead, status_code=201, tags=["contacts"])
def contacts_create(body: ContactCreate, app: AppDep, who: Writer) -> dict[str, Any]:
    """Create a contact; with ``lead_reason`` it enters as a lead entered by hand."""
    fields = body.model_dump(exclude={"account", "lead_reason", "referred_by_id"})
    data = ContactIn(**fields, account=_account_in(body.account))
    actor = who.name
    owner = who.user_id if who.role in SALES_ROLES else None  # a rep owns whom they enter
    if body.referred_by_id is not None:
        ensure_contact_access(uow=app.reader(), principal=who, contact_id=body.referred_by_id)
    ensure_account_body(uow=app.reader(), principal=who, data=data.account)
    if body.lead_reason is not None or body.referred_by_id is not None:
        contact = contact_services.create_manual_lead(
            uow=app.uow(), ctx=app.ctx, data=data, reason=body.lead_reason or "",
            referred_by_id=body.referred_by_id, actor=actor, owner_id=owner)
    else:
        contact = contact_services.create_contact(uow=app.uow(), ctx=app.ctx, data=data,
                                                  actor=actor, owner_id=owner)
    return _view(app, contact)


@router.patch("/contacts/{contact_id}", response_model=ContactRead, tags=["contacts"])
def contacts_update(contact_id: int, body: ContactUpdate, app: AppDep,
                    who: ContactWriter) -> dict[str, Any]:
    """Change the fields given; fit and stage rules are re-evaluated."""
    changes = body.model_dump(exclude_unset=True, exclude={"attributes", "account"})
    ensure_account_body(uow=app.reader(), principal=who, data=_account_in(body.account))
    contact = contact_services.update_contact(
        uow=app.uow(), ctx=app.ctx, contact_id=contact_id, changes=changes,
        attributes=body.attributes, account=_account_in(body.account),
        actor=who.name)
    return _view(app, contact)


@router.post("/contacts/{contact_id}/stage", response_model=ContactRead, tags=["stages"])
def contacts_move(contact_id: int, body: StageMove, app: AppDep,
                  who: ContactWriter) -> dict[str, Any]:
    """Move by hand, with a reason (a backward move recycles)."""
    contact = moves.move_stage(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                               to_stage=body.stage, reason=body.reason, actor=who.name)
    return _view(app, contact)


@router.post("/contacts/{contact_id}/disqualify", response_model=ContactRead, tags=["stages"])
def contacts_disqualify(contact_id: int, body: Reason, app: AppDep,
                        who: ContactWriter) -> dict[str, Any]:
    contact = moves.disqualify(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                               reason=body.reason, actor=who.name)
    return _view(app, contact)


@router.post("/contacts/{contact_id}/recycle", response_model=ContactRead, tags=["stages"])
def contacts_recycle(contact_id: int, body: Reason, app: AppDep,
                     who: ContactWriter) -> dict[str, Any]:
    contact = moves.recycle(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                            reason=body.reason, actor=who.name)
    return _view(app, contact)


@router.put("/contacts/{contact_id}/qualification", response_model=ContactRead,
            tags=["qualification"])
def contacts_qualify(contact_id: int, body: Qualification, app: AppDep,
                     who: ContactWriter) -> dict[str, Any]:
    """Record BANT and prerequisite answers; passing sets the ``qualified`` milestone."""
    contact = moves.qualify(uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
                            answers=body.answers, actor=who.name)
    return _view(app, contact)


@router.post("/contacts/{contact_id}/erase", status_code=204, tags=["contacts"])
def contacts_erase(contact_id: int, body: Reason, app: AppDep, who: ContactWriter) -> Response:
    """Erase personal data everywhere; only salted hashes stay, for suppression."""
    moves.erase(uow=app.uow(), ctx=app.ctx, contact_id=contact_id, reason=body.reason,
                actor=who.name, mailer=app.mailer)
    return Response(status_code=204)


def _account(account: Account) -> dict[str, Any]:
    return asdict(account)


@router.post("/accounts", response_model=AccountRead, status_code=201, tags=["accounts"])
def accounts_create(body: AccountCreate, app: AppDep, _: Writer) -> dict[str, Any]:
    return _account(account_services.create_account(
        uow=app.uow(), ctx=app.ctx, data=AccountIn(**body.model_dump())))


@router.get("/accounts/{account_id}", response_model=AccountRead, tags=["accounts"])
def accounts_get(account_id: int, app: AppDep, who: Reader) -> dict[str, Any]:
    ensure_account_access(uow=app.reader(), principal=who, account_id=account_id)
    return _account(account_services.get_account(uow=app.uow(), account_id=account_id))


@router.patch("/accounts/{account_id}", response_model=AccountRead, tags=["accounts"])
def accounts_update(account_id: int, body: AccountUpdate, app: AppDep,
                    who: Writer) -> dict[str, Any]:
    ensure_account_access(uow=app.reader(), principal=who, account_id=account_id, write=True)
    return _account(account_services.update_account(
        uow=app.uow(), ctx=app.ctx, account_id=account_id,
        changes=body.model_dump(exclude_unset=True), actor=who.name))


def _event_in(body: EventCreate) -> EventIn:
    data = body.model_dump()
    data["ts"] = data.pop("timestamp")
    return EventIn(**data)


def _event_read(result: EventResult) -> dict[str, Any]:
    return {**asdict(result), "stage_changes": [asdict(c) for c in result.stage_changes]}


@router.post("/events", response_model=EventRead, status_code=201, tags=["events"])
async def events_create(body: EventCreate, app: AppDep, who: Writer,
                        response: Response) -> dict[str, Any]:
    """Record one event (idempotent on ``message_id``: a repeat is a 200 marked
    ``duplicate``, and records nothing): scored and evaluated at once. Admins and marketers
    only: events name contacts by any identity, so they are not a sales rep's to send."""
    who.need_role("admin", "marketer", what="record raw events")
    result = await run_in_threadpool(lambda: record_event(uow=app.uow(), ctx=app.ctx,
                                                          event=_event_in(body)))
    if result.duplicate:
        response.status_code = 200
    return _event_read(result)


@router.post("/events/batch", response_model=list[EventRead], status_code=201, tags=["events"])
async def events_batch(body: EventBatch, app: AppDep, who: Writer) -> list[dict[str, Any]]:
    """Record up to 1,000 events atomically: all are stored, or none (the error names one)."""
    who.need_role("admin", "marketer", what="record raw events")
    results = await run_in_threadpool(lambda: record_events(
        uow=app.uow(), ctx=app.ctx, events=[_event_in(e) for e in body.events]))
    return [_event_read(r) for r in results]
