"""Webhook subscriptions, the outbox relay, and signed delivery with retries."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from leadflow.domain.errors import InvalidInput, NotFound
from leadflow.domain.ports import Delivery, UnitOfWork, Webhook, WebhookSender
from leadflow.domain.webhooks import (
    DELIVERY_HEADER,
    MAIL_NOTIFICATION,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOPIC_HEADER,
    parse_topics,
    retry_delay,
    signature,
)
from leadflow.services.context import Context

STATUSES = ("pending", "delivered", "failed", "cancelled")


def subscribe(*, uow: UnitOfWork, ctx: Context, url: str, topics: list[str],
              secret: str | None = None, stages: list[str] | None = None) -> Webhook:
    """Subscribe an HTTP(S) endpoint to topics; deliveries are signed with the secret.
    ``stages`` narrows stage.changed to moves into those stages."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if (parts.scheme not in ("http", "https") or not parts.hostname
            or any(c.isspace() or ord(c) < 32 for c in url)):
        raise InvalidInput(f"expected an http(s) URL, got {url!r}", field="url")
    if stages is not None:
        stages = list(dict.fromkeys(s.strip().lower() for s in stages if s.strip()))
        unknown = [s for s in stages if not ctx.config.has_stage(s)]
        if unknown or not stages:
            raise InvalidInput(f"unknown stage {unknown[0]!r}" if unknown
                               else "name at least one stage", field="stages")
    if len(url) > 2000:
        raise InvalidInput("longer than 2000 characters", field="url")
    chosen = parse_topics(topics)
    secret = secret or f"whsec_{secrets.token_urlsafe(32)}"
    if len(secret) < 16 or len(secret) > 100:
        raise InvalidInput("a signing secret has 16 to 100 characters", field="secret")
    with uow:
        hook = uow.webhooks.add(url=url, secret=secret, topics=chosen, stages=stages,
                                at=ctx.clock.now())
        uow.commit()
    return hook


def unsubscribe(*, uow: UnitOfWork, webhook_id: int) -> None:
    with uow:
        if not uow.webhooks.deactivate(webhook_id):
            raise NotFound(f"no active webhook with id {webhook_id}", field="webhook_id")
        uow.commit()


def list_webhooks(*, uow: UnitOfWork) -> list[Webhook]:
    with uow:
        return uow.webhooks.all()


def redeliver(*, uow: UnitOfWork, ctx: Context, delivery_id: int) -> None:
    """Send a delivery again, attempts from zero (a receiver that was down for long)."""
    with uow:
        if not uow.webhooks.redeliver(delivery_id, ctx.clock.now()):
            found = uow.webhooks.get_delivery(delivery_id)
            raise NotFound(f"no delivery with id {delivery_id}" if found is None else
                           f"delivery {delivery_id} is {found.status}: it will go by itself",
                           field="delivery_id")
        uow.commit()


def delivery_log(*, uow: UnitOfWork, webhook_id: int | None = None, status: str | None = None,
                 limit: int = 50) -> list[Delivery]:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status is one of {', '.join(STATUSES)}", field="status")
    with uow:
        return uow.webhooks.deliveries(webhook_id=webhook_id, status=status, limit=limit)


@dataclass
class RelayReport:
    relayed: int = 0
    handed_out: list[tuple[int, float]] = field(default_factory=list)  # (delivery, lease)
    mails: list[int] = field(default_factory=list)  # outbox ids of notification emails


def relay(*, uow: Callable[[], UnitOfWork], ctx: Context, lease_seconds: float,
          batch: int = 200) -> RelayReport:
    """Fan new outbox messages out into one delivery per matching webhook, then hand out
    the deliveries that are due (new ones and retries) for the caller to enqueue.

    Several relays may run at once: a message or delivery goes to whichever claims it first.
    A delivery whose worker died is handed out again when its lease runs out.
    """
    report = RelayReport()
    now = ctx.clock.now()
    with uow() as work:
        messages = work.outbox.pending(batch)
        hooks = [h for h in work.webhooks.all() if h.active] if messages else []
        for message in messages:
            if not work.outbox.claim(message.id, now):
                continue
            report.relayed += 1
            if message.topic == MAIL_NOTIFICATION:
                report.mails.append(message.id)
                continue
            for hook in hooks:
                if hook.wants(message.topic, message.payload):
                    work.webhooks.add_delivery(webhook_id=hook.id, outbox_id=message.id,
                                               topic=message.topic, at=now)
        work.commit()
    with uow() as work:
        for delivery in work.webhooks.due_deliveries(now, batch):
            lease = now + lease_seconds
            if work.webhooks.lease(delivery, lease):
                report.handed_out.append((delivery.id, lease))
        work.commit()
    return report


def deliver(*, uow: Callable[[], UnitOfWork], ctx: Context, sender: WebhookSender,
            delivery_id: int, lease: float, retry_seconds: float,
            timeout_seconds: float = 0.0) -> str:
    """Post one delivery, signed; record the attempt. Returns the delivery's status after.

    The job runs only while ``lease`` (from the relay) is the delivery's current one and
    covers the whole post (``timeout_seconds``): a job that ran already, or one whose lease
    ran out or is about to, does nothing, so two jobs do not post one delivery at once.
    """
    with uow() as work:
        delivery = work.webhooks.get_delivery(delivery_id)
        if delivery is None or delivery.status != "pending":
            return delivery.status if delivery else "missing"
        if delivery.next_attempt_at != lease or ctx.clock.now() + timeout_seconds >= lease:
            # Handed to another job, or too little of the lease left to finish the post
            # before the relay may hand it out again.
            return "superseded"
        hook = work.webhooks.get(delivery.webhook_id)
        message = work.webhooks.payload_of(delivery.outbox_id)
    if hook is None or not hook.active or message is None:
        status = "cancelled"
        with uow() as work:
            work.webhooks.record_attempt(delivery_id, status=status, attempts=delivery.attempts,
                                         next_attempt_at=None, status_code=None,
                                         error="webhook removed", at=ctx.clock.now())
            work.commit()
        return status
    body = json.dumps({"id": delivery.uid, "topic": message.topic,
                       "created_at": message.created_at, "data": message.payload},
                      sort_keys=True, separators=(",", ":")).encode()
    stamp = int(ctx.clock.now())
    reply = sender.post(hook.url, body, {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(hook.secret, stamp, body),
        TIMESTAMP_HEADER: str(stamp),
        DELIVERY_HEADER: delivery.uid,
        TOPIC_HEADER: message.topic,
    })
    now = ctx.clock.now()
    attempts = delivery.attempts + 1
    ok = reply.status_code is not None and 200 <= reply.status_code < 300
    if ok:
        status, next_at, error = "delivered", None, None
    else:
        delay = retry_delay(attempts, base=retry_seconds)
        status = "pending" if delay is not None else "failed"
        next_at = now + delay if delay is not None else None
        error = reply.error if reply.status_code is None else \
            f"HTTP {reply.status_code}" + (f": {reply.error}" if reply.error else "")
    with uow() as work:
        work.webhooks.record_attempt(delivery_id, status=status, attempts=attempts,
                                     next_attempt_at=next_at, status_code=reply.status_code,
                                     error=error, at=now)
        work.commit()
    return status
