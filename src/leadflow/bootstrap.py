"""Wiring: settings → engine (migrated) → lifecycle config → services context."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from leadflow.adapters.clock import SystemClock
from leadflow.adapters.config_file import load_config
from leadflow.adapters.db.bulk_scoring import PolarsBulkScoring
from leadflow.adapters.db.engine import make_engine, migrate
from leadflow.adapters.db.repositories import SqlHistoryRepository, SqlUnitOfWork
from leadflow.adapters.mail.senders import make_mailer
from leadflow.adapters.mail.templates import JinjaRenderer
from leadflow.config import Settings
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import Unavailable
from leadflow.domain.mail_links import LinkSigner
from leadflow.domain.ports import Clock, Mailer
from leadflow.services.context import Context
from leadflow.services.mail_sending import Postage


class App:
    """One configured leadflow: its database, lifecycle configuration and clock."""

    def __init__(self, settings: Settings | None = None, *, clock: Clock | None = None,
                 config: LifecycleConfig | None = None) -> None:
        self.settings = settings or Settings()
        self.config = config or load_config(self.settings.pipeline_path)
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
