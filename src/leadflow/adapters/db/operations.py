"""Repositories of the machinery around the lifecycle: API keys, the outbox, webhooks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from leadflow.adapters.db import tables as t
from leadflow.domain.access import ApiKey
from leadflow.domain.ports import Delivery, OutboxMessage, Webhook
from leadflow.domain.webhooks import Message


def _key(row: Any) -> ApiKey:
    return ApiKey(id=row.id, name=row.name, kind=row.kind, prefix=row.prefix,
                  scopes=tuple(row.scopes or ()), created_at=row.created_at,
                  revoked_at=row.revoked_at, last_used_at=row.last_used_at,
                  user_id=row.user_id)


class SqlApiKeyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, *, name: str, kind: str, prefix: str, secret_hash: str,
            scopes: Sequence[str], at: float, user_id: int | None) -> ApiKey:
        result = self.conn.execute(insert(t.api_keys).values(
            name=name, kind=kind, prefix=prefix, secret_hash=secret_hash, scopes=list(scopes),
            created_at=at, user_id=user_id))
        key = result.inserted_primary_key
        assert key is not None
        return ApiKey(id=int(key[0]), name=name, kind=kind, prefix=prefix, scopes=tuple(scopes),
                      created_at=at, user_id=user_id)

    def by_prefix(self, prefix: str) -> tuple[ApiKey, str] | None:
        row = self.conn.execute(select(t.api_keys).where(t.api_keys.c.prefix == prefix)).first()
        return None if row is None else (_key(row), row.secret_hash)

    def all(self) -> list[ApiKey]:
        rows = self.conn.execute(select(t.api_keys).order_by(t.api_keys.c.id))
        return [_key(r) for r in rows]

    def revoke(self, key_id: int, at: float) -> bool:
        result = self.conn.execute(update(t.api_keys).where(
            t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None)).values(revoked_at=at))
        return result.rowcount > 0

    def touch(self, key_id: int, at: float) -> None:
        self.conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id)
                          .values(last_used_at=at))


def _message(row: Any) -> OutboxMessage:
    return OutboxMessage(id=row.id, topic=row.topic, contact_id=row.contact_id,
                         payload=row.payload, created_at=row.created_at)


class SqlOutboxRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, *, topic: str, contact_id: int | None, payload: dict[str, Any],
            at: float) -> None:
        self.conn.execute(insert(t.outbox).values(topic=topic, contact_id=contact_id,
                                                  payload=payload, created_at=at))

    def add_many(self, rows: Sequence[Message]) -> None:
        if rows:
            self.conn.execute(insert(t.outbox), [
                {"topic": topic, "contact_id": cid, "payload": payload, "created_at": at}
                for topic, cid, payload, at in rows])

    def pending(self, limit: int) -> list[OutboxMessage]:
        rows = self.conn.execute(select(t.outbox).where(t.outbox.c.relayed_at.is_(None))
                                 .order_by(t.outbox.c.id).limit(limit))
        return [_message(r) for r in rows]

    def claim(self, message_id: int, at: float) -> bool:
        result = self.conn.execute(update(t.outbox).where(
            t.outbox.c.id == message_id, t.outbox.c.relayed_at.is_(None)).values(relayed_at=at))
        return result.rowcount > 0

    def forget_contact(self, contact_id: int) -> None:
        self.conn.execute(update(t.outbox).where(t.outbox.c.contact_id == contact_id)
                          .values(payload={"contact_id": contact_id, "erased": True}))


def _webhook(row: Any) -> Webhook:
    return Webhook(id=row.id, url=row.url, secret=row.secret, topics=tuple(row.topics),
                   active=bool(row.active), created_at=row.created_at,
                   stages=tuple(row.stages) if row.stages is not None else None)


def _delivery(row: Any) -> Delivery:
    return Delivery(id=row.id, uid=row.uid, webhook_id=row.webhook_id, outbox_id=row.outbox_id,
                    topic=row.topic, status=row.status, attempts=row.attempts,
                    next_attempt_at=row.next_attempt_at, last_status_code=row.last_status_code,
                    last_error=row.last_error, created_at=row.created_at,
                    delivered_at=row.delivered_at)


class SqlWebhookRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, *, url: str, secret: str, topics: Sequence[str],
            stages: Sequence[str] | None, at: float) -> Webhook:
        result = self.conn.execute(insert(t.webhooks).values(
            url=url, secret=secret, topics=list(topics), active=True, created_at=at,
            stages=list(stages) if stages is not None else None))
        key = result.inserted_primary_key
        assert key is not None
        return Webhook(id=int(key[0]), url=url, secret=secret, topics=tuple(topics),
                       active=True, created_at=at,
                       stages=tuple(stages) if stages is not None else None)

    def get(self, webhook_id: int) -> Webhook | None:
        row = self.conn.execute(select(t.webhooks).where(t.webhooks.c.id == webhook_id)).first()
        return None if row is None else _webhook(row)

    def all(self) -> list[Webhook]:
        return [_webhook(r) for r in self.conn.execute(select(t.webhooks)
                                                        .order_by(t.webhooks.c.id))]

    def deactivate(self, webhook_id: int) -> bool:
        result = self.conn.execute(update(t.webhooks).where(
            t.webhooks.c.id == webhook_id, t.webhooks.c.active.is_(True)).values(active=False))
        if result.rowcount:
            # Nothing more goes out to an endpoint its owner removed.
            self.conn.execute(update(t.webhook_deliveries).where(
                t.webhook_deliveries.c.webhook_id == webhook_id,
                t.webhook_deliveries.c.status == "pending").values(
                status="cancelled", next_attempt_at=None))
        return result.rowcount > 0

    def add_delivery(self, *, webhook_id: int, outbox_id: int, topic: str, at: float) -> None:
        exists = self.conn.execute(select(t.webhook_deliveries.c.id).where(
            t.webhook_deliveries.c.webhook_id == webhook_id,
            t.webhook_deliveries.c.outbox_id == outbox_id)).first()
        if exists is None:
            self.conn.execute(insert(t.webhook_deliveries).values(
                webhook_id=webhook_id, outbox_id=outbox_id, uid=uuid.uuid4().hex, topic=topic,
                status="pending", attempts=0, next_attempt_at=at, created_at=at))

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        row = self.conn.execute(select(t.webhook_deliveries).where(
            t.webhook_deliveries.c.id == delivery_id)).first()
        return None if row is None else _delivery(row)

    def due_deliveries(self, now: float, limit: int) -> list[Delivery]:
        d = t.webhook_deliveries
        rows = self.conn.execute(select(d).where(d.c.status == "pending",
                                                 d.c.next_attempt_at <= now)
                                 .order_by(d.c.next_attempt_at, d.c.id).limit(limit))
        return [_delivery(r) for r in rows]

    def lease(self, delivery: Delivery, until: float) -> bool:
        d = t.webhook_deliveries
        result = self.conn.execute(update(d).where(
            d.c.id == delivery.id, d.c.status == "pending",
            d.c.next_attempt_at == delivery.next_attempt_at).values(next_attempt_at=until))
        return result.rowcount > 0

    def redeliver(self, delivery_id: int, at: float) -> bool:
        d = t.webhook_deliveries
        result = self.conn.execute(update(d).where(
            d.c.id == delivery_id, d.c.status.in_(("failed", "cancelled", "delivered"))).values(
            status="pending", attempts=0, next_attempt_at=at, delivered_at=None))
        return result.rowcount > 0

    def record_attempt(self, delivery_id: int, *, status: str, attempts: int,
                       next_attempt_at: float | None, status_code: int | None,
                       error: str | None, at: float) -> None:
        self.conn.execute(update(t.webhook_deliveries).where(
            t.webhook_deliveries.c.id == delivery_id).values(
            status=status, attempts=attempts, next_attempt_at=next_attempt_at,
            last_status_code=status_code, last_error=error,
            delivered_at=at if status == "delivered" else None))

    def deliveries(self, *, webhook_id: int | None, status: str | None,
                   limit: int) -> list[Delivery]:
        d = t.webhook_deliveries
        conditions = [c for c in (d.c.webhook_id == webhook_id if webhook_id else None,
                                  d.c.status == status if status else None) if c is not None]
        query = select(d).where(and_(True, *conditions)).order_by(d.c.id.desc()).limit(limit)
        return [_delivery(r) for r in self.conn.execute(query)]

    def payload_of(self, outbox_id: int) -> OutboxMessage | None:
        row = self.conn.execute(select(t.outbox).where(t.outbox.c.id == outbox_id)).first()
        return None if row is None else _message(row)


