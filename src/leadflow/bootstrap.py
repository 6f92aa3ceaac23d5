"""Wiring: settings → engine (migrated) → lifecycle config → services context."""

from __future__ import annotations

import logging
import os
import threading
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from leadflow.adapters.clock import SystemClock
from leadflow.adapters.config_file import load_config
from leadflow.adapters.db.bulk_scoring import PolarsBulkScoring
from leadflow.adapters.db.engine import make_engine, migrate
from leadflow.adapters.db.repositories import SqlHistoryRepository, SqlUnitOfWork
from leadflow.adapters.mail.senders import make_mailer
from leadflow.adapters.mail.templates import JinjaRenderer
from leadflow.config import Settings
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import ConfigInvalid, Unavailable
from leadflow.domain.mail_links import LinkSigner
from leadflow.domain.ports import Clock, Mailer
from leadflow.services.context import Context
from leadflow.services.mail_sending import Postage

log = logging.getLogger("leadflow.config")
FileStamp = tuple[str, int, int, int] | None


def _stamp(path: Path | None) -> FileStamp:
    """What tells a changed file: path, inode, size, modification time (None: no file)."""
    if path is None:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (str(path), found.st_ino, found.st_size, found.st_mtime_ns)


class App:
    """One configured leadflow: its database, lifecycle configuration and clock."""

    def __init__(self, settings: Settings | None = None, *, clock: Clock | None = None,
                 config: LifecycleConfig | None = None) -> None:
        self.settings = settings or Settings()
        # The file's stamp before reading it: a change while it is read shows next time.
        self._config_stamp = _stamp(self.settings.pipeline_in_use)
        self._config_lock = threading.Lock()  # one reload at a time (pages, the relay)
        self.config = config or load_config(self.settings.pipeline_in_use)
        # Why the lifecycle file, changed since, is not the configuration in use (None: it is).
        self.config_file_problems: ConfigInvalid | None = None
        self.clock = clock or SystemClock()
        self._committed_shapes: dict[str, int] = {}
        self.ctx = Context(config=self.config, clock=self.clock,
                           suppression_salt=self.settings.suppression_salt)

    @cached_property
    def engine(self) -> Engine:
        url = self.settings.resolved_database_url
        engine = make_engine(url)
        try:
            migrate(engine)
        except OperationalError as exc:
            engine.dispose()
            shown = make_url(url).render_as_string(hide_password=True)
            raise Unavailable(f"cannot open the database {shown}: "
                              f"{str(exc.orig).strip().splitlines()[-1]}") from None
        with engine.begin() as conn:
            SqlHistoryRepository(conn).record_config_version(
                self.config.config_version, self.config.raw, self.clock.now())
        return engine

    def use_config(self, config: LifecycleConfig) -> None:
        """Work under ``config`` from now on in this process (recorded as a configuration
        version, as at start). The settings page calls it after saving the file."""
        with self._config_lock:
            self._use(config, _stamp(self.settings.pipeline_in_use))

    def _use(self, config: LifecycleConfig, stamp: FileStamp) -> None:
        if "engine" in self.__dict__:  # else the engine records it when first made
            try:
                with self.engine.begin() as conn:
                    SqlHistoryRepository(conn).record_config_version(
                        config.config_version, config.raw, self.clock.now())
            except IntegrityError:
                pass  # another process recorded the same version at the same moment
        self.ctx = Context(config=config, clock=self.clock,
                           suppression_salt=self.settings.suppression_salt)
        self.config = config
        self._config_stamp = stamp
        self.config_file_problems = None

    def refresh_config(self) -> bool:
        """Load the lifecycle file again when it changed since it was loaded (saved by the
        settings page of another process, or edited by hand); whether the configuration in
        use changed. A file with problems is logged and the one in use stays."""
        path = self.settings.pipeline_in_use
        if _stamp(path) == self._config_stamp:  # the usual case, without waiting
            return False
        with self._config_lock:
            return self._reload(path)

    def _reload(self, path: Path | None) -> bool:
        stamp = _stamp(path)
        if stamp == self._config_stamp:
            return False
        try:
            config = load_config(path)
        except ConfigInvalid as exc:
            self._config_stamp = stamp  # said once, not at every round
            self.config_file_problems = exc
            log.error("the lifecycle configuration file changed and has problems; still "
                      "using the previous one", extra={"problems": exc.message,
                                                       "version": self.config.config_version})
            return False
        if config.digest == self.config.digest:
            self._config_stamp = stamp
            self.config_file_problems = None
            return False
        self._use(config, stamp)  # a failure here (database away) is tried again next time
        log.info("lifecycle configuration reloaded",
                 extra={"version": config.config_version, "path": str(path)})
        return True

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.config.engagement.half_life_seconds,
                             self._committed_shapes)

    def reader(self) -> SqlUnitOfWork:
        """A unit of work for reading that does not wait for writers (on SQLite). One that
        also writes must write before it reads, or it may meet ConcurrentChange."""
        return SqlUnitOfWork(self.engine, self.config.engagement.half_life_seconds,
                             self._committed_shapes, write_lock=False)

    def data_replaced(self) -> None:
        """Every row was deleted: forget what was cached about rows (event shape ids)."""
        self._committed_shapes.clear()

    @cached_property
    def mailer(self) -> Mailer:
        return make_mailer(self.settings)

    @cached_property
    def links(self) -> LinkSigner:
        return LinkSigner(key=self.settings.signing_key, base_url=self.settings.public_url)

    @cached_property
    def postage(self) -> Postage:
        return Postage(mailer=self.mailer, renderer=JinjaRenderer(), links=self.links,
                       sender=self.settings.mail_from, company=self.settings.company_name)

    def bulk_scoring(self) -> PolarsBulkScoring:
        return PolarsBulkScoring(self.engine, self.settings.resolved_database_url,
                                 self.config,
                                 chunk_contacts=self.settings.rescore_chunk_contacts)
