"""The contact page: what it shows (scores with their breakdown, stage history, timeline...),
each action on it (posted with CSRF, redirected after, refused values shown next to their
field with nothing written), and who may see and do what: the REST routes' rights."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.domain.content import ContentItem
from leadflow.domain.mail_policy import SENT
from leadflow.domain.model import Contact
from leadflow.domain.users import User
from leadflow.services import activities, followup, moves
from leadflow.services.common import load_contact
from leadflow.services.contacts import AccountIn, ContactIn, create_contact
from leadflow.services.content import create_item
from leadflow.services.events import EventIn, IdentifyIn, identify, record_event
from leadflow.services.mail_queue import queue_asset
from leadflow.services.users import acting_as
from tests.conftest import FakeClock
from tests.web.conftest import People, screenshot

HOUR = 3600.0
DAY = 86400.0


def contact(app: App, owner: User | None, email: str = "ann@acme.example",
            **fields: Any) -> int:
    """A director at a 300-person software company in France (fit grade A), owned by
    ``owner``: a suspect until it shows interest."""
    data: dict[str, Any] = {"first_name": "Ann", "last_name": "Archer", "title": "CTO",
                            "seniority": "director", "country": "FR", "source": "webinar"}
    data.update(fields)
    made = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
        email=email, account=AccountIn(name="Acme", domain="acme.example",
                                       industry="software", employees=300, country="FR"),
        **data), owner_id=owner.id if owner else None)
    assert made.id is not None
    return made.id


def event(app: App, contact_id: int, kind: str, **fields: Any) -> None:
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type=kind, contact_id=contact_id,
                                                           **fields))


def prospect(app: App, owner: User, email: str = "ann@acme.example", **fields: Any) -> int:
    """A good fit who asked for a demo: a hot prospect of ``owner``, with a follow-up task."""
    cid = contact(app, owner, email, **fields)
    event(app, cid, "demo_request")
    assert stage_of(app, cid) == "prospect"
    return cid


def rich(app: App, clock: FakeClock, people: People) -> int:
    """A prospect of the rep with a history: visits, a download, an email sent and opened,
    a demo request, a call logged, a task, a stage moved by hand and back."""
    cid = contact(app, people.rep)
    guide = create_item(uow=app.uow(), ctx=app.ctx, item=ContentItem(
        key="crm-guide", title="The CRM guide", url="https://acme.example/guides/crm",
        maturity="discovery", format="white_paper"))
    create_item(uow=app.uow(), ctx=app.ctx, item=ContentItem(
        key="pricing-sheet", title="Pricing sheet", url="/pricing/sheet",
        maturity="decision", format="pricing"))
    create_item(uow=app.uow(), ctx=app.ctx, item=ContentItem(
        key="roi-calculator", title="ROI calculator", url="https://acme.example/roi",
        maturity="evaluation", format="case_study"))
    for path in ("/", "/product", "/pricing"):
        event(app, cid, "page_view", url=f"https://acme.example{path}")
        clock.advance(HOUR)
    event(app, cid, "content_download", url="https://acme.example/guides/crm",
          content_stage="discovery", properties={"item": "crm-guide"})
    with app.uow() as uow:  # the guide went out by email, and was opened and clicked
        mail_id = queue_asset(uow, contact_id=cid, item=guide, form_key="guide",
                              submission="1", at=clock.now())
        assert mail_id is not None
        uow.mail.finish(mail_id, status=SENT, at=clock.now(), subject="Your CRM guide")
        uow.mail.mark_clicked(mail_id, clock.now() + 600)
        uow.commit()
    clock.advance(DAY)
    event(app, cid, "demo_request")
    clock.advance(HOUR)
    rep = acting_as(uow=app.reader(), ref=people.rep.id)
    activities.log_activity(uow=app.uow(), ctx=app.ctx, contact_id=cid, principal=rep,
                            data=activities.ActivityIn(kind="call", direction="outbound",
                                                       subject="Discovery call",
                                                       body="Wants a demo for 12 people."))
    followup.create_task(uow=app.uow(), ctx=app.ctx, contact_id=cid, kind="meeting",
                         title="Demo with the IT team", due_at=clock.now() + 2 * DAY,
                         actor=rep.name)
    clock.advance(HOUR)
    moves.move_stage(uow=app.uow(), ctx=app.ctx, contact_id=cid, to_stage="opportunity",
                     reason="Verbal yes on the call", actor=rep.name)
    clock.advance(HOUR)
    moves.move_stage(uow=app.uow(), ctx=app.ctx, contact_id=cid, to_stage="prospect",
                     reason="No budget before the summer after all", actor=rep.name)
    clock.advance(HOUR)
    return cid


def stage_of(app: App, contact_id: int) -> str:
    return row(app, contact_id).stage


def row(app: App, contact_id: int) -> Contact:
    with app.reader() as uow:
        return load_contact(uow, contact_id)


def count(app: App, table: Any, contact_id: int) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)
                                .where(table.c.contact_id == contact_id)).scalar_one())


def tasks(app: App, contact_id: int) -> list[Any]:
    with app.engine.connect() as conn:
        return list(conn.execute(select(t.tasks).where(t.tasks.c.contact_id == contact_id)
                                 .order_by(t.tasks.c.id)).all())


def error_of(html: str, form: str, field: str) -> str:
    """The message shown under a form's field (empty when none)."""
    found = re.search(rf'id="{form}-{field}-error">([^<]*)<', html)
    return found.group(1) if found else ""


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash [a-z]+" role="status">([^<]*)</p>', html)


