"""REST: the content library, the next best content for a contact, a contact's export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from leadflow.domain.content import ContentItem, Recommendation
from leadflow.domain.errors import InvalidInput
from leadflow.domain.users import Principal
from leadflow.entrypoints.api.auth import AppDep, ContactReader, Reader, Writer
from leadflow.entrypoints.api.schemas_content import (
    ContactExport,
    ContentCreate,
    ContentImportRead,
    ContentPage,
    ContentRead,
    ContentUpdate,
    NextContentRead,
)
from leadflow.services import content as content_services
from leadflow.services.content import MAX_RECOMMENDATIONS
from leadflow.services.export import export_contact

router = APIRouter(prefix="/api/v1")

CSV_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}, "example":
                 "key,title,url,maturity,format,premium,topics,language,summary\n"
                 "crm-guide,The CRM guide,/guides/crm,discovery,article,no,crm;sales,en,\n"}}}}


def item_read(item: ContentItem) -> dict[str, Any]:
    return {"id": item.id, "key": item.key, "title": item.title, "url": item.url,
            "path": item.path, "maturity": item.maturity, "format": item.format,
            "premium": item.premium, "topics": list(item.topics), "language": item.language,
            "summary": item.summary, "archived": item.archived}


def _editor(who: Principal) -> None:
    who.need_role("admin", "marketer", what="change the content library")


@router.post("/content", response_model=ContentRead, status_code=201, tags=["content"])
def content_create(body: ContentCreate, app: AppDep, who: Writer) -> dict[str, Any]:
    """Add an item to the library (admins and marketers)."""
    _editor(who)
    data = body.model_dump()
    item = ContentItem(**{**data, "topics": tuple(data["topics"])})
    return item_read(content_services.create_item(uow=app.uow(), ctx=app.ctx, item=item))


@router.get("/content", response_model=ContentPage, tags=["content"])
def content_list(
    app: AppDep, _: Reader,
    maturity: Annotated[str | None, Query(description="discovery, evaluation, decision")]
    = None,
    format: str | None = None, language: str | None = None, topic: str | None = None,
    archived: Annotated[bool, Query(description="Include archived items")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Items by key, with filters, a page at a time."""
    page = content_services.list_items(uow=app.reader(), maturity=maturity, format=format,
                                       language=language, topic=topic,
                                       include_archived=archived, limit=limit, offset=offset)
    return {"items": [item_read(i) for i in page.items], "total": page.total, "limit": limit,
            "offset": offset}


@router.post("/content/import", response_model=ContentImportRead, tags=["content"],
             openapi_extra=CSV_BODY)
async def content_import(request: Request, app: AppDep, who: Writer) -> dict[str, Any]:
    """Create or update one item per CSV row (columns key, title, url, maturity, format; and
    optionally premium, topics separated by ';' or '|', language, summary). Bad rows are
    listed with their line and field while the good rows import; a file that is not CSV or
    whose header is wrong is refused (422) and nothing is written."""
    _editor(who)
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the body is not UTF-8 text (byte {exc.start})",
                           field="body") from None
    report = await run_in_threadpool(
        lambda: content_services.import_items(uow=app.uow(), ctx=app.ctx, text=text))
    return {"rows": report.rows, "created": report.created, "updated": report.updated,
            "unchanged": report.unchanged,
            "bad_rows": [{"line": i.line, "field": i.field, "reason": i.reason}
                         for i in report.bad]}


@router.get("/content/{key}", response_model=ContentRead, tags=["content"])
def content_get(key: str, app: AppDep, _: Reader) -> dict[str, Any]:
    return item_read(content_services.get_item(uow=app.reader(), key=key))


@router.patch("/content/{key}", response_model=ContentRead, tags=["content"])
def content_update(key: str, body: ContentUpdate, app: AppDep, who: Writer) -> dict[str, Any]:
    """Change the fields given (admins and marketers); ``topics`` replaces the list."""
    _editor(who)
    return item_read(content_services.update_item(
        uow=app.uow(), ctx=app.ctx, key=key, changes=body.model_dump(exclude_unset=True)))


@router.delete("/content/{key}", status_code=204, tags=["content"])
def content_archive(key: str, app: AppDep, who: Writer) -> Response:
    """Archive the item: out of lists and recommendations; emails and forms keep it."""
    _editor(who)
    content_services.archive_item(uow=app.uow(), ctx=app.ctx, key=key)
    return Response(status_code=204)


def _recommendation(r: Recommendation) -> dict[str, Any]:
    return {"item": item_read(r.item), "score": r.score, "reasons": list(r.reasons)}


@router.get("/contacts/{contact_id}/next-content", response_model=NextContentRead,
            tags=["content"])
def contacts_next_content(contact_id: int, app: AppDep, _: ContactReader,
                          limit: Annotated[int, Query(ge=1, le=MAX_RECOMMENDATIONS)] = 5
                          ) -> dict[str, Any]:
    """The unseen items that fit the contact's stage, language and topics, best first, each
    with why."""
    found = content_services.next_best_for(uow=app.reader(), ctx=app.ctx,
                                           contact_id=contact_id, limit=limit)
    return {"contact_id": found.contact_id, "stage": found.stage,
            "stage_role": found.stage_role, "language": found.language,
            "maturities": list(found.maturities), "consumed": list(found.consumed),
            "recommendations": [_recommendation(r) for r in found.recommendations],
            "note": found.note}


@router.get("/contacts/{contact_id}/export", response_model=ContactExport, tags=["contacts"])
def contacts_export(contact_id: int, app: AppDep, _: ContactReader) -> dict[str, Any]:
    """Everything held about one contact, as JSON (what the person may ask to see)."""
    return export_contact(uow=app.reader(), ctx=app.ctx, contact_id=contact_id)
