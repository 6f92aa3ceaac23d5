"""Engines and schema migration. SQLite runs in WAL mode with foreign keys on."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from leadflow.domain.errors import ConcurrentChange, InvalidInput

log = logging.getLogger("leadflow.db")
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
# How long a writer waits for SQLite's write lock before giving up with "database is locked".
BUSY_TIMEOUT_SECONDS = 30.0


def _sqlite_pragmas(busy_timeout: float) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.execute("PRAGMA cache_size=-200000")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()
    return on_connect


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns are (de)serialized on every contact read and write: orjson does it 3-5x faster.
JSON_OPTIONS: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ArgumentError(f"unsupported database {parsed.get_backend_name()!r}")
        if parsed.get_backend_name() == "postgresql":
            # The driver would prepare a statement run five times, and PostgreSQL then keeps
            # a generic plan made without the values: one made while a table was small (a seq
            # scan) stays after it has grown, until the next ANALYZE (never, with autovacuum
            # off). A tracking batch's identity and message-id lookups took 17 ms each so,
            # against 2 ms planned with their values each time. (Forcing custom plans on the
            # server instead also replans every foreign-key check: COPY ran at half speed.)
            return create_engine(url, pool_pre_ping=True,
                                 connect_args={"prepare_threshold": None}, **JSON_OPTIONS)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise InvalidInput(f"not a database URL leadflow can use ({exc}); expected "
                           "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
                           field="LEADFLOW_DATABASE_URL") from None
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # A writer waits this long for another's write lock (sqlite:///PATH?timeout=SECONDS).
    raw = parsed.query.get("timeout")
    given = raw if raw is None or isinstance(raw, str) else raw[-1]
    try:
        busy_timeout = BUSY_TIMEOUT_SECONDS if given is None else float(given)
        if not 0 <= busy_timeout < 86400:
            raise ValueError
    except ValueError:
        raise InvalidInput(f"not a number of seconds from 0 to a day: timeout={given!r}",
                           field="LEADFLOW_DATABASE_URL") from None
    engine = create_engine(url, connect_args={"timeout": busy_timeout}, **JSON_OPTIONS)
    event.listen(engine, "connect", _sqlite_pragmas(busy_timeout))
    _writers[engine] = (threading.RLock(), busy_timeout)
    return engine


# SQLite lets one writer at a time in, and one kept out by busy_timeout sleeps, waking every
# few milliseconds and later every 100 ms to try again: the writers of one process (the
# requests of a web process) left to it let the lock lie free while they sleep, and take it in
# no order. They queue on this lock instead, and the next one starts the moment the last ends;
# writers in other processes still meet busy_timeout.
_writers: weakref.WeakKeyDictionary[Engine, tuple[threading.RLock, float]] = (
    weakref.WeakKeyDictionary())


@contextmanager
def one_writer_at_a_time(engine: Engine) -> Iterator[None]:
    """Hold the write turn of this process on ``engine`` (SQLite; PostgreSQL: no wait)."""
    found = _writers.get(engine)
    if found is None:
        yield
        return
    lock, timeout = found
    if not lock.acquire(timeout=timeout):
        raise sqlite3.OperationalError(
            f"database is locked: another writer of this process kept it over {timeout:g} s")
    try:
        yield
    finally:
        lock.release()


# A web process that checkpoints from a thread of its own still lets a write checkpoint the log
# once it holds this many pages (about 200 MB), should that thread fall behind.
BACKSTOP_CHECKPOINT_PAGES = 50_000


class BackgroundCheckpoints:
    """Copies SQLite's write-ahead log back into the database file from a thread of its own.

    By default the commit that fills the log past 1,000 pages does it, writing pages back
    and syncing the file while its request waits (a fifth of the time of a tracking batch).
    Here the engine's connections leave that to this thread, which every ``every`` seconds
    runs a PASSIVE checkpoint (never in a writer's or reader's way), then copies what was
    written meanwhile with this process's writers held back; a writer still checkpoints past
    BACKSTOP_CHECKPOINT_PAGES. Other processes keep the default.
    """

    def __init__(self, engine: Engine, *, every: float = 1.0) -> None:
        self.engine = engine
        self.every = every
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

        # This instance's own listener: two apps in one process (tests) may share an engine.
        def leave_checkpoints(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
        self._on_connect = leave_checkpoints

    def start(self) -> None:
        if self.engine.dialect.name != "sqlite" or self._thread is not None:
            return
        event.listen(self.engine, "connect", self._on_connect)
        self.engine.dispose()  # pooled connections were opened with the default
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        event.remove(self.engine, "connect", self._on_connect)
        self.engine.dispose()

    def checkpoint(self) -> tuple[int, int]:
        """One PASSIVE checkpoint: (frames in the log, frames copied back)."""
        raw = self.engine.raw_connection()
        try:
            busy, frames, copied = raw.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            raw.close()
        self.checkpoints += 1
        return (frames, copied) if not busy else (frames, 0)

    def copy_back(self) -> None:
        """Copy the whole log back: most of it while this process's writers go on, then the
        rest with them held back a moment. Only a log copied whole is started anew by the
        next writer; otherwise it grows for as long as they keep writing."""
        self.checkpoint()
        with one_writer_at_a_time(self.engine):
            self.checkpoint()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.copy_back()
            except Exception as exc:  # the backstop keeps the log bounded meanwhile
                log.warning("background checkpoint failed: %s", _said(exc))


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest revision (idempotent; runs on every start)."""
    command.upgrade(alembic_config(engine), "head")


