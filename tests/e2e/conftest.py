"""End-to-end fixtures: a real ``leadflow serve`` process on loopback, on SQLite and PostgreSQL.

``server`` starts ``leadflow serve`` (embedded worker on) in a subprocess on a free port with a
data directory of its own, on the database of ``database_url`` (tests/conftest.py: a SQLite
file in the test's tmp dir, or the session's PostgreSQL database, emptied). It waits for
/healthz, can be killed hard (SIGKILL) and started again on the same data, and is stopped at
the end of the test. ``db`` is an engine on the same database for the test's assertions.
``module_server`` and ``module_db`` are the same for a whole module, on a database of its own.

Webhook timings are short (lease 3 s, first retry 0.5 s, timeout 2 s, relay every 0.1 s) and
the tracking rate limit is off, so that the tests finish quickly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.services import api_keys, webhooks
from tests.conftest import PG_URL

BIN = Path(sys.executable).parent / "leadflow"
LEADFLOW = ([str(BIN)] if BIN.exists() else
            [sys.executable, "-c", "from leadflow.entrypoints.cli.app import main; main()"])
IN_CI = os.environ.get("CI", "").lower() == "true"

FAST_WEBHOOKS = {
    "LEADFLOW_WEBHOOK_LEASE_SECONDS": "3",
    "LEADFLOW_WEBHOOK_RETRY_SECONDS": "0.5",
    "LEADFLOW_WEBHOOK_TIMEOUT_SECONDS": "2",
    "LEADFLOW_RELAY_INTERVAL_SECONDS": "0.1",
    "LEADFLOW_TRACKING_RATE_LIMIT": "0",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def eventually(what: str, check: Callable[[], Any], timeout: float = 30.0,
               detail: Callable[[], Any] | None = None, interval: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy (returned), or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                                 + (f": {detail()}" if detail else ""))
        time.sleep(interval)


class LeadflowServer:
    """One ``leadflow serve`` process at a time on a fixed port, data dir and database."""

    def __init__(self, *, database_url: str, data_dir: Path,
                 env: dict[str, str] | None = None, worker: bool = True) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.data_dir = data_dir
        self.database_url = database_url
        self.worker = worker
        self.log_path = data_dir / "serve.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
        self.env.update({"LEADFLOW_DATA_DIR": str(data_dir),
                         "LEADFLOW_DATABASE_URL": database_url, **FAST_WEBHOOKS, **(env or {})})
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        """Run a leadflow command on the server's data; its standard output."""
        done = subprocess.run([*LEADFLOW, *args], env=self.env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            raise AssertionError(f"leadflow {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done.stdout

    def app(self) -> App:
        """The server's data, opened in this process to set up what a test needs (an API key,
        a webhook) through the services ``leadflow keys create`` and ``leadflow webhooks add``
        call, without the seconds a ``leadflow`` process takes to start (tests/cli runs
        those commands)."""
        return App(Settings(database_url=self.database_url, data_dir=self.data_dir))

    def public_key(self, name: str = "website") -> str:
        app = self.app()
        try:
            return api_keys.create_api_key(uow=app.uow(), ctx=app.ctx, name=name,
                                           kind="public").token
        finally:
            app.engine.dispose()

    def subscribe(self, url: str, *topics: str) -> str:
        """Subscribe ``url`` to ``topics``; its signing secret."""
        app = self.app()
        try:
            return webhooks.subscribe(uow=app.uow(), ctx=app.ctx, url=url,
                                      topics=list(topics)).secret
        finally:
            app.engine.dispose()

    def start(self, timeout: float = 90.0) -> None:
        assert self.proc is None, "already running"
        args = [*LEADFLOW, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--worker" if self.worker else "--no-worker"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        self._wait_healthy(timeout)

    def _wait_healthy(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5.0) as client:
            while True:
                code = self.proc.poll()
                if code is not None:
                    self.proc = None
                    raise AssertionError(f"leadflow serve exited with {code}:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError(f"leadflow serve not healthy after {timeout:.0f} s:\n"
                                         f"{self.log_tail()}")
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=20)
        self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(request: pytest.FixtureRequest,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database for a whole test module, as ``database_url`` is for one test: a SQLite
    file, or a PostgreSQL database of its own (so that no test's emptying of the session's
    database pulls it from under a server that outlives the test), dropped at the end."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('module_db') / 'leadflow.db'}"
        return
    if request.getfixturevalue("pg_database") is None:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}; set LEADFLOW_TEST_POSTGRES_URL")
    name = f"leadflow_e2e_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def module_server(module_database_url: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[LeadflowServer]:
    """One running ``leadflow serve`` for a whole module, for tests that each work on people
    of their own and never count the whole database."""
    instance = LeadflowServer(database_url=module_database_url,
                              data_dir=tmp_path_factory.mktemp("server"))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def module_db(module_database_url: str) -> Iterator[Engine]:
    """The module server's database, for assertions."""
    engine = create_engine(module_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LeadflowServer]:
    """A running ``leadflow serve`` (embedded worker) on the test's database."""
    instance = LeadflowServer(database_url=database_url, data_dir=tmp_path / "server")
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    """The server's database, for assertions."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()