def test_the_page_explains_scores_stage_history_and_timeline(web: Any, app: App,
                                                             clock: FakeClock,
                                                             people: People) -> None:
    cid = rich(app, clock, people)
    page = web().login(people.rep).get(f"/contacts/{cid}")
    assert page.status_code == 200
    html = page.text
    # Identity and account.
    for text in ("Ann Archer", "ann@acme.example", "CTO", "director", "FR", "webinar",
                 "2026-03-02 09:00", "Acme", "acme.example", "software", "300 employees"):
        assert text in html, text
    # Engagement: rule by rule, at the last event and decayed to now.
    for rule in ("demo_request", "page_view", "pricing_page", "content_download",
                 "call_answered"):
        assert f'data-rule="{rule}"' in html, rule
    assert "halves every 30 days" in html
    # Fit: criterion by criterion; no predicted score is made up.
    assert "IT leader in a mid-size company" in html
    for criterion in ("contact.seniority", "account.employees", "account.industry",
                      "contact.country"):
        assert f'data-criterion="{criterion}"' in html
    predicted = html[html.index('id="predicted"'):html.index('id="qualification"')]
    assert "No predictive model is active." in predicted
    assert not re.search(r"\d+(\.\d+)?\s*%", predicted)
    # Stage history: every change, by whom, why.
    history = html[html.index('id="stage-history"'):html.index("</table>",
                                                                 html.index('id="stage-history"'))]
    assert "No budget before the summer after all" in history
    assert "Verbal yes on the call" in history
    assert "user:rita@leadflow.test" in history
    # The header, then first seen, → lead, → prospect, → opportunity, and back.
    assert history.count("<tr>") == 6
    # The timeline: events with their points, the email, the call, stage changes.
    timeline = html[html.index('id="timeline"'):html.index('id="identity"')]
    for kind in ("event", "stage", "activity", "email", "change"):
        assert f'data-kind="{kind}"' in timeline, kind
    assert "Discovery call" in timeline
    assert "Wants a demo for 12 people." in timeline
    assert "Your CRM guide" in timeline
    assert "opened 2026-03-02" in timeline
    assert "/pricing" in timeline
    assert 'data-rule="pricing_page"' in html
    # Tasks, owner, milestones, next content.
    assert "Demo with the IT team" in html
    assert "Rita Rep" in html
    assert 'data-milestone="mql"' in html
    assert "ROI calculator" in html or "Pricing sheet" in html
    assert "The CRM guide" not in html[html.index('id="next-content"'):]  # seen already


def test_the_timeline_is_cut_with_a_link_to_more(web: Any, app: App, clock: FakeClock,
                                                 people: People) -> None:
    cid = contact(app, people.rep)
    for i in range(8):
        event(app, cid, "page_view", url=f"https://acme.example/p{i}")
        clock.advance(60)
    client = web().login(people.rep)
    short = client.get(f"/contacts/{cid}?timeline=3").text
    assert short.count("<li class=\"tl-") == 3
    assert "/p7" in short
    assert "/p0" not in short
    more = re.search(r'href="(\?timeline=\d+#timeline)" id="timeline-more"', short)
    assert more is not None
    longer = client.get(f"/contacts/{cid}{more.group(1).split('#')[0]}").text
    assert "/p0" in longer
    assert 'id="timeline-more"' not in longer


