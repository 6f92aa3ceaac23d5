"""The jobs leadflow runs in the background, and the worker that runs them.

``leadflow worker`` runs them in a process of its own (any number of them, on Redis);
``leadflow serve`` runs the same worker in threads for the zero-set-up case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

from huey import Huey, crontab
from huey.consumer import Consumer
from huey.exceptions import TaskLockedException
from huey.signals import SIGNAL_COMPLETE, SIGNAL_ERROR

from leadflow.adapters.db.engine import taking_turns, try_again_later
from leadflow.adapters.ml.store import SqlPredictiveStore
from leadflow.adapters.queue.huey_queue import (
    EmbeddedConsumer,
    RelayLoop,
    check_reachable,
    make_huey,
)
from leadflow.adapters.webhook_http import HttpxSender
from leadflow.bootstrap import App
from leadflow.domain.ports import NullProgress, UnitOfWorkFactory
from leadflow.entrypoints.metrics import JOBS_DONE, WEBHOOKS
from leadflow.services import nurture, predictive
from leadflow.services.assignments import assign_unowned
from leadflow.services.followup import sweep_follow_ups
from leadflow.services.mail_sending import send_due, sweep_interrupted
from leadflow.services.notifications import send_notification
from leadflow.services.temperatures import refresh_expired_temperatures
from leadflow.services.webhooks import deliver, relay

log = logging.getLogger("leadflow.worker")
NURTURE_FULL_SYNC_SECONDS = 3600.0
T = TypeVar("T")


def unless_busy(task: str, run: Callable[[], T], empty: T) -> T:
    """``run()``; or, when the database was too busy to take its work (another writer held
    it past the busy timeout, or got in the way), ``empty`` and one warning line: the job
    tries again at its next run, where it left off."""
    try:
        return run()
    except Exception as exc:
        reason = try_again_later(exc)
        if reason is None:
            raise
        log.warning(f"{task}: {reason}; trying again at the next run", extra={"task": task})
        return empty


class Jobs:
    """The Huey instance of one App and the tasks registered on it."""

    def __init__(self, app: App) -> None:
        self.app = app
        s = app.settings
        self.huey: Huey = make_huey(name=s.queue_name, redis_url=s.redis_url,
                                    sqlite_path=s.queue_path)
        self.sender = HttpxSender(timeout=s.webhook_timeout_seconds)
        self.deliver_webhook = self.huey.task(name="deliver_webhook")(self._deliver_webhook)
        self.send_notification = self.huey.task(name="send_notification", retries=5,
                                                retry_delay=60)(self._send_notification)
        self.refresh_temperatures = self.huey.periodic_task(
            crontab(minute="*"), name="refresh_temperatures")(self._refresh_temperatures)
        self.follow_up = self.huey.periodic_task(
            crontab(minute="*"), name="follow_up")(self._follow_up)
        self.nurture = self.huey.periodic_task(
            crontab(minute="*"), name="nurture")(self._nurture)
        self.send_mail = self.huey.task(name="send_mail")(self._send_mail)
        self.train_model = self.huey.task(name="train_model")(self._train_model)
        self.score_predictions = self.huey.periodic_task(
            crontab(minute="*"), name="score_predictions")(self._score_predictions)
        self._last_mail_kick = 0.0
        # The first pass of a worker, and one an hour, looks at every contact; the others
        # only at contacts changed since the previous pass.
        self._nurture_at = 0.0
        self._nurture_full_at = float("-inf")
        self._config = app.config
        self.huey.signal(SIGNAL_COMPLETE)(self._on_complete)
        self.huey.signal(SIGNAL_ERROR)(self._on_error)

    def writer(self) -> UnitOfWorkFactory:
        """Units of work for a job that writes batch after batch: on SQLite it leaves the
        database free for a moment now and then, so that other writers are not shut out."""
        return taking_turns(self.app.engine, self.app.uow)

    def _deliver_webhook(self, delivery_id: int, lease: float) -> str:
        status = deliver(uow=self.app.uow, ctx=self.app.ctx, sender=self.sender,
                         delivery_id=delivery_id, lease=lease,
                         retry_seconds=self.app.settings.webhook_retry_seconds,
                         timeout_seconds=self.app.settings.webhook_timeout_seconds)
        WEBHOOKS.labels(status=status).inc()
        log.info("webhook delivery", extra={"delivery_id": delivery_id, "status": status})
        return status

    def _send_notification(self, outbox_id: int) -> bool:
        return send_notification(uow=self.app.uow(), mailer=self.app.mailer,
                                 sender=self.app.settings.mail_from, outbox_id=outbox_id)

    def _refresh_temperatures(self) -> int:
        """Every minute: temperatures that time alone changed (a demo request growing old).
        One worker at a time: the lock spans every worker on the same queue."""
        try:
            with self.huey.lock_task("refresh_temperatures"):
                return unless_busy("refresh_temperatures", lambda: refresh_expired_temperatures(
                    uow_factory=self.writer(), ctx=self.app.ctx), 0)
        except TaskLockedException:
            return 0  # another worker is at it

    def _follow_up(self) -> dict[str, int]:
        """Every minute: hand off prospects a bulk path moved (import, batched tracking),
        then remind, escalate and apply the breach policy. One worker at a time."""
        def run() -> dict[str, int]:
            writer = self.writer()
            assigned = assign_unowned(uow_factory=writer, ctx=self.app.ctx)
            report = sweep_follow_ups(uow_factory=writer, ctx=self.app.ctx)
            return {"assigned": assigned, **asdict(report)}

        try:
            with self.huey.lock_task("follow_up"):
                return unless_busy("follow_up", run, {})
        except TaskLockedException:
            return {}

    def _nurture(self) -> dict[str, Any]:
        """Every minute: tracks' members follow their stages, milestone autoresponders, due
        steps queue their email. One worker at a time. A pass the database was too busy for
        (or that stopped half way) is done again at the next run, from the same point."""
        def run() -> dict[str, Any]:
            writer = self.writer()
            started = self.app.clock.now()
            full = started - self._nurture_full_at >= NURTURE_FULL_SYNC_SECONDS
            report = nurture.tick(uow=writer, ctx=self.app.ctx,
                                  changed_since=None if full else self._nurture_at)
            self._nurture_at = started
            if full:
                self._nurture_full_at = started
            sweep_interrupted(uow=writer, ctx=self.app.ctx)
            return asdict(report)

        try:
            with self.huey.lock_task("nurture"):
                return unless_busy("nurture", run, {})
        except TaskLockedException:
            return {}

    def _send_mail(self) -> dict[str, Any]:
        """Send queued email that is due. Any number of workers may run it at once: claims
        hold each contact's lock, so the frequency cap holds and nothing goes twice. One the
        database was too busy for is done at the relay's next kick."""
        def run() -> dict[str, Any]:
            report = send_due(uow=self.writer(), ctx=self.app.ctx, postage=self.app.postage,
                              batch_size=self.app.settings.mail_batch_size)
            if report.sent or report.failed:
                log.info("mail sent", extra=asdict(report))
            return asdict(report)

        return unless_busy("send_mail", run, {})

    def _train_model(self, *, trained_by: str, target: str | None = None,
                     horizon_days: float | None = None, seed: int = 7,
                     activate: bool = False) -> dict[str, Any]:
        """Train the conversion model on the history (``leadflow model train --background``);
        with ``activate``, the new version becomes the active one (scored by the next pass)."""
        from leadflow.adapters.ml.learners import (  # scikit-learn, when needed
            LeadflowModel,
            OneHotLogistic,
        )

        store = SqlPredictiveStore(self.app.engine)
        version = predictive.train(store=store, ctx=self.app.ctx, learner=LeadflowModel(),
                                   baseline=OneHotLogistic(), trained_by=trained_by,
                                   progress=NullProgress(), target=target,
                                   horizon_days=horizon_days, seed=seed)
        if activate:
            predictive.activate(store=store, ctx=self.app.ctx, version_id=version.id,
                                score_now=False, progress=NullProgress())
        log.info("model trained", extra={"version": version.id, "auc": version.metrics["auc"]})
        return {"version": version.id, "auc": version.metrics["auc"],
                "average_precision": version.metrics["average_precision"]}

    def _score_predictions(self) -> dict[str, Any]:
        """Every minute: the active model scores the contacts changed since its last pass
        (every contact after an activation). One worker at a time."""
        def run() -> dict[str, Any]:
            return asdict(predictive.score(store=SqlPredictiveStore(self.app.engine),
                                           ctx=self.app.ctx, progress=NullProgress()))

        try:
            with self.huey.lock_task("score_predictions"):
                return unless_busy("score_predictions", run, {})
        except TaskLockedException:
            return {}

    def _on_complete(self, signal: str, task: Any, *args: Any) -> None:
        JOBS_DONE.labels(task=task.name, outcome="ok").inc()

    def _on_error(self, signal: str, task: Any, exc: Exception | None = None) -> None:
        JOBS_DONE.labels(task=task.name, outcome="error").inc()
        log.error("job failed", extra={"task": task.name, "error": repr(exc)})

    def follow_config(self) -> None:
        """A lifecycle file changed since it was loaded (the settings page saved it, or
        someone edited it) applies here too, from the next job on; the next nurture pass
        then looks at every contact."""
        self.app.refresh_config()
        if self.app.config is not self._config:
            self._config = self.app.config
            self._nurture_full_at = float("-inf")

    def relay_once(self) -> int:
        """Move outbox messages into deliveries and enqueue the due ones; how much it did."""
        self.follow_config()
        report = relay(uow=self.app.uow, ctx=self.app.ctx,
                       lease_seconds=self.app.settings.webhook_lease_seconds)
        for delivery_id, lease in report.handed_out:
            self.deliver_webhook(delivery_id, lease)
        for outbox_id in report.mails:
            self.send_notification(outbox_id)
        now = self.app.clock.now()
        if now - self._last_mail_kick >= self.app.settings.mail_interval_seconds:
            self._last_mail_kick = now
            with self.app.reader() as uow:
                due = bool(uow.mail.due(now, 1))
            if due:
                self.send_mail()
        return report.relayed + len(report.handed_out)


class Worker:
    """A Huey consumer plus the outbox relay, started and stopped together."""

    def __init__(self, jobs: Jobs, *, threads: int = 2, embedded: bool = False) -> None:
        self.jobs = jobs
        self.consumer = (EmbeddedConsumer if embedded else Consumer)(
            jobs.huey, workers=threads, worker_type="thread", periodic=True,
            initial_delay=0.05, max_delay=0.5, backoff=1.5)
        self.relay = RelayLoop(jobs.relay_once, jobs.app.settings.relay_interval_seconds)

    def check(self) -> None:
        s = self.jobs.app.settings
        check_reachable(self.jobs.huey, s.redis_url or str(s.queue_path))

    def start(self) -> None:
        self.check()
        self.relay.start()
        self.consumer.start()

    def stop(self) -> None:
        self.relay.stop()
        self.consumer.stop(graceful=True)

    def run(self) -> None:
        """Run in the foreground until interrupted (``leadflow worker``)."""
        self.check()
        self.relay.start()
        try:
            self.consumer.run()
        finally:
            self.relay.stop()
