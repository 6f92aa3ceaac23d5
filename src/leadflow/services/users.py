"""Users: create and change them, check passwords, and say who a key acts as."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from leadflow.domain.access import ApiKey
from leadflow.domain.assignment import parse_territory
from leadflow.domain.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from leadflow.domain.ports import UnitOfWork
from leadflow.domain.users import (
    ROLE_SCOPE,
    ROLES,
    SALES_ROLES,
    Principal,
    User,
    capped_scope,
)
from leadflow.services.context import Context

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
_hasher = PasswordHasher()
# Checked against when the email is unknown, so that a wrong email costs as long as a wrong
# password and timing does not tell which users exist.
_DUMMY_HASH = _hasher.hash("not a password of anyone")
EDITABLE = ("name", "role", "team", "active", "away_until", "weight", "territories")


def _email(value: str) -> str:
    email = (value or "").strip().lower()
    if not EMAIL_RE.match(email):
        raise InvalidInput(f"not an email address: {value!r}", field="email")
    return email


def _password(value: str) -> str:
    if len(value or "") < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters",
                           field="password")
    return value


def _clean(changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(changes)
    if "name" in out:
        out["name"] = str(out["name"] or "").strip()
        if not out["name"] or len(out["name"]) > 200:
            raise InvalidInput("a user needs a name of at most 200 characters", field="name")
    if "role" in out and out["role"] not in ROLES:
        raise InvalidInput(f"unknown role {out['role']!r} (one of {', '.join(ROLES)})",
                           field="role")
    if "team" in out:
        out["team"] = (str(out["team"]).strip() or None) if out["team"] is not None else None
    if "weight" in out:
        weight = out["weight"]
        if isinstance(weight, bool) or not isinstance(weight, int | float) or \
                not 0 < weight <= 100:
            raise InvalidInput("a capacity weight is a number above 0 and at most 100",
                               field="weight")
        out["weight"] = float(weight)
    if "territories" in out:
        out["territories"] = tuple(parse_territory(v) for v in out["territories"] or ())
    if "active" in out:
        out["active"] = bool(out["active"])
    return out


def create_user(*, uow: UnitOfWork, ctx: Context, email: str, name: str, role: str,
                password: str | None = None, team: str | None = None, weight: float = 1.0,
                territories: list[str] | None = None) -> User:
    """Add a user; without a password they can only use tokens an admin makes for them."""
    now = ctx.clock.now()
    fields = _clean({"name": name, "role": role, "team": team, "weight": weight,
                     "territories": territories or []})
    hashed = _hasher.hash(_password(password)) if password is not None else None
    user = User(id=0, email=_email(email), created_at=now, **fields)
    with uow:
        if uow.users.get_by_email(user.email) is not None:
            raise Conflict(f"a user with email {user.email} exists", field="email")
        if user.role in SALES_ROLES:
            user = replace(user, assigned=_fair_start(uow.users.all(), user.weight))
        user = uow.users.add(user, hashed)
        uow.commit()
    return user


def _fair_start(users: list[User], weight: float) -> int:
    """A new rep's round-robin count, in line with the team's: not a flood of catch-up."""
    shares = [u.assigned / u.weight for u in users if u.role in SALES_ROLES and u.active]
    return round(min(shares) * weight) if shares else 0


def get_user(*, uow: UnitOfWork, ref: str | int) -> User:
    with uow:
        return find_user(uow, ref)


def find_user(uow: UnitOfWork, ref: str | int) -> User:
    text = str(ref).strip()
    user = uow.users.get(int(text)) if text.isdigit() else uow.users.get_by_email(text)
    if user is None:
        raise NotFound(f"no user {text!r}", field="user")
    return user


def list_users(*, uow: UnitOfWork, principal: Principal) -> list[User]:
    """Everyone for admins and marketers; a manager's team; a rep themself."""
    with uow:
        users = uow.users.all()
    owners = principal.visible_owners
    return users if owners is None else [u for u in users if u.id in owners]


def update_user(*, uow: UnitOfWork, ctx: Context, ref: str | int,
                changes: dict[str, Any]) -> User:
    """Change role, team, activity, out-of-office, weight or territories."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(unknown)}", field=unknown[0])
    fields = _clean(changes)
    with uow:
        user = find_user(uow, ref)
        if (fields.get("role") not in (None, "admin") and user.role == "admin") or \
                (fields.get("active") is False and user.role == "admin"):
            others = [u for u in uow.users.all()
                      if u.role == "admin" and u.active and u.id != user.id]
            if not others:
                raise Conflict("this is the last active admin", field="role")
        updated = replace(user, **fields)
        uow.users.save(updated, ctx.clock.now())
        uow.commit()
    return updated


def set_password(*, uow: UnitOfWork, ctx: Context, ref: str | int, password: str) -> None:
    hashed = _hasher.hash(_password(password))
    with uow:
        user = find_user(uow, ref)
        uow.users.set_password_hash(user.id, hashed, ctx.clock.now())
        uow.commit()


def check_password(*, uow: UnitOfWork, email: str, password: str) -> User:
    """The active user with this email and password; one error for every kind of miss."""
    with uow:
        user = uow.users.get_by_email((email or "").strip().lower())
        stored = uow.users.password_hash(user.id) if user is not None else None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password or "")
        ok = stored is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.active:
        raise Unauthenticated("wrong email or password", field="password")
    return user


def principal_for(*, uow: UnitOfWork, key: ApiKey) -> Principal:
    """Who a secret key acts as: its user, with the key's scope capped by the user's role."""
    if key.user_id is None:
        raise Unauthenticated("this key belongs to no user (it was made before users "
                              "existed): make a new one with `leadflow keys create --user`",
                              field="authorization")
    with uow:
        user = uow.users.get(key.user_id)
        team = _team_of(uow, user) if user is not None else frozenset()
    if user is None or not user.active:
        raise Unauthenticated("the user of this key is deactivated", field="authorization")
    made = principal_of(user, scope=capped_scope(key.scopes, user.role), team_ids=team)
    return replace(made, name=f"{made.name} via key {key.name}"[:200])  # actor columns: 200


def _team_of(uow: UnitOfWork, user: User) -> frozenset[int]:
    """The users a sales manager sees the contacts of (their team); nobody for the others."""
    if user.role != "sales_manager" or not user.team:
        return frozenset()
    return uow.users.team_ids(user.team)


def principal_of(user: User, *, scope: str, team_ids: frozenset[int] = frozenset()
                 ) -> Principal:
    return Principal(name=f"user:{user.email}"[:200], role=user.role, scope=scope, user_id=user.id,
                     team_ids=team_ids)


def acting_as(*, uow: UnitOfWork, ref: str | int) -> Principal:
    """The CLI's ``--as USER``: act with that user's full rights (and no more)."""
    with uow:
        user = find_user(uow, ref)
        team = _team_of(uow, user)
    if not user.active:
        raise InvalidInput(f"user {user.email} is deactivated", field="as")
    return principal_of(user, scope=ROLE_SCOPE[user.role], team_ids=team)

