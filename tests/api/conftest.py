"""The HTTP API end to end: FastAPI's TestClient over ``create_app`` on the test's App.

Every test that takes ``api`` runs on SQLite and on PostgreSQL (through ``app``); the only
fake is the clock, so tracking timestamps are written near T0.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, func, select

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.entrypoints.api.app import create_app
from leadflow.entrypoints.worker import Jobs
from leadflow.services.api_keys import create_api_key
from leadflow.services.users import create_user

# Tables a refused request must leave as they were.
WRITTEN = (t.contacts, t.events, t.identities, t.accounts, t.stage_changes, t.milestones,
           t.audit, t.outbox, t.suppressions)


@dataclass(frozen=True)
class Keys:
    public: str  # the write key a web page embeds
    read: str
    write: str
    admin: str


@pytest.fixture
def keys(app: App) -> Keys:
    """Keys of an admin user (whose role allows every scope the key asks for)."""
    owner = create_user(uow=app.uow(), ctx=app.ctx, email="admin@leadflow.example",
                        name="Ada Admin", role="admin").id

    def make(name: str, kind: str, scopes: list[str] | None = None) -> str:
        return create_api_key(uow=app.uow(), ctx=app.ctx, name=name, kind=kind,
                              scopes=scopes, user=owner if kind == "secret" else None).token
    return Keys(public=make("site", "public"), read=make("reader", "secret", ["read"]),
                write=make("writer", "secret", ["write"]),
                admin=make("admin", "secret", ["admin"]))


@pytest.fixture
def api(app: App) -> Iterator[TestClient]:
    with TestClient(create_app(app)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(token: str) -> dict[str, str]:
    """As Segment SDKs send it: the write key as user name, no password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def count(app: App, table: Table, *where: Any) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where))
                   .scalar_one())


def counts(app: App) -> dict[str, int]:
    return {table.name: count(app, table) for table in WRITTEN}


def rows(app: App, table: Table, *where: Any, order: Any = None) -> list[Any]:
    with app.engine.connect() as conn:
        query = select(table).where(*where).order_by(order if order is not None
                                                    else table.primary_key.columns.values()[0])
        return list(conn.execute(query).all())


def events_of(app: App, contact_id: int) -> list[Any]:
    """A contact's events with their rule-visible shape, oldest first."""
    e, s = t.events, t.event_shapes
    with app.engine.connect() as conn:
        return list(conn.execute(
            select(e.c.id, e.c.ts, e.c.message_id, e.c.properties, s.c.type, s.c.url,
                   s.c.utm_source, s.c.utm_medium, s.c.utm_campaign)
            .join(s, s.c.id == e.c.shape_id).where(e.c.contact_id == contact_id)
            .order_by(e.c.ts, e.c.id)).all())


def contact_by_identity(app: App, kind: str, value: str) -> int | None:
    with app.engine.connect() as conn:
        found = conn.execute(select(t.identities.c.contact_id).where(
            t.identities.c.kind == kind, t.identities.c.value == value)).scalar()
    return None if found is None else int(found)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook endpoint on loopback (real HTTP): answers the status codes it is given, in
    order, then 200; remembers every request."""

    def __init__(self) -> None:
        self.replies: list[int] = []
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers), body))
                    status = receiver.replies.pop(0) if receiver.replies else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"no")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/leadflow"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def run_queued(jobs: Jobs) -> int:
    """Run the jobs waiting in the queue, as a worker would; how many ran."""
    ran = 0
    while (task := jobs.huey.dequeue()) is not None:
        jobs.huey.execute(task)
        ran += 1
    return ran
