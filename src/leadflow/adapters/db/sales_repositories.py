"""Repositories of sales: users, follow-up tasks, activities and opportunities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from sqlalchemy import Connection, insert, select, update

from leadflow.adapters.db import tables as t
from leadflow.domain.sales import Activity, Opportunity, Task
from leadflow.domain.users import User

USER_FIELDS = ("email", "name", "role", "team", "active", "away_until", "weight",
               "territories", "assigned", "created_at")


def _user(row: Any) -> User:
    m = row._mapping
    return User(id=m["id"], email=m["email"], name=m["name"], role=m["role"], team=m["team"],
                active=bool(m["active"]), away_until=m["away_until"], weight=m["weight"],
                territories=tuple(m["territories"] or ()), assigned=m["assigned"],
                created_at=m["created_at"])


class SqlUserRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, user: User, password_hash: str | None) -> User:
        values = {f: getattr(user, f) for f in USER_FIELDS}
        values["territories"] = list(user.territories)
        result = self.conn.execute(insert(t.users).values(
            **values, password_hash=password_hash, updated_at=user.created_at))
        key = result.inserted_primary_key
        assert key is not None
        return replace(user, id=int(key[0]))

    def get(self, user_id: int) -> User | None:
        row = self.conn.execute(select(t.users).where(t.users.c.id == user_id)).first()
        return None if row is None else _user(row)

    def get_by_email(self, email: str) -> User | None:
        row = self.conn.execute(select(t.users).where(
            t.users.c.email == email.strip().lower())).first()
        return None if row is None else _user(row)

    def password_hash(self, user_id: int) -> str | None:
        found: str | None = self.conn.execute(select(t.users.c.password_hash).where(
            t.users.c.id == user_id)).scalar()
        return found

    def set_password_hash(self, user_id: int, password_hash: str, at: float) -> None:
        self.conn.execute(update(t.users).where(t.users.c.id == user_id).values(
            password_hash=password_hash, updated_at=at))

    def all(self) -> list[User]:
        return [_user(r) for r in self.conn.execute(select(t.users).order_by(t.users.c.id))]

    def save(self, user: User, at: float) -> None:
        values = {f: getattr(user, f) for f in USER_FIELDS if f != "created_at"}
        values["territories"] = list(user.territories)
        self.conn.execute(update(t.users).where(t.users.c.id == user.id).values(
            **values, updated_at=at))

    def count_assigned(self, user_id: int) -> None:
        self.conn.execute(update(t.users).where(t.users.c.id == user_id).values(
            assigned=t.users.c.assigned + 1))

    def team_ids(self, team: str) -> frozenset[int]:
        return frozenset(self.conn.execute(select(t.users.c.id).where(
            t.users.c.team == team)).scalars())


def task_from_row(row: Any) -> Task:
    m = row._mapping
    return Task(**{f: m[f] for f in Task.__dataclass_fields__})


OPEN = t.tasks.c.done_at.is_(None)


class SqlTaskRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, *, contact_id: int, owner_id: int, kind: str, title: str, due_at: float,
            at: float, by: str) -> Task:
        result = self.conn.execute(insert(t.tasks).values(
            contact_id=contact_id, owner_id=owner_id, kind=kind, title=title, due_at=due_at,
            created_at=at, created_by=by))
        key = result.inserted_primary_key
        assert key is not None
        return Task(id=int(key[0]), contact_id=contact_id, owner_id=owner_id, kind=kind,
                    title=title, due_at=due_at, created_at=at, created_by=by)

    def get(self, task_id: int) -> Task | None:
        row = self.conn.execute(select(t.tasks).where(t.tasks.c.id == task_id)).first()
        return None if row is None else task_from_row(row)

    def open_for(self, contact_id: int) -> list[Task]:
        rows = self.conn.execute(select(t.tasks).where(
            t.tasks.c.contact_id == contact_id, OPEN).order_by(t.tasks.c.due_at, t.tasks.c.id))
        return [task_from_row(r) for r in rows]

    def of_contact(self, contact_id: int) -> list[Task]:
        rows = self.conn.execute(select(t.tasks).where(t.tasks.c.contact_id == contact_id)
                                 .order_by(t.tasks.c.created_at, t.tasks.c.id))
        return [task_from_row(r) for r in rows]

    def complete(self, task_id: int, *, at: float, by: str, outcome: str | None) -> None:
        self.conn.execute(update(t.tasks).where(t.tasks.c.id == task_id, OPEN).values(
            done_at=at, done_by=by, outcome=outcome))

    def reassign_open(self, contact_id: int, owner_id: int) -> None:
        self.conn.execute(update(t.tasks).where(t.tasks.c.contact_id == contact_id, OPEN)
                          .values(owner_id=owner_id))

    def close_open(self, contact_id: int, *, at: float, by: str, outcome: str) -> int:
        result = self.conn.execute(update(t.tasks).where(
            t.tasks.c.contact_id == contact_id, OPEN).values(done_at=at, done_by=by,
                                                             outcome=outcome))
        return int(result.rowcount)

    def due_for_reminder(self, now: float, until: float, limit: int) -> list[Task]:
        rows = self.conn.execute(select(t.tasks).where(
            OPEN, t.tasks.c.due_at >= now, t.tasks.c.due_at <= until,
            t.tasks.c.reminded_at.is_(None)).order_by(t.tasks.c.due_at).limit(limit))
        return [task_from_row(r) for r in rows]

    def unescalated_overdue(self, before: float, limit: int) -> list[Task]:
        rows = self.conn.execute(select(t.tasks).where(
            OPEN, t.tasks.c.due_at < before, t.tasks.c.escalated_at.is_(None))
            .order_by(t.tasks.c.due_at, t.tasks.c.id).limit(limit))
        return [task_from_row(r) for r in rows]

    def overdue_follow_ups(self, before: float, stages: Sequence[str], limit: int
                           ) -> list[Task]:
        rows = self.conn.execute(select(t.tasks).join(
            t.contacts, t.contacts.c.id == t.tasks.c.contact_id).where(
            OPEN, t.tasks.c.kind == "follow_up", t.tasks.c.due_at < before,
            t.contacts.c.stage.in_(list(stages))).order_by(t.tasks.c.due_at, t.tasks.c.id)
            .limit(limit))
        return [task_from_row(r) for r in rows]

    def mark_reminded(self, task_id: int, at: float) -> bool:
        result = self.conn.execute(update(t.tasks).where(
            t.tasks.c.id == task_id, t.tasks.c.reminded_at.is_(None)).values(reminded_at=at))
        return result.rowcount > 0

    def mark_escalated(self, task_id: int, at: float) -> bool:
        result = self.conn.execute(update(t.tasks).where(
            t.tasks.c.id == task_id, t.tasks.c.escalated_at.is_(None)).values(escalated_at=at))
        return result.rowcount > 0

    def reassign(self, from_id: int, to_id: int) -> None:
        self.conn.execute(update(t.tasks).where(t.tasks.c.contact_id == from_id)
                          .values(contact_id=to_id))

    def erase_text(self, contact_id: int) -> None:
        self.conn.execute(update(t.tasks).where(t.tasks.c.contact_id == contact_id).values(
            title="(erased)", outcome=None))


def _activity(row: Any) -> Activity:
    m = row._mapping
    return Activity(**{f: m[f] for f in Activity.__dataclass_fields__})


class SqlActivityRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, *, contact_id: int, user_id: int | None, kind: str, direction: str | None,
            at: float, subject: str | None, body: str | None, outcome: str | None,
            message_id: str | None, by: str) -> Activity:
        values = {"contact_id": contact_id, "user_id": user_id, "kind": kind,
                  "direction": direction, "at": at, "subject": subject, "body": body,
                  "outcome": outcome, "message_id": message_id, "created_by": by}
        result = self.conn.execute(insert(t.activities).values(**values))
        key = result.inserted_primary_key
        assert key is not None
        return Activity(id=int(key[0]), **values)  # type: ignore[arg-type]

    def of_contact(self, contact_id: int, limit: int) -> list[Activity]:
        rows = self.conn.execute(select(t.activities).where(
            t.activities.c.contact_id == contact_id)
            .order_by(t.activities.c.at.desc(), t.activities.c.id.desc()).limit(limit))
        return [_activity(r) for r in rows]

    def has_message(self, message_id: str) -> bool:
        return self.conn.execute(select(t.activities.c.id).where(
            t.activities.c.message_id == message_id)).first() is not None

    def message_ids(self, contact_id: int) -> list[str]:
        return list(self.conn.execute(select(t.activities.c.message_id).where(
            t.activities.c.contact_id == contact_id,
            t.activities.c.message_id.is_not(None))).scalars())

    def erase_text(self, contact_id: int) -> None:
        self.conn.execute(update(t.activities).where(
            t.activities.c.contact_id == contact_id).values(subject=None, body=None,
                                                            message_id=None))

    def reassign(self, from_id: int, to_id: int) -> None:
        self.conn.execute(update(t.activities).where(t.activities.c.contact_id == from_id)
                          .values(contact_id=to_id))


def _opportunity(row: Any) -> Opportunity:
    m = row._mapping
    return Opportunity(**{f: m[f] for f in Opportunity.__dataclass_fields__})


class SqlOpportunityRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, opportunity: Opportunity) -> Opportunity:
        values = asdict(opportunity)
        del values["id"]
        result = self.conn.execute(insert(t.opportunities).values(**values))
        key = result.inserted_primary_key
        assert key is not None
        return replace(opportunity, id=int(key[0]))

    def get(self, opportunity_id: int) -> Opportunity | None:
        row = self.conn.execute(select(t.opportunities).where(
            t.opportunities.c.id == opportunity_id)).first()
        return None if row is None else _opportunity(row)

    def save(self, opportunity: Opportunity) -> None:
        values = asdict(opportunity)
        del values["id"]
        self.conn.execute(update(t.opportunities).where(
            t.opportunities.c.id == opportunity.id).values(**values))

    def of_contact(self, contact_id: int) -> list[Opportunity]:
        rows = self.conn.execute(select(t.opportunities).where(
            t.opportunities.c.contact_id == contact_id).order_by(t.opportunities.c.id))
        return [_opportunity(r) for r in rows]

    def reassign_owner(self, contact_id: int, owner_id: int | None) -> None:
        self.conn.execute(update(t.opportunities).where(
            t.opportunities.c.contact_id == contact_id, t.opportunities.c.status == "open")
            .values(owner_id=owner_id))

    def erase_text(self, contact_id: int) -> None:
        self.conn.execute(update(t.opportunities).where(
            t.opportunities.c.contact_id == contact_id).values(name="(erased)",
                                                               next_step=None))

    def reassign(self, from_id: int, to_id: int) -> None:
        self.conn.execute(update(t.opportunities).where(
            t.opportunities.c.contact_id == from_id).values(contact_id=to_id))
