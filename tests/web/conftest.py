"""The web app, end to end: a logged-in TestClient per role, and for browser tests a live
server (uvicorn in a thread, on the test's App) driven by Debian's Chromium through Playwright.

Every test that takes ``web`` or ``live`` runs on SQLite and on PostgreSQL (through ``app``).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from leadflow.bootstrap import App
from leadflow.domain.users import User
from leadflow.entrypoints.api.app import create_app
from leadflow.services import users as users_service
from leadflow.services.users import create_user

PASSWORD = "correct horse battery"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class People:
    admin: User
    marketer: User
    manager: User  # sales manager of team west
    rep: User  # sales rep in team west
    other_rep: User  # sales rep in team east


@pytest.fixture
def people(app: App, monkeypatch: pytest.MonkeyPatch) -> People:
    # Real Argon2 at its lowest cost: the default cost (~0.15 s a hash) would spend most of
    # a web test's time creating five users and logging them in.
    monkeypatch.setattr(users_service, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))

    def make(email: str, name: str, role: str, team: str | None = None) -> User:
        return create_user(uow=app.uow(), ctx=app.ctx, email=email, name=name, role=role,
                           password=PASSWORD, team=team)
    return People(admin=make("admin@leadflow.test", "Ada Admin", "admin"),
                  marketer=make("mia@leadflow.test", "Mia Marketer", "marketer"),
                  manager=make("max@leadflow.test", "Max Manager", "sales_manager", "west"),
                  rep=make("rita@leadflow.test", "Rita Rep", "sales_rep", "west"),
                  other_rep=make("otto@leadflow.test", "Otto Other", "sales_rep", "east"))


class WebClient:
    """A browser-like client: cookies kept, forms posted with the page's CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("headers", {}).setdefault("accept", "text/html")
        response = self.client.get(path, **kwargs)
        found = _CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
             **kwargs: Any) -> Any:
        """Post a form as its page would (with the token of the last page seen); a redirect
        is not followed, so that tests see where it goes."""
        if csrf and not self.csrf:
            self.get("/login")
        body = dict(data or {})
        if csrf:
            body.setdefault("csrf_token", self.csrf)
        kwargs.setdefault("headers", {}).setdefault("accept", "text/html")
        kwargs.setdefault("follow_redirects", False)
        return self.client.post(path, data=body, **kwargs)

    def finished(self, started: Any, *, under: str) -> Any:
        """The page a long operation redirected to (``started``, a 303 to a page under
        ``under``), once its progress says it finished."""
        assert started.status_code == 303, started.text
        where = started.headers["location"]
        assert where.startswith(under), where
        operation = where.rsplit("/", 1)[1]
        deadline = time.monotonic() + 60
        while not self.client.get(f"/progress/{operation}").json()["finished"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return self.get(where)

    def login(self, user: User | str, password: str = PASSWORD) -> WebClient:
        email = user if isinstance(user, str) else user.email
        self.get("/login")
        answer = self.post("/login", {"email": email, "password": password})
        assert answer.status_code == 303, answer.text
        self.get("/")
        return self


@pytest.fixture
def web(app: App) -> Iterator[Any]:
    """``web()`` → a new logged-out client (each with its own cookies) on one server."""
    made: list[TestClient] = []
    api = create_app(app)

    def client() -> WebClient:
        test_client = TestClient(api)
        test_client.__enter__()
        made.append(test_client)
        return WebClient(test_client)
    yield client
    for test_client in made:
        test_client.__exit__(None, None, None)


# ---------------------------------------------------------------- browser tests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    app: App


@pytest.fixture
def live(app: App) -> Iterator[LiveServer]:
    """The web app on a loopback port, served by uvicorn in a thread of this process."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(app), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the web app did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def browse(browser: Any, live: LiveServer) -> Iterator[Any]:
    """``browse(user, viewport=None)`` → a Playwright page logged in as ``user`` on the live
    server. Requests leaving loopback are aborted and fail the test (nothing from a CDN);
    script errors and CSP violations fail it too."""
    contexts: list[Any] = []
    problems: list[str] = []

    def open_as(user: User | None, *, viewport: dict[str, int] | None = None,
                locale: str = "en-GB") -> Any:
        context = browser.new_context(base_url=live.url, locale=locale,
                                      viewport=viewport or {"width": 1280, "height": 900})
        contexts.append(context)

        def only_loopback(route: Any) -> None:
            if route.request.url.startswith(live.url):
                route.continue_()
            else:
                problems.append(f"request left the server: {route.request.url}")
                route.abort()
        context.route("**/*", only_loopback)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        def console(msg: Any) -> None:
            # A page answering 4xx (a form shown again with its errors) is logged by Chromium
            # as a failed resource: that is the page, not a fault in it.
            if msg.type == "error" and not msg.text.startswith(
                    "Failed to load resource: the server responded with a status of 4"):
                problems.append(f"console {msg.type}: {msg.text}")
        page.on("console", console)
        if user is not None:
            page.goto("/login")
            page.fill("#email", user.email)
            page.fill("#password", PASSWORD)
            page.click("button.primary")
            page.wait_for_url(f"{live.url}/")
        return page
    yield open_as
    for context in contexts:
        context.close()
    assert not problems, problems


def screenshot(page: Any, name: str) -> Path:
    """Write docs/screenshots/<name>.png (what the README shows)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
