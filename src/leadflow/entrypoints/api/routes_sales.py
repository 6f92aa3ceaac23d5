"""REST: users and tokens, hand-off (assign, accept, reject), tasks, activities, personal
email, inbound email, the rep's work queue and the managers' cracks list."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from leadflow.adapters.db.work_queues import falling_through_cracks, rep_queue
from leadflow.domain.errors import Forbidden
from leadflow.domain.users import ROLE_SCOPE, User
from leadflow.entrypoints.api.auth import (
    Admin,
    AppDep,
    ContactReader,
    ContactWriter,
    Reader,
    Writer,
)
from leadflow.entrypoints.api.errors import error_body
from leadflow.entrypoints.api.schemas import Reason
from leadflow.entrypoints.api.schemas_sales import (
    ActivityCreate,
    ActivityRead,
    Assign,
    CracksRead,
    EmailSend,
    InboundRead,
    QueueRead,
    TaskComplete,
    TaskCreate,
    TaskDone,
    TaskRead,
    TokenCreated,
    TokenRequest,
    UserCreate,
    UserRead,
    UserUpdate,
)
from leadflow.services import activities, api_keys, assignments, followup, users
from leadflow.services.access import visible_task

router = APIRouter(prefix="/api/v1")


def _user(user: User) -> dict[str, Any]:
    return {**asdict(user), "territories": list(user.territories)}


@router.get("/users", response_model=list[UserRead], tags=["users"])
def users_list(app: AppDep, who: Reader) -> list[dict[str, Any]]:
    """Everyone for admins and marketers; a manager's team; a rep only themself."""
    return [_user(u) for u in users.list_users(uow=app.reader(), principal=who)]


@router.get("/users/me", response_model=UserRead, tags=["users"])
def users_me(app: AppDep, who: Reader) -> dict[str, Any]:
    assert who.user_id is not None
    return _user(users.get_user(uow=app.reader(), ref=who.user_id))


@router.post("/users", response_model=UserRead, status_code=201, tags=["users"])
def users_create(body: UserCreate, app: AppDep, _: Admin) -> dict[str, Any]:
    return _user(users.create_user(uow=app.uow(), ctx=app.ctx, **body.model_dump()))


@router.patch("/users/{user_id}", response_model=UserRead, tags=["users"])
def users_update(user_id: int, body: UserUpdate, app: AppDep, _: Admin) -> dict[str, Any]:
    """Role, team, active, out of office (``away_until``), weight, territories."""
    return _user(users.update_user(uow=app.uow(), ctx=app.ctx, ref=user_id,
                                   changes=body.model_dump(exclude_unset=True)))