def has_schema(engine: Engine) -> bool:
    return inspect(engine).has_table("contacts")


# PostgreSQL: lock_not_available (lock_timeout), query_canceled (statement_timeout).
BUSY_SQLSTATES = {"55P03", "57014"}


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database was too busy to take this work in
    time: SQLite's write lock held by another writer for longer than the busy timeout, or a
    PostgreSQL lock or statement timeout. Running the same work later gets past it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        orig = current.orig if isinstance(current, DBAPIError) else current
        if getattr(orig, "sqlstate", None) in BUSY_SQLSTATES:
            return True
        if isinstance(orig, sqlite3.OperationalError) and "is locked" in str(orig):
            return True
        # Only what raised it on purpose (``raise … from``): an error that merely happened
        # while a busy one was being handled is a failure of its own, to be seen in full.
        current = current.__cause__
    return False


def _said(exc: BaseException) -> str:
    """What the database said, in one line: the first line of the deepest cause."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def try_again_later(exc: BaseException) -> str | None:
    """Why work that failed with ``exc`` only has to run again later, in one line (the
    database was busy, or a concurrent change got in the way); None if it is a real failure."""
    if is_busy(exc):
        return f"the database was busy: {_said(exc)}"
    if isinstance(exc, ConcurrentChange):
        return f"a concurrent change got in the way: {_said(exc)}"
    return None


# SQLite lets one writer at a time hold the database, and a writer kept waiting by
# busy_timeout tries again only every 100 ms: a job that commits and at once begins its next
# transaction retakes the lock before anyone waiting has tried again, so however short its
# transactions it shuts every other writer out until it is done (and they give up with
# "database is locked" after the busy timeout). A job's units of work therefore leave the lock
# free for a moment, longer than that 100 ms, after each stretch of TURN_SECONDS of writing.
TURN_SECONDS = 1.0
TURN_GAP_SECONDS = 0.15
_turns = threading.local()  # per thread: when its last transaction ended, when its turn began
T = TypeVar("T")


def _transaction_ended(_conn: Any) -> None:
    _turns.ended = time.monotonic()


def taking_turns(engine: Engine, factory: Callable[[], T], *, turn: float = TURN_SECONDS,
                 gap: float = TURN_GAP_SECONDS) -> Callable[[], T]:
    """``factory`` (of units of work on ``engine``) for a job that writes batch after batch:
    on SQLite, once a thread has opened units back to back for ``turn`` seconds, it leaves
    the write lock free ``gap`` seconds before the next, so that other writers (web requests,
    the relay, other jobs and processes) take their turn. PostgreSQL locks rows, not the
    database: ``factory`` itself."""
    if engine.dialect.name != "sqlite":
        return factory
    for name in ("commit", "rollback"):
        if not event.contains(engine, name, _transaction_ended):
            event.listen(engine, name, _transaction_ended)

    def next_unit() -> T:
        now = time.monotonic()
        ended = getattr(_turns, "ended", float("-inf"))
        began = getattr(_turns, "began", None)
        if began is None or now - ended >= gap:  # the lock was left free: a new turn begins
            _turns.began = now
        elif now - began >= turn:
            time.sleep(gap - (now - ended))
            _turns.began = time.monotonic()
        return factory()

    return next_unit