def test_a_rep_cannot_open_or_change_another_reps_contact(web: Any, app: App,
                                                          people: People) -> None:
    cid = prospect(app, people.rep, first_name="Secret", last_name="Person")
    other = web().login(people.other_rep)
    seen = other.get(f"/contacts/{cid}")
    assert seen.status_code == 403
    assert "Secret" not in seen.text
    assert "ann@acme.example" not in seen.text
    assert other.get("/contacts/999999").status_code == 404
    before = (count(app, t.activities, cid), count(app, t.tasks, cid), row(app, cid).stage)
    for path, data in (("activities", {"kind": "note", "body": "mine now"}),
                       ("accept", {}), ("reject", {"reason": "x"}),
                       ("stage", {"stage": "disqualified", "reason": "x"}),
                       ("qualification", {"answers.budget": "approved"}),
                       ("opportunities", {"name": "x", "amount": "1", "currency": "EUR"}),
                       ("tasks", {"title": "x"}), ("erase", {"reason": "x", "confirm": "yes"}),
                       (f"tasks/{tasks(app, cid)[0].id}/complete", {})):
        answer = other.post(f"/contacts/{cid}/{path}", data)
        assert answer.status_code == 403, path
        assert "Secret" not in answer.text
    assert (count(app, t.activities, cid), count(app, t.tasks, cid),
            row(app, cid).stage) == before
    assert tasks(app, cid)[0].done_at is None
    # Their manager sees it (same team); the other rep's manager would not.
    assert web().login(people.manager).get(f"/contacts/{cid}").status_code == 200


def test_a_merged_contact_leads_to_the_one_it_was_merged_into(web: Any, app: App,
                                                              people: People) -> None:
    known = contact(app, people.rep)
    visit = record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(
        type="page_view", anonymous_id="visitor-1", url="https://acme.example/"))
    assert visit.contact_id not in (None, known)
    identify(uow=app.uow(), ctx=app.ctx, data=IdentifyIn(anonymous_id="visitor-1",
                                                         email="ann@acme.example"))
    client = web().login(people.rep)
    moved = client.get(f"/contacts/{visit.contact_id}", follow_redirects=False)
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/contacts/{known}"
    html = client.get(moved.headers["location"]).text
    assert flashes(html) == [f"Contact {visit.contact_id} was merged into this one."]
    other = web().login(people.other_rep).get(f"/contacts/{visit.contact_id}",
                                              follow_redirects=False)
    assert other.status_code == 403  # not even where it went: that contact is not theirs
    assert f"/contacts/{known}" not in other.text


def test_a_script_in_a_name_is_shown_as_text(web: Any, app: App, people: People) -> None:
    cid = prospect(app, people.rep, first_name="<script>alert(1)</script>",
                   title='"><img src=x onerror=alert(2)>')
    html = web().login(people.rep).get(f"/contacts/{cid}").text
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_logging_an_activity(web: Any, app: App, people: People) -> None:
    cid = prospect(app, people.rep)
    client = web().login(people.rep)
    client.get(f"/contacts/{cid}")
    done = client.post(f"/contacts/{cid}/activities", {
        "kind": "call", "direction": "inbound", "subject": "Called back", "body": "Keen",
        "outcome": ""})
    assert done.status_code == 303
    assert done.headers["location"] == f"/contacts/{cid}#timeline"
    html = client.get(f"/contacts/{cid}").text
    assert flashes(html) == ["Activity logged."]
    assert "Called back" in html
    assert 'data-rule="call_answered"' in html
    bad = client.post(f"/contacts/{cid}/activities", {"kind": "note", "at": "yesterday",
                                                      "subject": "kept"})
    assert bad.status_code == 422
    assert error_of(bad.text, "activity", "at").startswith("Enter a date and time")
    assert 'value="kept"' in bad.text  # what was typed stays
    future = client.post(f"/contacts/{cid}/activities", {"kind": "note",
                                                         "at": "2030-01-01T10:00"})
    assert error_of(future.text, "activity", "at") == \
        "an activity cannot be logged in the future"
    assert count(app, t.activities, cid) == 1


