"""Unmodified tracking SDKs pointed at a real ``leadflow serve``, on SQLite and PostgreSQL.

- Segment's Python SDK (``segment-analytics-python``: batches from a consumer thread, plain
  JSON, write key by HTTP Basic) and RudderStack's (``rudder-sdk-python``: sync mode, gzip
  bodies): identify, track, page, group and alias; the contact, its events, its account and
  the merge are checked in the database.
- Segment's analytics.js (``@segment/analytics-next`` from the npm registry, fetched by
  ``npm pack`` into pytest's cache directory, never committed, never from a CDN) in a
  headless Chromium driven by Playwright: it loads its settings from our
  ``/v1/projects/{writeKey}/settings`` and sends page, track and identify.
- Our own ``/t.js`` on a page of another origin: a page view, then a form with an email
  field identifies the visitor and records ``form_submitted``.

The tests share one server per database (each works on people of its own, found by their
identities, and never counts the whole database): starting ``leadflow serve`` is most of what
a test here costs.

The browser pages are served by a small loopback server of the test (another origin than
leadflow, as a customer's site would be); every request the browser makes outside loopback is
refused and makes the test fail. Without Chromium, Playwright or npm (or the registry) the
browser tests skip with the reason — except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine, select

from leadflow.adapters.db import tables as t
from tests.e2e.conftest import IN_CI, LeadflowServer, eventually

CHROMIUM = Path("/usr/bin/chromium")
ANALYTICS_NEXT = "@segment/analytics-next@1"


@pytest.fixture
def server(module_server: LeadflowServer) -> LeadflowServer:
    return module_server


@pytest.fixture
def db(module_db: Engine) -> Engine:
    return module_db


def unavailable(reason: str) -> None:
    """Skip, or fail in CI, where everything the test needs is installed by .ci/run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must run the browser tests)")
    pytest.skip(reason)


# --- what the database says --------------------------------------------------------------

@dataclass
class Stored:
    contact: Any
    identities: set[tuple[str, str]]
    events: list[tuple[str, dict[str, Any]]]  # (type, properties), oldest first
    account: Any
    audit: list[str]


def contact_by_identity(db: Engine, kind: str, value: str) -> Stored | None:
    """The contact, read after its identities, events and audit: each query sees what was
    committed when it ran, and the tests wait for events, so the contact read last is at
    least as new as the events they waited for (read first, it could predate them)."""
    with db.connect() as conn:
        cid = conn.execute(select(t.identities.c.contact_id).where(
            t.identities.c.kind == kind, t.identities.c.value == value)).scalar_one_or_none()
        if cid is None:
            return None
        identities = {(r.kind, r.value) for r in conn.execute(
            select(t.identities).where(t.identities.c.contact_id == cid))}
        events = [(r.type, r.properties or {}) for r in conn.execute(
            select(t.event_shapes.c.type, t.events.c.properties)
            .join(t.event_shapes, t.event_shapes.c.id == t.events.c.shape_id)
            .where(t.events.c.contact_id == cid).order_by(t.events.c.ts, t.events.c.id))]
        audit = list(conn.execute(select(t.audit.c.action).where(t.audit.c.contact_id == cid)
                                  .order_by(t.audit.c.id)).scalars())
        contact = conn.execute(select(t.contacts).where(t.contacts.c.id == cid)).one()
        account = (conn.execute(select(t.accounts).where(t.accounts.c.id == contact.account_id))
                   .one_or_none() if contact.account_id else None)
    return Stored(contact, identities, events, account, audit)


def event_types(stored: Stored) -> list[str]:
    return sorted(kind for kind, _ in stored.events)


# --- the Python SDKs ---------------------------------------------------------------------

def send_story(sdk: Any, p: str) -> None:
    """A visitor reads pricing and asks for a demo on a laptop, signs in, names their
    company; the same person's phone, seen anonymously, is then aliased to them."""
    sdk.page(anonymous_id=f"{p}-laptop", name="Pricing",
             properties={"url": f"https://{p}.example/pricing"})
    sdk.track(anonymous_id=f"{p}-laptop", event="Demo Requested", properties={"plan": "pro"})
    sdk.identify(user_id=f"{p}-user", anonymous_id=f"{p}-laptop",
                 traits={"email": f"ann@{p}.example", "firstName": "Ann", "title": "CTO"})
    sdk.group(user_id=f"{p}-user", group_id=f"{p}-acme",
              traits={"name": "Acme", "website": f"https://www.{p}-acme.example",
                      "industry": "software", "employees": 300})
    sdk.page(anonymous_id=f"{p}-phone", name="Docs", properties={"url": f"https://{p}.example/docs"})
    sdk.alias(previous_id=f"{p}-phone", user_id=f"{p}-user")