@router.post("/tokens", response_model=TokenCreated, status_code=201, tags=["users"])
def tokens_create(body: TokenRequest, app: AppDep, request: Request) -> Any:
    """Trade an email and password for a personal API token that acts as that user.
    Rate-limited per email and per client address (429 with Retry-After)."""
    limiter = request.app.state.login_limiter
    client = request.client.host if request.client else "unknown"
    for who in (f"email:{body.email.strip().lower()}", f"client:{client}"):
        wait = limiter.allow(who)
        if wait is not None:
            return JSONResponse(error_body("rate_limited", "too many attempts; wait a little",
                                           "email"), status_code=429,
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
    user = users.check_password(uow=app.reader(), email=body.email, password=body.password)
    scope = ROLE_SCOPE[user.role]
    made = api_keys.create_api_key(uow=app.uow(), ctx=app.ctx, name=body.name, kind="secret",
                                   scopes=[scope], user=user.id)
    return {"token": made.token, "user": _user(user), "scope": scope}


@router.get("/queue", response_model=QueueRead, tags=["sales"])
def queue_get(app: AppDep, who: Reader, owner_id: int | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """A rep's work queue: open tasks by due time; prospects and opportunities hot first
    (the configured temperature order), then by score. Default: the caller's own."""
    owner = owner_id if owner_id is not None else who.user_id
    if owner is None or not who.sees_owner(owner):
        raise Forbidden("that queue is not yours to see", field="owner_id")
    with app.engine.connect() as conn:
        found = rep_queue(conn, app.config, owner_id=owner, now=app.clock.now(), limit=limit,
                          offset=offset)
    return {"owner_id": owner, **found}


@router.get("/cracks", response_model=CracksRead, tags=["sales"])
def cracks_get(app: AppDep, who: Reader,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Falling through the cracks: owned prospects with no open task, and (for those who see
    everyone) prospects nobody owns."""
    who.need_role("admin", "marketer", "sales_manager", what="see the cracks list")
    with app.engine.connect() as conn:
        return falling_through_cracks(conn, app.config, owners=who.visible_owners, limit=limit)


@router.post("/contacts/{contact_id}/assign", tags=["sales"], status_code=204)
def contacts_assign(contact_id: int, body: Assign, app: AppDep, who: ContactWriter) -> Response:
    """Give the contact and its open tasks to another sales user, with a reason."""
    who.need_role("admin", "marketer", "sales_manager", what="reassign contacts")
    assignments.reassign(uow=app.uow(), ctx=app.ctx, contact_id=contact_id, owner=body.owner,
                         reason=body.reason, actor=who.name, principal=who)
    return Response(status_code=204)


@router.post("/contacts/{contact_id}/accept", status_code=204, tags=["sales"])
def contacts_accept(contact_id: int, app: AppDep, who: ContactWriter) -> Response:
    """The owner accepts the prospect (milestone ``sal``)."""
    followup.accept(uow=app.uow(), ctx=app.ctx, contact_id=contact_id, principal=who)
    return Response(status_code=204)


@router.post("/contacts/{contact_id}/reject", status_code=204, tags=["sales"])
def contacts_reject(contact_id: int, body: Reason, app: AppDep,
                    who: ContactWriter) -> Response:
    """Send the prospect back to marketing with a reason (it is recycled)."""
    followup.reject(uow=app.uow(), ctx=app.ctx, contact_id=contact_id, reason=body.reason,
                    principal=who)
    return Response(status_code=204)


@router.get("/contacts/{contact_id}/tasks", response_model=list[TaskRead], tags=["tasks"])
def tasks_list(contact_id: int, app: AppDep, _: ContactReader) -> list[dict[str, Any]]:
    with app.reader() as uow:
        return [asdict(task) for task in uow.tasks.of_contact(contact_id)]


@router.post("/contacts/{contact_id}/tasks", response_model=TaskRead, status_code=201,
             tags=["tasks"])
def tasks_create(contact_id: int, body: TaskCreate, app: AppDep,
                 who: ContactWriter) -> dict[str, Any]:
    if body.owner_id is not None and not who.sees_owner(body.owner_id):
        raise Forbidden("you may give tasks only to yourself or your team", field="owner_id")
    return asdict(followup.create_task(
        uow=app.uow(), ctx=app.ctx, contact_id=contact_id, kind=body.kind, title=body.title,
        due_at=body.due_at, owner_id=body.owner_id, actor=who.name))


@router.post("/tasks/{task_id}/complete", response_model=TaskDone, tags=["tasks"])
def tasks_complete(task_id: int, body: TaskComplete, app: AppDep,
                   who: Writer) -> dict[str, Any]:
    """Close a task; the contact's next follow-up opens when this was its last."""
    visible_task(uow=app.reader(), principal=who, task_id=task_id)
    following = followup.complete_task(
        uow=app.uow(), ctx=app.ctx, task_id=task_id, outcome=body.outcome, actor=who.name,
        next_due_at=body.next_due_at, next_title=body.next_title)
    with app.reader() as uow:
        done = uow.tasks.get(task_id)
    assert done is not None
    return {"task": asdict(done), "next_task": None if following is None else asdict(following)}


@router.get("/contacts/{contact_id}/activities", response_model=list[ActivityRead],
            tags=["activities"])
def activities_list(contact_id: int, app: AppDep, _: ContactReader,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    return [asdict(a) for a in activities.list_activities(uow=app.reader(),
                                                          contact_id=contact_id, limit=limit)]


@router.post("/contacts/{contact_id}/activities", response_model=ActivityRead, status_code=201,
             tags=["activities"])
def activities_create(contact_id: int, body: ActivityCreate, app: AppDep,
                      who: ContactWriter) -> dict[str, Any]:
    """Log a call, email, meeting or note. A reply, an answered call or a meeting is also an
    event that scores."""
    return asdict(activities.log_activity(
        uow=app.uow(), ctx=app.ctx, contact_id=contact_id,
        data=activities.ActivityIn(**body.model_dump()), principal=who))


@router.post("/contacts/{contact_id}/emails", response_model=ActivityRead, status_code=201,
             tags=["activities"])
def emails_send(contact_id: int, body: EmailSend, app: AppDep,
                who: ContactWriter) -> dict[str, Any]:
    """Send a personal email to the contact (SMTP, or the file outbox), logged on the
    timeline; replies go to the sender."""
    return asdict(activities.send_personal_email(
        uow=app.uow(), ctx=app.ctx, mailer=app.mailer, contact_id=contact_id,
        subject=body.subject, text=body.text, principal=who,
        inbound_address=app.settings.inbound_address))


@router.post("/inbound/email", response_model=InboundRead, tags=["activities"])
async def inbound_email(request: Request, app: AppDep, who: Writer) -> dict[str, Any]:
    """An email forwarded or BCC'd to the inbound address (the raw RFC 822 message as the
    body), from a mail relay: logged on the contact's timeline; a reply scores."""
    who.need_role("admin", "marketer", what="feed inbound email")
    raw = await request.body()
    result = await run_in_threadpool(
        lambda: activities.log_inbound_email(uow=app.uow(), ctx=app.ctx, raw=raw))
    return {"duplicate": result.duplicate,
            "activity": None if result.activity is None else asdict(result.activity)}