def test_accepting_and_rejecting_a_handed_over_prospect(web: Any, app: App,
                                                        people: People) -> None:
    first = prospect(app, people.rep)
    second = prospect(app, people.rep, email="bob@acme.example")
    client = web().login(people.rep)
    page = client.get(f"/contacts/{first}").text
    assert 'id="accept"' in page
    assert client.post(f"/contacts/{first}/accept").status_code == 303
    html = client.get(f"/contacts/{first}").text
    assert flashes(html) == ["Prospect accepted."]
    assert 'id="accept"' not in html
    assert "sal" in row(app, first).milestones
    again = client.post(f"/contacts/{first}/accept")
    assert again.status_code == 409
    assert "accepted already" in again.text
    # A rejection needs a reason; with one, the prospect goes back to nurture and, no
    # longer the rep's, out of their sight.
    blank = client.post(f"/contacts/{second}/reject", {"reason": "  "})
    assert blank.status_code == 422
    assert error_of(blank.text, "reject", "reason") == "a rejection needs a reason"
    assert stage_of(app, second) == "prospect"
    gone = client.post(f"/contacts/{second}/reject", {"reason": "Student, no budget"})
    assert gone.status_code == 303
    assert gone.headers["location"] == "/contacts"
    assert (stage_of(app, second), row(app, second).owner_id) == ("lead", None)
    assert client.get(f"/contacts/{second}").status_code == 403


def test_moving_a_stage_by_hand_and_the_moves_not_allowed(web: Any, app: App,
                                                          people: People) -> None:
    cid = prospect(app, people.rep)
    client = web().login(people.rep)
    page = client.get(f"/contacts/{cid}").text
    offered = re.findall(r'<option value="([^"]*)"', page[page.index('id="move"'):
                                                          page.index('id="stage-history"')])
    assert offered == ["", "suspect", "lead", "opportunity", "customer", "disqualified",
                       "@recycle"]  # never the current stage, never the erased one
    same = client.post(f"/contacts/{cid}/stage", {"stage": "prospect", "reason": "again"})
    assert same.status_code == 409
    assert error_of(same.text, "move", "stage") == "the contact is already in prospect"
    closed = client.post(f"/contacts/{cid}/stage", {"stage": "closed", "reason": "asked"})
    assert "use erase" in error_of(closed.text, "move", "stage")
    no_reason = client.post(f"/contacts/{cid}/stage", {"stage": "disqualified", "reason": ""})
    assert no_reason.status_code == 422
    assert error_of(no_reason.text, "move", "reason") == "a move by hand needs a reason"
    assert stage_of(app, cid) == "prospect"
    moved = client.post(f"/contacts/{cid}/stage", {"stage": "disqualified",
                                                   "reason": "Works for a reseller"})
    assert moved.status_code == 303
    html = client.get(f"/contacts/{cid}").text
    assert flashes(html) == ["Moved to Disqualified."]
    assert "Works for a reseller" in html[html.index('id="stage-history"'):]
    assert stage_of(app, cid) == "disqualified"
    # Recycling only from the stages it applies to: a lead cannot be.
    lead = contact(app, people.rep, email="leo@acme.example")
    event(app, lead, "newsletter_signup")
    assert stage_of(app, lead) == "lead"
    refused = client.post(f"/contacts/{lead}/stage", {"stage": "@recycle", "reason": "x"})
    assert refused.status_code == 409
    assert "can be recycled" in error_of(refused.text, "move", "stage")


def test_saving_the_qualification(web: Any, app: App, people: People) -> None:
    cid = prospect(app, people.rep)
    client = web().login(people.rep)
    html = client.get(f"/contacts/{cid}").text
    for key in ("budget", "authority", "need", "timeline", "contract_until", "has_crm_data"):
        assert f'name="answers.{key}"' in html
    bad = client.post(f"/contacts/{cid}/qualification", {
        "answers.budget": "approved", "answers.timeline": "next spring"})
    assert bad.status_code == 422
    assert error_of(bad.text, "qualification", "answers-timeline").startswith(
        "expected a date")
    assert row(app, cid).qualification.answers == {}
    good = client.post(f"/contacts/{cid}/qualification", {
        "answers.budget": "approved", "answers.authority": "decision_maker",
        "answers.need": "yes", "answers.timeline": "2026-04-15",
        "answers.contract_until": "", "answers.has_crm_data": "yes"})
    assert good.status_code == 303
    html = client.get(f"/contacts/{cid}").text
    assert flashes(html) == ["Qualification saved: the contact is qualified."]
    assert "qualified" in row(app, cid).milestones
    assert '<option value="approved" selected>' in html


