"""Saved segments and the contact list's filters, through the services, on both databases."""

from __future__ import annotations

import pytest

from leadflow.bootstrap import App
from leadflow.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from leadflow.domain.users import Principal
from leadflow.services.segments import (
    check_filters,
    delete_segment,
    list_segments,
    open_segment,
    save_segment,
)
from leadflow.services.users import acting_as, create_user

SORTS = ("score", "-score", "name")


def person(app: App, email: str, role: str) -> Principal:
    user = create_user(uow=app.uow(), ctx=app.ctx, email=email, name=email.split("@")[0],
                       role=role, password="correct horse battery", team="west")
    return acting_as(uow=app.reader(), ref=user.id)


def test_filters_are_read_from_their_text_and_each_problem_named(app: App) -> None:
    good = check_filters(config=app.config, sorts=SORTS, values={
        "q": " ann ", "stage": "lead, prospect,lead", "temperature": "HOT,warm",
        "grade": "b+", "min_score": "2,5", "max_score": "40", "owner": "7",
        "source": "Website", "sort": "name", "milestone": "mql", "other": "ignored"})
    assert good.ok
    assert (good.search, good.stage, good.temperature, good.grade) == (
        "ann", ("lead", "prospect"), ("hot", "warm"), ("A", "B"))
    assert (good.min_score, good.max_score, good.owner_id, good.source, good.sort,
            good.milestone) == (2.5, 40.0, 7, "website", "name", "mql")
    assert good.text == {"q": "ann", "stage": "lead,prospect", "temperature": "hot,warm",
                         "grade": "B+", "min_score": "2,5", "max_score": "40", "owner": "7",
                         "source": "website", "sort": "name", "milestone": "mql"}
    assert check_filters(config=app.config, sorts=SORTS, values={"stage": ""}).text == {}

    bad = check_filters(config=app.config, sorts=SORTS, owner_ids={1, 2}, values={
        "stage": "lead,limbo", "temperature": "tepid", "grade": "E", "min_score": "-1",
        "max_score": "nan", "owner": "3", "sort": "shoe", "milestone": "x", "q": "a" * 201})
    assert {k: p.english() for k, p in bad.problems.items()} == {
        "stage": "Unknown stage 'limbo'.",
        "temperature": "Temperatures are hot, warm, new and cold; 'tepid' is none of them.",
        "grade": "Grades are A, B, C and D (or B+ for A and B); 'E' is none of them.",
        "min_score": "Enter a number of 0 or more.",
        "max_score": "Enter a number of 0 or more.",
        "owner": "Choose an owner from the list.",
        "sort": "Sort by one of the columns.",
        "milestone": "Unknown milestone 'x'.",
        "q": "Enter at most 200 characters.",
    }
    reversed_range = check_filters(config=app.config, sorts=SORTS,
                                   values={"min_score": "9", "max_score": "3"})
    assert list(reversed_range.problems) == ["max_score"]


def test_segments_are_per_user_unless_shared(app: App) -> None:
    mia = person(app, "mia@leadflow.test", "marketer")
    rita = person(app, "rita@leadflow.test", "sales_rep")
    ada = person(app, "ada@leadflow.test", "admin")
    mine = save_segment(uow=app.uow(), ctx=app.ctx, principal=mia, name="  Hot   leads ",
                        filters={"temperature": "hot", "stage": "lead", "junk": "x"},
                        shared=False, sorts=SORTS)
    assert mine.name == "Hot leads"
    assert mine.filters == {"temperature": "hot", "stage": "lead"}
    team = save_segment(uow=app.uow(), ctx=app.ctx, principal=mia, name="Good fits",
                        filters={"grade": "A"}, shared=True, sorts=SORTS)
    theirs = save_segment(uow=app.uow(), ctx=app.ctx, principal=rita, name="Hot leads",
                          filters={"temperature": "hot"}, shared=False, sorts=SORTS)
    assert [s.name for s in list_segments(uow=app.reader(), principal=mia)] == [
        "Good fits", "Hot leads"]
    assert [s.id for s in list_segments(uow=app.reader(), principal=rita)] == [
        team.id, theirs.id]

    with pytest.raises(Conflict) as taken:
        save_segment(uow=app.uow(), ctx=app.ctx, principal=mia, name="Hot leads",
                     filters={}, shared=False, sorts=SORTS)
    assert taken.value.field == "name"
    for name in ("", "x" * 101):
        with pytest.raises(InvalidInput) as refused:
            save_segment(uow=app.uow(), ctx=app.ctx, principal=mia, name=name, filters={},
                         shared=False, sorts=SORTS)
        assert refused.value.field == "name"
    with pytest.raises(InvalidInput) as wrong:
        save_segment(uow=app.uow(), ctx=app.ctx, principal=mia, name="Broken",
                     filters={"grade": "Z"}, shared=False, sorts=SORTS)
    assert wrong.value.field == "grade"
    assert len(list_segments(uow=app.reader(), principal=mia)) == 2

    assert open_segment(uow=app.reader(), principal=rita, segment_id=team.id) == team
    for who in (rita, ada):  # a private segment is its author's alone
        with pytest.raises(NotFound):
            open_segment(uow=app.reader(), principal=who, segment_id=mine.id)
        with pytest.raises(NotFound):
            delete_segment(uow=app.uow(), principal=who, segment_id=mine.id)
    with pytest.raises(Forbidden):
        delete_segment(uow=app.uow(), principal=rita, segment_id=team.id)
    assert delete_segment(uow=app.uow(), principal=ada, segment_id=team.id) == team
    assert delete_segment(uow=app.uow(), principal=mia, segment_id=mine.id) == mine
    assert list_segments(uow=app.reader(), principal=mia) == []
    with pytest.raises(NotFound):
        open_segment(uow=app.reader(), principal=mia, segment_id=mine.id)