def check_story(db: Engine, p: str, library: str) -> None:
    stored = eventually(f"the {p} alias merged", lambda: (
        (s := contact_by_identity(db, "user_id", f"{p}-user")) is not None
        and (("anonymous_id", f"{p}-phone") in s.identities) and s), timeout=20)
    assert stored.contact.email == f"ann@{p}.example"
    assert stored.contact.first_name == "Ann"
    assert stored.contact.title == "CTO"
    assert {("anonymous_id", f"{p}-laptop"), ("anonymous_id", f"{p}-phone"),
            ("user_id", f"{p}-user")} <= stored.identities
    # The phone's anonymous contact was folded into this one, history and all.
    assert event_types(stored) == sorted(["page_view", "demo_requested", "identify", "group",
                                          "page_view", "alias"])
    assert "merged" in stored.audit
    with db.connect() as conn:
        owners = set(conn.execute(select(t.identities.c.contact_id).where(
            t.identities.c.value.like(f"{p}-%"))).scalars())
    assert owners == {stored.contact.id}
    assert stored.account is not None
    assert stored.account.name == "Acme"
    assert stored.account.domain == f"{p}-acme.example"
    assert stored.account.employees == 300
    pages = [props for kind, props in stored.events if kind == "page_view"]
    assert {props.get("name") for props in pages} == {"Pricing", "Docs"}
    assert all(props.get("library") == library for _, props in stored.events)


