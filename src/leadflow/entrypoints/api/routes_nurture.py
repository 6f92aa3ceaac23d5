"""REST: nurture tracks (from the configuration and defined here), who is in them, and a
nurture pass on demand."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from leadflow.domain.nurture import Track
from leadflow.entrypoints.api.auth import AppDep, Reader, Writer
from leadflow.services import nurture

router = APIRouter(prefix="/api/v1/nurture", tags=["nurture"])


def _track(track: Track, counts: dict[str, int]) -> dict[str, Any]:
    return {**asdict(track), "members": counts}


@router.get("/tracks")
def tracks(app: AppDep, _: Reader) -> list[dict[str, Any]]:
    """Every track with its steps and how many contacts are active in it, done or left."""
    with app.reader() as uow:
        counts = uow.enrollments.counts()
        return [_track(t, counts.get(t.key, {})) for t in nurture.all_tracks(uow, app.ctx)]


@router.put("/tracks/{key}")
def define(key: str, app: AppDep, who: Writer,
           definition: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Define or replace a track (same shape as in the configuration's ``nurture.tracks``);
    422 lists each problem with its location."""
    who.need_role("admin", "marketer", what="define nurture tracks")
    track = nurture.define_track(uow=app.uow(), ctx=app.ctx,
                                 definition={**definition, "key": key})
    return _track(track, {})


@router.delete("/tracks/{key}", status_code=204)
def retire(key: str, app: AppDep, who: Writer) -> Response:
    """Retire a track defined through the API: its members leave it at the next pass."""
    who.need_role("admin", "marketer", what="retire nurture tracks")
    nurture.retire_track(uow=app.uow(), ctx=app.ctx, key=key)
    return Response(status_code=204)


@router.get("/tracks/{key}/members")
def members(key: str, app: AppDep, who: Reader,
            status: Annotated[str | None, Query(pattern="^(active|done|left)$")] = None,
            limit: Annotated[int, Query(ge=1, le=500)] = 50,
            offset: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
    """Contacts in a track, newest first, with their step and when it runs next."""
    who.need_role("admin", "marketer", what="list track members")
    with app.reader() as uow:
        return [asdict(e) for e in uow.enrollments.members(key, status=status, limit=limit,
                                                           offset=offset)]


@router.post("/run")
def run(app: AppDep, who: Writer) -> dict[str, Any]:
    """A nurture pass now (the worker runs one every minute): sync members, answer
    milestones, run due steps. Sending is the worker's."""
    who.need_role("admin", "marketer", what="run nurture")
    return asdict(nurture.tick(uow=app.uow, ctx=app.ctx))
