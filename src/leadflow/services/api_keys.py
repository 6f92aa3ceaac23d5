"""API keys: create, list, revoke, and authenticate a request by its key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from leadflow.domain.access import KINDS, SCOPES, TRACK, ApiKey, parse_scopes
from leadflow.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from leadflow.domain.ports import UnitOfWork
from leadflow.services.context import Context
from leadflow.services.users import find_user

TAGS = {"public": "lfw", "secret": "lfs"}
PREFIX_CHARS = 12  # random characters after the tag that identify a key (not secret)
SECRET_CHARS = 32
TOUCH_EVERY = 60.0  # seconds between updates of last_used_at


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    token: str  # shown once; only its hash is stored


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _prefix_of(token: str) -> str | None:
    tag, sep, rest = token.partition("_")
    if not sep or tag not in TAGS.values() or len(rest) < PREFIX_CHARS:
        return None
    return f"{tag}_{rest[:PREFIX_CHARS]}"


def _random(n: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def create_api_key(*, uow: UnitOfWork, ctx: Context, name: str, kind: str,
                   scopes: list[str] | None = None, user: str | int | None = None) -> NewKey:
    """Make a key. A public write key only tracks; a secret key carries scopes and acts as
    its user (by id or email), never with more rights than the user's role gives."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("a key needs a name", field="name")
    if len(name) > 200:
        raise InvalidInput("longer than 200 characters", field="name")
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if kind == "public" and scopes:
        raise InvalidInput("a public write key only tracks; it takes no scopes", field="scopes")
    if kind == "public" and user is not None:
        raise InvalidInput("a public write key belongs to no user", field="user")
    if kind == "secret" and user is None:
        raise InvalidInput("a secret key acts as a user: name one", field="user")
    granted: tuple[str, ...] = (TRACK,) if kind == "public" else parse_scopes(scopes or [])
    prefix = f"{TAGS[kind]}_{_random(PREFIX_CHARS)}"
    token = f"{prefix}{_random(SECRET_CHARS)}"
    with uow:
        owner = None if user is None else find_user(uow, user)
        if owner is not None and not owner.active:
            raise InvalidInput(f"user {owner.email} is deactivated", field="user")
        key = uow.api_keys.add(name=name, kind=kind, prefix=prefix, secret_hash=_hash(token),
                               scopes=granted, at=ctx.clock.now(),
                               user_id=None if owner is None else owner.id)
        uow.commit()
    return NewKey(key=key, token=token)


def list_api_keys(*, uow: UnitOfWork) -> list[ApiKey]:
    with uow:
        return uow.api_keys.all()


def revoke_api_key(*, uow: UnitOfWork, ctx: Context, key_id: int) -> None:
    with uow:
        if not uow.api_keys.revoke(key_id, ctx.clock.now()):
            known = any(k.id == key_id for k in uow.api_keys.all())
            raise NotFound(f"no active API key with id {key_id}" if not known
                           else f"API key {key_id} is already revoked", field="key_id")
        uow.commit()


def authenticate(*, uow: UnitOfWork, ctx: Context, token: str | None, needs: str) -> ApiKey:
    """The key behind ``token`` if it is live and allows ``needs`` (a scope, or 'track').

    Reads in one transaction and records the use in another, so a read-only unit of work
    (one that does not wait for the write lock) serves."""
    if needs != TRACK and needs not in SCOPES:
        raise ValueError(needs)
    if not token:
        raise Unauthenticated("this call needs an API key", field="authorization")
    prefix = _prefix_of(token.strip())
    with uow:
        found = uow.api_keys.by_prefix(prefix) if prefix else None
        # Compare the hashes in constant time even when the prefix is unknown.
        stored = found[1] if found else _hash("")
        if not hmac.compare_digest(stored, _hash(token.strip())) or found is None:
            raise Unauthenticated("unknown API key", field="authorization")
        key = found[0]
        if not key.active:
            raise Unauthenticated("this API key was revoked", field="authorization")
        if needs == TRACK and key.kind == "secret":
            # Tracking calls name contacts by any identity: not for a sales user's key.
            owner = uow.users.get(key.user_id) if key.user_id is not None else None
            if owner is None or not owner.active or owner.role not in ("admin", "marketer"):
                raise Forbidden("tracking takes a public write key, or a secret key of an "
                                "admin or marketer", field="authorization")
        if not key.allows(needs):
            what = "a public write key only sends tracking calls" if key.kind == "public" \
                else f"this key's scopes ({', '.join(key.scopes)}) do not include {needs!r}"
            raise Forbidden(what, field="authorization")
    now = ctx.clock.now()
    if key.last_used_at is None or now - key.last_used_at > TOUCH_EVERY:
        with uow:  # a transaction of its own that only writes: no stale read to upgrade
            uow.api_keys.touch(key.id, now)
            uow.commit()
    return key
