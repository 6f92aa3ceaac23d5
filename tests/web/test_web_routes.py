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

from leadflow.bootstrap import App
from leadflow.entrypoints.api.app import create_app
from leadflow.entrypoints.web.mount import ROUTERS
from leadflow.entrypoints.web.routing import WebRoute
from leadflow.entrypoints.web.session import checked_form

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