def test_creating_an_opportunity_and_a_bad_amount(web: Any, app: App,
                                                  people: People) -> None:
    cid = prospect(app, people.rep)
    client = web().login(people.rep)
    client.get(f"/contacts/{cid}")
    bad = client.post(f"/contacts/{cid}/opportunities", {
        "name": "Acme rollout", "amount": "twelve grand", "currency": "EUR",
        "expected_close": "2026-06-30"})
    assert bad.status_code == 422
    assert error_of(bad.text, "opportunity", "amount") == \
        "Enter an amount as a number, like 12000 or 12000.50."
    assert 'value="Acme rollout"' in bad.text
    assert count(app, t.opportunities, cid) == 0
    assert stage_of(app, cid) == "prospect"
    wrong = client.post(f"/contacts/{cid}/opportunities", {
        "name": "Acme rollout", "amount": "12000", "currency": "XYZ"})
    assert "unknown currency" in error_of(wrong.text, "opportunity", "currency")
    made = client.post(f"/contacts/{cid}/opportunities", {
        "name": "Acme rollout", "amount": "12 000.50", "currency": "EUR",
        "expected_close": "2026-06-30"})
    assert made.status_code == 303
    html = client.get(f"/contacts/{cid}").text
    assert flashes(html) == ["Opportunity “Acme rollout” created."]
    assert "12,000\u00a0EUR" in html
    assert 'href="/opportunities"' in html
    with app.engine.connect() as conn:
        deal = conn.execute(select(t.opportunities)).one()
    assert (deal.amount, deal.owner_id, deal.expected_close) == (
        12000.5, people.rep.id, "2026-06-30")
    assert stage_of(app, cid) == "opportunity"


def test_adding_and_completing_tasks(web: Any, app: App, people: People) -> None:
    cid = prospect(app, people.rep)
    rep = web().login(people.rep)
    html = rep.get(f"/contacts/{cid}").text
    assert 'name="owner_id"' not in html  # a rep gives tasks to the contact's owner: them
    added = rep.post(f"/contacts/{cid}/tasks", {"kind": "call", "title": "Call the CFO",
                                                "due_at": "2026-03-04T10:00"})
    assert added.status_code == 303
    call = tasks(app, cid)[-1]
    assert (call.title, call.owner_id, call.kind) == ("Call the CFO", people.rep.id, "call")
    bad = rep.post(f"/contacts/{cid}/tasks", {"kind": "call", "due_at": "soon"})
    assert error_of(bad.text, "task", "due_at").startswith("Enter a date and time")
    done = rep.post(f"/contacts/{cid}/tasks/{call.id}/complete", {"outcome": "Reached"})
    assert done.status_code == 303
    assert tasks(app, cid)[-1].outcome == "Reached"
    twice = rep.post(f"/contacts/{cid}/tasks/{call.id}/complete", {})
    assert twice.status_code == 422
    assert "done already" in twice.text
    # The manager gives themself a task on the rep's contact: the rep cannot close it.
    manager = web().login(people.manager)
    assert 'name="owner_id"' in manager.get(f"/contacts/{cid}").text
    manager.post(f"/contacts/{cid}/tasks", {"title": "Coach Rita",
                                            "owner_id": str(people.manager.id)})
    coach = tasks(app, cid)[-1]
    assert coach.owner_id == people.manager.id
    page = rep.get(f"/contacts/{cid}").text
    assert f'action="/contacts/{cid}/tasks/{coach.id}/complete"' not in page
    assert rep.post(f"/contacts/{cid}/tasks/{coach.id}/complete", {}).status_code == 403
    # Nor may the manager give a task to someone outside their team.
    outside = manager.post(f"/contacts/{cid}/tasks", {"title": "x",
                                                      "owner_id": str(people.other_rep.id)})
    assert outside.status_code == 403
    # A task of another contact is not completed through this one.
    other = prospect(app, people.rep, email="bob@acme.example")
    foreign = tasks(app, other)[0]
    assert rep.post(f"/contacts/{cid}/tasks/{foreign.id}/complete", {}).status_code == 404


