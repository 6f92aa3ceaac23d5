"""The sales pages: a rep's queue (hot first; managers pick their team, see the cracks), the
task list (complete with an outcome), the opportunity board (move, win, lose) and who may
see and change what."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.sales_page_reads import opportunity_board, queue_details, task_page
from leadflow.bootstrap import App
from leadflow.domain.model import Contact
from leadflow.domain.sales import Opportunity
from leadflow.domain.users import User
from leadflow.services.assignments import reassign
from leadflow.services.events import EventIn, record_event
from leadflow.services.moves import qualify
from leadflow.services.opportunities import create_opportunity
from tests.conftest import FakeClock, good_fit_contact
from tests.web.conftest import People, screenshot

DAY = 86400.0
PREMIUM = {"type": "content_download", "premium": True}


def prospect(app: App, owner: User, name: str, temperature: str = "hot") -> int:
    """A good-fit prospect owned by ``owner``: hot (a demo request), warm (held back by
    budget), new (a white paper) or cold (found by outbound prospecting)."""
    c = good_fit_contact(app, email=f"{name.lower()}@acme.example", first_name=name,
                         source="outbound" if temperature == "cold" else None)
    assert c.id is not None
    event = EventIn(type="demo_request", contact_id=c.id) if temperature == "hot" else \
        EventIn(type="content_download", premium=True, contact_id=c.id)
    record_event(uow=app.uow(), ctx=app.ctx, event=event)
    if temperature == "warm":
        qualify(uow=app.uow(), ctx=app.ctx, contact_id=c.id, answers={"budget": "none"})
    if contact(app, c.id).owner_id != owner.id:
        reassign(uow=app.uow(), ctx=app.ctx, contact_id=c.id, owner=owner.id,
                 reason="test set-up", actor="test")
    got = contact(app, c.id)
    assert (got.stage, got.temperature, got.owner_id) == ("prospect", temperature, owner.id)
    return c.id


def contact(app: App, contact_id: int) -> Contact:
    with app.reader() as uow:
        found = uow.contacts.get(contact_id)
    assert found is not None
    return found


def open_tasks(app: App, contact_id: int) -> list[Any]:
    with app.engine.connect() as conn:
        return list(conn.execute(select(t.tasks).where(
            t.tasks.c.contact_id == contact_id, t.tasks.c.done_at.is_(None))
            .order_by(t.tasks.c.due_at)).all())


def task_row(app: App, task_id: int) -> Any:
    with app.engine.connect() as conn:
        return conn.execute(select(t.tasks).where(t.tasks.c.id == task_id)).one()


def deal(app: App, contact_id: int, name: str, amount: float, *, stage: str = "discovery",
         currency: str = "EUR", owner: User | None = None) -> Opportunity:
    return create_opportunity(uow_factory=app.uow, ctx=app.ctx, contact_id=contact_id,
                              name=name, amount=amount, currency=currency,
                              expected_close="2026-04-30", deal_stage=stage,
                              next_step="send the contract",
                              owner_id=owner.id if owner else None, actor="test")


def deal_row(app: App, deal_id: int) -> Opportunity:
    with app.reader() as uow:
        found = uow.opportunities.get(deal_id)
    assert found is not None
    return found


def ids_in(html: str, section: str, attribute: str = "data-contact") -> list[int]:
    """The ids of the rows of one section of a page, in their order."""
    start = html.index(f'id="{section}"')
    end = html.find("</section>", start)
    return [int(x) for x in re.findall(fr'{attribute}="(\d+)"', html[start:end])]


def column(html: str, stage: str) -> str:
    start = html.index(f'data-stage="{stage}"')
    return html[start:html.find("</section>", start)]


# ---------------------------------------------------------------- the queue


def test_the_queue_shows_hot_prospects_first_then_warm_new_cold(web: Any, app: App,
                                                                people: People) -> None:
    cold = prospect(app, people.rep, "Cole", "cold")
    new = prospect(app, people.rep, "Nina", "new")
    hot = prospect(app, people.rep, "Hugo", "hot")
    warm = prospect(app, people.rep, "Wanda", "warm")
    theirs = prospect(app, people.other_rep, "Otis", "hot")
    page = web().login(people.rep).get("/queue")
    assert page.status_code == 200
    assert ids_in(page.text, "prospects") == [hot, warm, new, cold]
    assert set(ids_in(page.text, "tasks", "data-task")) == {
        x.id for c in (cold, new, hot, warm) for x in open_tasks(app, c)}
    assert f'href="/contacts/{hot}"' in page.text
    assert f"/contacts/{theirs}" not in page.text
    assert 'id="cracks"' not in page.text  # a rep has no cracks list
    assert 'id="pick"' not in page.text  # nor anyone to pick


def test_a_rep_with_nothing_to_do_sees_an_empty_queue(web: Any, people: People) -> None:
    page = web().login(people.rep).get("/queue")
    assert page.status_code == 200
    assert "Nothing to do right now." in page.text


def test_a_manager_picks_a_team_member_and_no_one_else(web: Any, app: App,
                                                      people: People) -> None:
    mine = prospect(app, people.rep, "Hugo")
    east = prospect(app, people.other_rep, "Otis")
    manager = web().login(people.manager)
    own = manager.get("/queue")
    assert own.status_code == 200
    assert f'<option value="{people.rep.id}"' in own.text
    assert f'<option value="{people.other_rep.id}"' not in own.text
    picked = manager.get(f"/queue?owner={people.rep.id}")
    assert picked.status_code == 200
    assert "Queue of Rita Rep" in picked.text
    assert ids_in(picked.text, "prospects") == [mine]
    assert 'id="cracks"' in picked.text
    refused = manager.get(f"/queue?owner={people.other_rep.id}")
    assert refused.status_code == 403
    assert f"/contacts/{east}" not in refused.text
    rep = web().login(people.rep)
    assert rep.get(f"/queue?owner={people.other_rep.id}").status_code == 403
    admin = web().login(people.admin)
    assert "Pick a sales rep to see their queue." in admin.get("/queue").text
    assert ids_in(admin.get(f"/queue?owner={people.other_rep.id}").text,
                  "prospects") == [east]


def test_the_cracks_list_shows_team_prospects_without_a_next_task(web: Any, app: App,
                                                                  people: People) -> None:
    cid = prospect(app, people.rep, "Hugo")
    east = prospect(app, people.other_rep, "Otis")
    with app.engine.begin() as conn:  # as if a task were lost: nothing keeps it open
        conn.execute(t.tasks.delete().where(t.tasks.c.contact_id.in_([cid, east])))
    page = web().login(people.manager).get("/queue")
    assert ids_in(page.text, "cracks") == [cid]


def test_accept_and_reject_a_handed_over_prospect_from_the_queue(web: Any, app: App,
                                                                 people: People) -> None:
    kept, sent_back = prospect(app, people.rep, "Hugo"), prospect(app, people.rep, "Ivan")
    rep = web().login(people.rep)
    rep.get("/queue")
    accepted = rep.post(f"/queue/{kept}/accept", {"back": "/queue"})
    assert accepted.status_code == 303
    assert accepted.headers["location"] == "/queue"
    assert "sal" in contact(app, kept).milestones
    page = rep.get("/queue")
    assert "Accepted: the prospect is yours to work." in page.text
    assert f'action="/queue/{kept}/accept"' not in page.text
    again = rep.post(f"/queue/{kept}/accept", {"back": "/queue"})
    assert again.status_code == 303
    assert "accepted already" in rep.get("/queue").text

    blank = rep.post(f"/queue/{sent_back}/reject", {"reason": "  ", "back": "/queue"})
    assert blank.status_code == 422
    assert "Say why you send this prospect back." in blank.text
    assert 'aria-invalid="true"' in blank.text
    assert contact(app, sent_back).stage == "prospect"
    rejected = rep.post(f"/queue/{sent_back}/reject", {"reason": "a student project",
                                                       "back": "/queue"})
    assert rejected.status_code == 303
    assert contact(app, sent_back).stage == "lead"
    assert sent_back not in ids_in(rep.get("/queue").text, "prospects")


def test_a_rep_cannot_act_on_another_reps_prospect(web: Any, app: App, people: People) -> None:
    theirs = prospect(app, people.other_rep, "Otis")
    rep = web().login(people.rep)
    assert rep.post(f"/queue/{theirs}/accept", {"back": "/queue"}).status_code == 403
    assert rep.post(f"/queue/{theirs}/reject", {"reason": "no"}).status_code == 403
    assert rep.post("/queue/999999/accept").status_code == 404
    assert contact(app, theirs).stage == "prospect"
    assert "sal" not in contact(app, theirs).milestones
    manager = web().login(people.manager)  # team west; Otis is east's
    assert manager.post(f"/queue/{theirs}/accept").status_code == 403


# ---------------------------------------------------------------- tasks


def test_tasks_are_grouped_overdue_first_and_completed_with_an_outcome(
        web: Any, app: App, people: People, clock: FakeClock) -> None:
    late = prospect(app, people.rep, "Hugo")  # hot: due in 4 working hours
    clock.advance(2 * DAY)
    soon = prospect(app, people.rep, "Nina", "new")  # new: due in 5 working days
    [overdue_task] = open_tasks(app, late)
    [upcoming_task] = open_tasks(app, soon)
    rep = web().login(people.rep)
    page = rep.get("/tasks")
    assert page.status_code == 200
    assert ids_in(page.text, "overdue", "data-task") == [overdue_task.id]
    assert ids_in(page.text, "upcoming", "data-task") == [upcoming_task.id]
    assert page.text.index('id="overdue"') < page.text.index('id="upcoming"')

    done = rep.post(f"/tasks/{overdue_task.id}/complete",
                    {"outcome": "called, wants a demo next week", "back": "/tasks"})
    assert done.status_code == 303
    assert done.headers["location"] == "/tasks"
    row = task_row(app, overdue_task.id)
    assert row.done_at is not None
    assert row.outcome == "called, wants a demo next week"
    assert people.rep.email in row.done_by
    [following] = open_tasks(app, late)  # a prospect always keeps a next task
    after = rep.get("/tasks")
    assert "Task done. The next follow-up is due" in after.text
    assert 'id="overdue"' not in after.text
    assert following.id in ids_in(after.text, "upcoming", "data-task")
    finished = rep.get("/tasks?status=done")
    assert ids_in(finished.text, "done", "data-task") == [overdue_task.id]
    assert "called, wants a demo next week" in finished.text
    again = rep.post(f"/tasks/{overdue_task.id}/complete", {"outcome": "x", "back": "/tasks"})
    assert again.status_code == 303
    assert "is done already" in rep.get("/tasks").text


def test_a_bad_outcome_is_shown_next_to_its_field_and_nothing_changes(
        web: Any, app: App, people: People) -> None:
    cid = prospect(app, people.rep, "Hugo")
    [task] = open_tasks(app, cid)
    rep = web().login(people.rep)
    rep.get("/queue")
    answer = rep.post(f"/tasks/{task.id}/complete", {"outcome": "x" * 2001, "back": "/queue"})
    assert answer.status_code == 422
    assert "At most 2000 characters." in answer.text
    assert ids_in(answer.text, "prospects") == [cid]  # the queue, again
    assert task_row(app, task.id).done_at is None


def test_completing_a_task_from_the_queue_comes_back_to_it(web: Any, app: App,
                                                           people: People) -> None:
    cid = prospect(app, people.rep, "Hugo")
    [task] = open_tasks(app, cid)
    manager = web().login(people.manager)
    back = f"/queue?owner={people.rep.id}"
    page = manager.get(back)
    assert f'action="/tasks/{task.id}/complete"' in page.text
    answer = manager.post(f"/tasks/{task.id}/complete", {"outcome": "left a voicemail",
                                                         "back": back})
    assert answer.headers["location"] == back
    assert task_row(app, task.id).outcome == "left a voicemail"


def test_who_sees_and_completes_which_tasks(web: Any, app: App, people: People) -> None:
    west = prospect(app, people.rep, "Hugo")
    east = prospect(app, people.other_rep, "Otis")
    [west_task], [east_task] = open_tasks(app, west), open_tasks(app, east)
    rep = web().login(people.rep)
    seen = rep.get("/tasks").text
    assert f'data-task="{west_task.id}"' in seen
    assert f'data-task="{east_task.id}"' not in seen
    assert rep.get(f"/tasks?owner={people.other_rep.id}").status_code == 403
    assert rep.post(f"/tasks/{east_task.id}/complete", {"outcome": "x"}).status_code == 403
    assert rep.post("/tasks/999999/complete", {"outcome": "x"}).status_code == 404
    assert task_row(app, east_task.id).done_at is None
    manager = web().login(people.manager)
    team = manager.get("/tasks").text
    assert f'data-task="{west_task.id}"' in team
    assert f'data-task="{east_task.id}"' not in team
    assert manager.get(f"/tasks?owner={people.other_rep.id}").status_code == 403
    admin = web().login(people.admin)
    everyone = admin.get("/tasks").text
    assert f'data-task="{west_task.id}"' in everyone
    assert f'data-task="{east_task.id}"' in everyone
    only_east = admin.get(f"/tasks?owner={people.other_rep.id}").text
    assert f'data-task="{west_task.id}"' not in only_east
    assert f'data-task="{east_task.id}"' in only_east


def test_no_open_tasks_shows_an_empty_state(web: Any, people: People) -> None:
    page = web().login(people.rep).get("/tasks")
    assert page.status_code == 200
    assert "No open tasks." in page.text


# ---------------------------------------------------------------- opportunities


def test_the_board_has_a_column_per_deal_stage_with_counts_and_totals(
        web: Any, app: App, people: People) -> None:
    a, b = prospect(app, people.rep, "Hugo"), prospect(app, people.rep, "Ivan")
    first = deal(app, a, "Acme, 50 seats", 20000)
    deal(app, b, "Acme, support", 10000)
    proposal = deal(app, b, "Acme, training", 5000, stage="proposal")
    page = web().login(people.rep).get("/opportunities")
    assert page.status_code == 200
    assert list(re.findall(r'data-stage="(\w+)"', page.text)) == [
        "discovery", "proposal", "negotiation"]
    discovery = column(page.text, "discovery")
    assert "2 deals" in discovery
    assert "30,000\u00a0EUR" in discovery
    assert "weighted 3,000\u00a0EUR" in discovery  # 10 % of 30,000
    assert ids_in(page.text, "board", "data-deal").count(first.id) == 1
    assert "Acme, 50 seats" in discovery
    assert "send the contract" in discovery
    assert "Rita Rep" in discovery
    assert f'href="/contacts/{a}"' in discovery
    assert "weighted 2,000\u00a0EUR" in column(page.text, "proposal")  # 40 % of 5,000
    assert f'data-deal="{proposal.id}"' in column(page.text, "proposal")
    assert "No deals at this stage." in column(page.text, "negotiation")


def test_moving_a_deal_to_another_stage(web: Any, app: App, people: People) -> None:
    cid = prospect(app, people.rep, "Hugo")
    made = deal(app, cid, "Acme, 50 seats", 20000)
    rep = web().login(people.rep)
    rep.get("/opportunities")
    moved = rep.post(f"/opportunities/{made.id}/stage", {"deal_stage": "negotiation",
                                                         "back": "/opportunities"})
    assert moved.status_code == 303
    after = deal_row(app, made.id)
    assert (after.deal_stage, after.probability) == ("negotiation", 0.7)
    page = rep.get("/opportunities")
    assert f'data-deal="{made.id}"' in column(page.text, "negotiation")
    assert "Acme, 50 seats moved to Negotiation." in page.text
    wrong = rep.post(f"/opportunities/{made.id}/stage", {"deal_stage": "signed",
                                                         "back": "/opportunities"})
    assert wrong.status_code == 422
    assert "Pick one of the deal stages." in wrong.text
    assert deal_row(app, made.id).deal_stage == "negotiation"


def test_winning_a_deal_makes_its_contact_a_customer(web: Any, app: App,
                                                     people: People) -> None:
    cid = prospect(app, people.rep, "Hugo")
    made = deal(app, cid, "Acme, 50 seats", 20000)
    rep = web().login(people.rep)
    page = rep.get("/opportunities")
    assert "data-confirm=" in page.text  # the browser asks before
    won = rep.post(f"/opportunities/{made.id}/win", {"back": "/opportunities"})
    assert won.status_code == 303
    assert deal_row(app, made.id).status == "won"
    assert contact(app, cid).stage == "customer"
    assert "The contact is a customer now." in rep.get("/opportunities").text
    listed = rep.get("/opportunities?view=list&status=won")
    assert ids_in(listed.text, "deal-list", "data-deal") == [made.id]
    again = rep.post(f"/opportunities/{made.id}/win", {"back": "/opportunities"})
    assert again.status_code == 303
    assert "won already" in rep.get("/opportunities").text


def test_losing_a_deal_needs_a_reason_and_sends_the_contact_to_nurture(
        web: Any, app: App, people: People) -> None:
    cid = prospect(app, people.rep, "Hugo")
    made = deal(app, cid, "Acme, 50 seats", 20000)
    rep = web().login(people.rep)
    rep.get("/opportunities")
    blank = rep.post(f"/opportunities/{made.id}/lose", {"reason": "", "note": "went quiet",
                                                        "back": "/opportunities"})
    assert blank.status_code == 422
    assert "Pick why the deal was lost." in blank.text
    assert "went quiet" in blank.text  # what was typed stays
    assert deal_row(app, made.id).status == "open"
    unknown = rep.post(f"/opportunities/{made.id}/lose", {"reason": "bad luck",
                                                          "back": "/opportunities"})
    assert unknown.status_code == 422
    assert "unknown lost reason" in unknown.text
    lost = rep.post(f"/opportunities/{made.id}/lose", {
        "reason": "competitor", "then": "nurture", "note": "went with BigCo",
        "back": "/opportunities?view=list&status=all"})
    assert lost.status_code == 303
    assert lost.headers["location"] == "/opportunities?view=list&status=all"
    after = deal_row(app, made.id)
    assert (after.status, after.lost_reason) == ("lost", "competitor")
    assert contact(app, cid).stage == "lead"  # back to nurture, not erased
    listed = rep.get(lost.headers["location"])
    assert ids_in(listed.text, "deal-list", "data-deal") == [made.id]
    assert "Lost: Acme, 50 seats (competitor)." in listed.text


def test_a_rep_never_reaches_another_reps_deal(web: Any, app: App, people: People) -> None:
    mine = deal(app, prospect(app, people.rep, "Hugo"), "West deal", 1000)
    theirs = deal(app, prospect(app, people.other_rep, "Otis"), "East deal", 2000)
    rep = web().login(people.rep)
    board = rep.get("/opportunities").text
    assert "West deal" in board
    assert "East deal" not in board
    assert "East deal" not in rep.get(
        f"/opportunities?view=list&owner={people.other_rep.id}").text
    for action, body in (("stage", {"deal_stage": "proposal"}), ("win", {}),
                         ("lose", {"reason": "price"})):
        assert rep.post(f"/opportunities/{theirs.id}/{action}", body).status_code == 403
        assert rep.post(f"/opportunities/999999/{action}", body).status_code == 404
    assert deal_row(app, theirs.id).status == "open"
    assert deal_row(app, theirs.id).deal_stage == "discovery"
    manager = web().login(people.manager)
    team = manager.get("/opportunities").text
    assert "West deal" in team
    assert "East deal" not in team
    assert manager.post(f"/opportunities/{theirs.id}/win").status_code == 403
    admin = web().login(people.admin)
    only_east = admin.get(f"/opportunities?owner={people.other_rep.id}").text
    assert "East deal" in only_east
    assert "West deal" not in only_east
    assert deal_row(app, mine.id).status == "open"


def test_no_deals_shows_an_empty_state(web: Any, people: People) -> None:
    client = web().login(people.rep)
    assert "No deals here yet." in client.get("/opportunities").text
    assert "No deals match." in client.get("/opportunities?view=list&status=lost").text


def test_the_pages_read_in_french(web: Any, app: App, people: People) -> None:
    cid = prospect(app, people.rep, "Hugo")
    deal(app, cid, "Acme, 50 seats", 20000)
    client = web().login(people.rep)
    client.post("/language", {"lang": "fr", "next": "/queue"})
    assert "chaud" in client.get("/queue").text
    assert "Découverte" in client.get("/opportunities").text
    assert "Tâches" in client.get("/tasks").text


# ---------------------------------------------------------------- the read models


def test_the_board_read_sums_each_stage_by_currency_within_what_one_sees(
        app: App, people: People) -> None:
    a, b = prospect(app, people.rep, "Hugo"), prospect(app, people.other_rep, "Otis")
    deal(app, a, "one", 1000)
    deal(app, a, "two", 500, currency="USD")
    late = deal(app, a, "three", 200, stage="proposal")
    deal(app, b, "east", 9000)
    with app.engine.begin() as conn:  # a stage the configuration no longer has
        conn.execute(t.opportunities.update().where(t.opportunities.c.id == late.id)
                     .values(deal_stage="legacy", expected_close=None))
    with app.engine.connect() as conn:
        west = opportunity_board(conn, visible_owners=(people.rep.id,), owner_id=None,
                                 status="open", stages=["discovery", "proposal"],
                                 per_column=1)
        everyone = opportunity_board(conn, visible_owners=None, owner_id=None, status=None,
                                     stages=["discovery"], per_column=10)
        won = opportunity_board(conn, visible_owners=None, owner_id=None, status="won",
                                stages=["discovery"], per_column=10)
    assert list(west) == ["discovery", "proposal", "legacy"]
    assert west["discovery"]["count"] == 2
    assert west["discovery"]["sums"] == {"EUR": [1000.0, 100.0], "USD": [500.0, 50.0]}
    assert len(west["discovery"]["cards"]) == 1  # per_column
    assert west["proposal"] == {"count": 0, "sums": {}, "cards": []}
    assert [c["name"] for c in west["legacy"]["cards"]] == ["three"]
    assert west["legacy"]["cards"][0]["account"] == "Acme"
    assert everyone["discovery"]["count"] == 3
    assert won["discovery"]["count"] == 0


def test_the_task_read_orders_open_by_due_and_done_by_when(app: App, people: People,
                                                          clock: FakeClock) -> None:
    first = prospect(app, people.rep, "Hugo")
    clock.advance(DAY)
    second = prospect(app, people.rep, "Ivan")
    east = prospect(app, people.other_rep, "Otis")
    [t1], [t2], [t3] = (open_tasks(app, c) for c in (first, second, east))
    with app.uow() as uow:
        uow.tasks.complete(t2.id, at=clock.now(), by="test", outcome="met")
        uow.commit()
    now = clock.now()
    with app.engine.connect() as conn:
        mine, total = task_page(conn, owners=(people.rep.id,), owner_id=None, status="open",
                                now=now, limit=10, offset=0)
        everyone, _ = task_page(conn, owners=None, owner_id=None, status="open", now=now,
                                limit=10, offset=0)
        done, done_total = task_page(conn, owners=None, owner_id=people.rep.id,
                                     status="done", now=now, limit=10, offset=0)
        details = queue_details(conn, contact_ids=[first, second], milestone="sal")
    assert ([r["id"] for r in mine], total) == ([t1.id], 1)
    assert mine[0]["overdue"]
    assert mine[0]["name"] == "Hugo"
    assert mine[0]["owner"] == "Rita Rep"
    assert [r["id"] for r in everyone] == [t1.id, t3.id]
    assert ([r["id"] for r in done], done_total) == ([t2.id], 1)
    assert done[0]["outcome"] == "met"
    assert details[first]["next_task"]["id"] == t1.id
    assert details[second]["next_task"] is None
    assert not details[first]["accepted"]


# ---------------------------------------------------------------- in a browser


def test_the_queue_in_a_browser(browse: Any, app: App, people: People,
                                clock: FakeClock) -> None:
    for name, temperature in (("Camille", "cold"), ("Nora", "new"), ("Hugo", "hot"),
                              ("Wanda", "warm"), ("Helene", "hot")):
        prospect(app, people.rep, name, temperature)
    clock.advance(DAY)  # the hot ones' follow-ups are overdue by now
    page = browse(people.rep)
    page.goto("/queue")
    temperatures = page.locator("#prospects tr.prospect").evaluate_all(
        "rows => rows.map(r => r.dataset.temperature)")
    assert temperatures == ["hot", "hot", "warm", "new", "cold"]
    assert page.locator("#tasks li.overdue").count() == 2
    screenshot(page, "queue")
