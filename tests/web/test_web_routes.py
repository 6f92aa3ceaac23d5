"""Every page of the web app, enumerated from the app itself: a new page nobody decided the
rights of fails here.

- every POST checks the CSRF token (it depends on ``checked_form``);
- nobody logged out reaches any page but the login page;
- a sales rep reaches only what they own, by every route, whatever ids the URL holds.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant

from leadflow.adapters.db.read_models import SORTS
from leadflow.bootstrap import App
from leadflow.entrypoints.api.app import create_app
from leadflow.entrypoints.web.mount import ROUTERS
from leadflow.entrypoints.web.routing import WebRoute
from leadflow.entrypoints.web.session import checked_form
from leadflow.services.assignments import reassign
from leadflow.services.events import EventIn, record_event
from leadflow.services.opportunities import create_opportunity
from leadflow.services.segments import save_segment
from leadflow.services.users import acting_as
from tests.api.conftest import counts
from tests.conftest import good_fit_contact
from tests.web.conftest import People

PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/language")}


def _routes(app: App) -> list[tuple[str, str, WebRoute]]:
    create_app(app)  # what it mounts is what ROUTERS hold
    found = [(method, route.path, route) for module in ROUTERS for route in module.router.routes
             if isinstance(route, WebRoute) for method in route.methods or ()]
    assert len(found) > 5
    return sorted(found, key=lambda x: (x[1], x[0]))


def _calls(dependant: Dependant) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_post_checks_the_csrf_token(app: App) -> None:
    posts = [(path, route) for method, path, route in _routes(app) if method == "POST"]
    assert posts
    unchecked = [path for path, route in posts if checked_form not in _calls(route.dependant)]
    assert not unchecked, f"POST routes without the CSRF check (take `form: Posted`): {unchecked}"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logged_out_visitors_reach_only_the_login_page(web: Any, app: App, method: str) -> None:
    client = web()
    client.get("/login")
    for verb, path, _ in _routes(app):
        if verb != method or (verb, path) in PUBLIC:
            continue
        url = _fill(path)
        answer = client.get(url, follow_redirects=False) if verb == "GET" else \
            client.post(url, {})
        assert answer.status_code in (303, 403, 404), (verb, url, answer.status_code)
        if answer.status_code == 303:
            assert answer.headers["location"].startswith("/login"), (verb, url)


# What a sales rep may open or post at all (with the ids of another rep's things in the URL
# these still answer 403/404). Every other page is refused to a rep outright.
REP_ALLOWED = {
    ("GET", "/"), ("GET", "/contacts"), ("GET", "/contacts/export.csv"),
    ("POST", "/contacts/segments"), ("GET", "/queue"), ("GET", "/tasks"),
    ("GET", "/opportunities"),
}
SKIPPED = {("POST", "/logout")}  # would end the session the loop runs in


def test_a_rep_reaches_nothing_of_another_rep_by_any_page(web: Any, app: App,
                                                          people: People) -> None:
    theirs = good_fit_contact(app, "bea@acme.example", first_name="Bea")
    assert theirs.id is not None
    record_event(uow=app.uow(), ctx=app.ctx,
                 event=EventIn(type="demo_request", contact_id=theirs.id))
    reassign(uow=app.uow(), ctx=app.ctx, contact_id=theirs.id, owner=people.other_rep.id,
             reason="test set-up", actor="test")
    with app.reader() as uow:
        [task] = uow.tasks.of_contact(theirs.id)
    deal = create_opportunity(uow_factory=app.uow, ctx=app.ctx, contact_id=theirs.id,
                              name="Bea's deal", amount=5000, currency="EUR",
                              expected_close=None, deal_stage=None, next_step=None,
                              owner_id=people.other_rep.id, actor="test")
    segment = save_segment(uow=app.uow(), ctx=app.ctx,
                           principal=acting_as(uow=app.reader(), ref=people.other_rep.id),
                           name="Bea's list", filters={}, shared=False, sorts=SORTS)
    ids = {"contact_id": theirs.id, "task_id": task.id, "opportunity_id": deal.id,
           "segment_id": segment.id, "user_id": people.other_rep.id}
    client = web().login(people.rep)
    before = counts(app)
    refused = 0
    for method, path, _ in _routes(app):
        if (method, path) in PUBLIC | SKIPPED:
            continue
        url = re.sub(r"\{(\w+)(?::\w+)?\}",
                     lambda m: str(ids.get(m.group(1), 1)), path)
        answer = client.get(url, follow_redirects=False) if method == "GET" else \
            client.post(url, {"reason": "x", "name": "x", "outcome": "x"})
        if (method, path) in REP_ALLOWED and "{" not in path:
            assert answer.status_code in (200, 303), (method, url, answer.status_code)
            continue
        assert answer.status_code in (403, 404), (method, url, answer.status_code)
        assert "Bea" not in answer.text, (method, url)
        assert counts(app) == before, (method, url)
        refused += 1
    assert refused > 40
    assert client.get("/contacts").status_code == 200  # still logged in, still a rep