def test_segment_python_sdk(server: LeadflowServer, db: Engine,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    from segment import analytics
    from segment.analytics import request as segment_request

    errors: list[Any] = []
    monkeypatch.setattr(analytics, "write_key", server.public_key("segment-python"))
    monkeypatch.setattr(analytics, "host", server.url)
    monkeypatch.setattr(analytics, "on_error", lambda error, batch: errors.append(error))
    monkeypatch.setattr(analytics, "default_client", None)
    try:
        send_story(analytics, "seg")
        analytics.flush()  # batched by its consumer thread, as in production
    finally:
        analytics.shutdown()
        segment_request._session.close()
    assert errors == []
    check_story(db, "seg", "analytics-python")


def test_rudderstack_python_sdk(server: LeadflowServer, db: Engine,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    import rudderstack.analytics as rudder_analytics
    from rudderstack.analytics import request as rudder_request

    monkeypatch.setattr(rudder_analytics, "write_key", server.public_key("rudder-python"))
    monkeypatch.setattr(rudder_analytics, "dataPlaneUrl", server.url)
    monkeypatch.setattr(rudder_analytics, "sync_mode", True)  # each call posts, errors raise
    monkeypatch.setattr(rudder_analytics, "default_client", None)
    try:
        send_story(rudder_analytics, "rud")  # gzip bodies: the SDK's default
    finally:
        rudder_request._session.close()
    check_story(db, "rud", "analytics-python")


# --- browsers ------------------------------------------------------------------------------

class Site:
    """A customer's web site on loopback: pages by path, files under /analytics-next/bundles/,
    and a form target that answers with a thank-you page."""

    def __init__(self, bundles: Path | None = None) -> None:
        self.pages: dict[str, str] = {}
        self.bundles = bundles
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path in site.pages:
                    self.answer(200, "text/html; charset=utf-8", site.pages[path].encode())
                elif site.bundles and path.startswith("/analytics-next/bundles/"):
                    name = path.rsplit("/", 1)[-1]
                    file = site.bundles / name
                    if name and file.is_file():
                        self.answer(200, "application/javascript", file.read_bytes())
                    else:
                        self.answer(404, "text/plain", b"not found")
                else:
                    self.answer(404, "text/plain", b"not found")

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.answer(200, "text/html", b"<!doctype html><title>Thanks</title>thanks")

            def answer(self, code: int, kind: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies, no localStorage) whose requests stay on
    loopback: anything else is aborted and fails the test."""
    context = browser.new_context()
    outside: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    tab = context.new_page()
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert outside == [], f"the page reached outside loopback: {outside}"
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture(scope="session")
def analytics_next(request: pytest.FixtureRequest) -> Path:
    """The UMD build of @segment/analytics-next, from the npm registry via ``npm pack``,
    cached in pytest's cache directory (git-ignored)."""
    cache = request.config.cache.mkdir("analytics-next") if request.config.cache else None
    if cache is None:
        unavailable("pytest's cache is disabled (-p no:cacheprovider)")
    assert cache is not None
    umd = cache / "package" / "dist" / "umd"
    if (umd / "index.js").is_file():
        return umd
    npm = shutil.which("npm")
    if npm is None:
        unavailable("npm not found: it fetches @segment/analytics-next from the registry")
    assert npm is not None
    problem = ""
    for attempt in range(3):
        done = subprocess.run([npm, "pack", ANALYTICS_NEXT, "--pack-destination", str(cache),
                               "--silent"], capture_output=True, text=True, timeout=180,
                              cwd=cache, stdin=subprocess.DEVNULL, check=False)
        packed = sorted(cache.glob("segment-analytics-next-*.tgz"))
        if done.returncode == 0 and packed:
            with tarfile.open(packed[-1]) as archive:
                archive.extractall(cache, filter="data")
            for tgz in packed:
                tgz.unlink()
            if (umd / "index.js").is_file():
                return umd
            problem = "the package has no dist/umd/index.js"
            break
        problem = (done.stderr or done.stdout).strip()[-500:]
        time.sleep(2 * (attempt + 1))
    unavailable(f"npm pack {ANALYTICS_NEXT} failed: {problem}")
    raise AssertionError("unreachable")


@pytest.fixture
def site(analytics_next: Path) -> Iterator[Site]:
    s = Site(bundles=analytics_next)
    yield s
    s.close()


def test_analytics_js_in_a_browser(server: LeadflowServer, db: Engine, site: Site,
                                   page: Any) -> None:
    key = server.public_key("analytics.js")
    # Self-hosted analytics.js as Segment documents it: ``analytics._cdn`` says where its
    # bundles are; ``cdnURL`` says where its settings are: here, leadflow.
    site.pages["/pricing"] = f"""<!doctype html>
<html><head><title>Pricing</title>
<script>window.analytics = {{ _cdn: location.origin }};</script>
<script src="/analytics-next/bundles/index.js"></script></head>
<body><h1>Pricing</h1><script>
window.tracked = (async () => {{
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
    {{ writeKey: "{key}", cdnURL: "{server.url}" }});
  await analytics.page("Pricing", {{ plan: "pro" }});
  await analytics.track("Demo Requested", {{ plan: "pro" }});
  await analytics.identify("js-user", {{ email: "jo@js.example", firstName: "Jo" }});
  return analytics.user().anonymousId();
}})();
</script></body></html>"""
    with page.expect_request(f"{server.url}/v1/projects/{key}/settings"):
        page.goto(f"{site.origin}/pricing?utm_source=newsletter&utm_campaign=spring")
    anonymous_id = page.evaluate("window.tracked")
    assert anonymous_id

    stored = eventually("the analytics.js calls stored", lambda: (
        (s := contact_by_identity(db, "user_id", "js-user")) is not None
        and len(s.events) >= 3 and s), timeout=20)
    assert ("anonymous_id", anonymous_id) in stored.identities
    assert stored.contact.email == "jo@js.example"
    assert stored.contact.first_name == "Jo"
    assert event_types(stored) == ["demo_requested", "identify", "page_view"]
    view = next(props for kind, props in stored.events if kind == "page_view")
    assert view["url"].startswith(f"{site.origin}/pricing")
    assert view["title"] == "Pricing"
    assert view["library"] == "analytics.js"
    with db.connect() as conn:
        utm = conn.execute(select(t.event_shapes.c.utm_source, t.event_shapes.c.utm_campaign)
                           .where(t.event_shapes.c.type == "page_view")).all()
    assert ("newsletter", "spring") in utm


def test_first_party_snippet_page_view_and_form(server: LeadflowServer, db: Engine,
                                                page: Any) -> None:
    key = server.public_key("t.js")
    site = Site()
    try:
        site.pages["/demo"] = f"""<!doctype html>
<html><head><title>Book a demo</title>
<script src="{server.url}/t.js" data-key="{key}" async></script></head>
<body><form id="demo-form" action="/thanks" method="post">
  <input type="email" name="email"> <input name="first_name"> <input name="company">
  <input type="password" name="password"> <button type="submit">Book</button>
</form></body></html>"""
        page.goto(f"{site.origin}/demo?utm_source=ads&utm_medium=cpc")
        anonymous_id = eventually("the snippet's visitor id", lambda: page.evaluate(
            "localStorage.getItem('leadflow_aid')"), timeout=10)
        visitor = eventually("the page view stored", lambda: contact_by_identity(
            db, "anonymous_id", anonymous_id), timeout=20)
        assert event_types(visitor) == ["page_view"]

        page.fill("input[name=email]", "Max@Corp.example")
        page.fill("input[name=first_name]", "Max")
        page.fill("input[name=company]", "Corp")
        page.fill("input[name=password]", "hunter2")
        with page.expect_navigation():
            page.click("button[type=submit]")
        stored = eventually("the form submission stored", lambda: (
            (s := contact_by_identity(db, "anonymous_id", anonymous_id)) is not None
            and len(s.events) >= 3 and s), timeout=20)
    finally:
        site.close()
    assert stored.contact.id == visitor.contact.id
    assert stored.contact.email == "max@corp.example"
    assert stored.contact.first_name == "Max"
    assert event_types(stored) == ["form_submitted", "identify", "page_view"]
    form = next(props for kind, props in stored.events if kind == "form_submitted")
    assert form["form_id"] == "demo-form"
    assert form["fields"] == {"company": "Corp"}  # no password, no email in the fields
    assert form["library"] == "leadflow-t.js"
    view = next(props for kind, props in stored.events if kind == "page_view")
    assert view["title"] == "Book a demo"
    with db.connect() as conn:
        utm = conn.execute(select(t.event_shapes.c.utm_source, t.event_shapes.c.utm_medium)
                           .where(t.event_shapes.c.type == "page_view")).all()
    assert ("ads", "cpc") in utm