def test_assigning_the_owner(web: Any, app: App, people: People) -> None:
    cid = prospect(app, people.rep)
    rep = web().login(people.rep)
    assert f'action="/contacts/{cid}/assign"' not in rep.get(f"/contacts/{cid}").text
    refused = rep.post(f"/contacts/{cid}/assign", {"owner": str(people.manager.id),
                                                   "reason": "x"})
    assert refused.status_code == 403
    manager = web().login(people.manager)
    html = manager.get(f"/contacts/{cid}").text
    options = re.findall(r'<option value="(\d+)"', html[html.index('id="assign-owner"'):
                                                         html.index('id="assign-reason"')])
    assert options == [str(people.manager.id)]  # their team, but the current owner
    blank = manager.post(f"/contacts/{cid}/assign", {"owner": str(people.manager.id),
                                                     "reason": ""})
    assert error_of(blank.text, "assign", "reason") == "a reassignment needs a reason"
    assert manager.post(f"/contacts/{cid}/assign", {"owner": str(people.other_rep.id),
                                                    "reason": "x"}).status_code == 403
    done = manager.post(f"/contacts/{cid}/assign", {"owner": str(people.manager.id),
                                                    "reason": "Rita is away"})
    assert done.status_code == 303
    assert row(app, cid).owner_id == people.manager.id
    assert flashes(manager.get(f"/contacts/{cid}").text) == ["Assigned to Max Manager."]
    # Marketers may reassign too (as the REST route lets them), to anyone in sales.
    marketer = web().login(people.marketer)
    marketer.post(f"/contacts/{cid}/assign", {"owner": str(people.other_rep.id),
                                              "reason": "East territory"})
    assert row(app, cid).owner_id == people.other_rep.id


def test_erasing_a_contact_asks_first(web: Any, app: App, people: People) -> None:
    cid = prospect(app, people.rep)
    client = web().login(people.marketer)
    page = client.get(f"/contacts/{cid}").text
    assert 'data-confirm="Erase this person for good? This cannot be undone."' in page
    unconfirmed = client.post(f"/contacts/{cid}/erase", {"reason": "Asked by phone"})
    assert unconfirmed.status_code == 422
    assert "Tick the box" in unconfirmed.text
    assert row(app, cid).email == "ann@acme.example"
    erased = client.post(f"/contacts/{cid}/erase", {"reason": "Asked by phone",
                                                    "confirm": "yes"})
    assert erased.status_code == 303
    html = client.get(f"/contacts/{cid}").text
    assert (row(app, cid).stage, row(app, cid).email) == ("closed", None)
    assert "asked to be forgotten" in html
    assert "ann@acme.example" not in html
    assert "<form method=\"post\" action=\"/contacts/" not in html  # nothing more to do


def test_each_role_sees_only_the_actions_it_may_take(web: Any, app: App,
                                                     people: People) -> None:
    cid = prospect(app, people.rep)
    forms = {}
    for who in (people.rep, people.manager, people.marketer, people.admin):
        html = web().login(who).get(f"/contacts/{cid}").text
        forms[who.role] = set(re.findall(rf'action="/contacts/{cid}/([a-z]+)', html))
    everyone = {"activities", "accept", "reject", "stage", "qualification", "opportunities",
                "tasks", "erase"}
    assert forms["sales_rep"] == everyone
    assert forms["sales_manager"] == forms["marketer"] == forms["admin"] == \
        everyone | {"assign"}


def test_the_page_reads_in_french(web: Any, app: App, people: People) -> None:
    cid = prospect(app, people.rep)
    client = web().login(people.rep)
    client.post("/language", {"lang": "fr", "next": "/"})
    html = client.get(f"/contacts/{cid}").text
    for text in ("Historique des étapes", "Conversion prédite", "Chronologie", "chaud",
                 "Budget", "Autorité", "Créer une opportunité…",
                 "demande de démo ou de tarifs ces 7 derniers jours",  # why it is hot
                 "<strong>attribué</strong>", "responsable: "):  # the history, in French
        assert text in html, text
    bad = client.post(f"/contacts/{cid}/opportunities", {"name": "x", "amount": "12 000,50",
                                                         "currency": "EUR"})
    assert bad.status_code == 303  # a decimal comma in French


def test_the_qualification_form_in_a_browser(browse: Any, app: App, clock: FakeClock,
                                             people: People) -> None:
    cid = rich(app, clock, people)
    page = browse(people.rep)
    page.goto(f"/contacts/{cid}")
    assert page.locator("h1").inner_text() == "Ann Archer"
    screenshot(page, "contact")
    form = page.locator("#qualification-form")
    form.locator("select[name='answers.budget']").select_option("approved")
    form.locator("select[name='answers.authority']").select_option("decision_maker")
    form.locator("select[name='answers.need']").select_option("yes")
    form.locator("input[name='answers.timeline']").fill("2026-04-15")
    form.locator("select[name='answers.has_crm_data']").select_option("yes")
    form.locator("button.primary").click()
    page.wait_for_url(f"**/contacts/{cid}#qualification")
    assert page.locator(".flash").inner_text() == \
        "Qualification saved: the contact is qualified."
    assert page.locator("select[name='answers.budget']").input_value() == "approved"
    assert page.locator("[data-milestone='qualified']").inner_text().startswith("✓")
