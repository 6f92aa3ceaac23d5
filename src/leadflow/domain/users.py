"""People who use leadflow, their roles, and what each one may see and change.

An *admin* manages everything; a *marketer* works every contact but not keys, users, webhooks
or configuration; a *sales manager* sees the contacts owned by their team; a *sales rep* sees
only the contacts they own. A key or token acts as its owning user and never with more rights:
its scope is capped by the role's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from leadflow.domain.access import SCOPES
from leadflow.domain.errors import Forbidden

ROLES = ("admin", "marketer", "sales_manager", "sales_rep")
SALES_ROLES = ("sales_manager", "sales_rep")
ROLE_SCOPE = {"admin": "admin", "marketer": "write", "sales_manager": "write",
              "sales_rep": "write"}


@dataclass(frozen=True)
class User:
    id: int
    email: str
    name: str
    role: str
    team: str | None = None
    active: bool = True
    away_until: float | None = None  # out of office until then (UTC seconds)
    weight: float = 1.0  # capacity weight in round-robin assignment
    territories: tuple[str, ...] = ()
    assigned: int = 0  # prospects the round robin gave this rep
    created_at: float = 0.0

    def away(self, now: float) -> bool:
        return self.away_until is not None and self.away_until > now

    def takes_prospects(self, now: float) -> bool:
        return self.active and self.role in SALES_ROLES and not self.away(now)


@dataclass(frozen=True)
class Principal:
    """Who is acting, with what rights: a user through a key, or the local operator."""

    name: str  # what history records as the actor
    role: str
    scope: str
    user_id: int | None = None
    team_ids: frozenset[int] = field(default_factory=frozenset)  # a manager's team, self included

    @property
    def sees_all(self) -> bool:
        return self.role in ("admin", "marketer")

    @property
    def visible_owners(self) -> tuple[int, ...] | None:
        """The owners whose contacts this principal sees; None: every contact."""
        if self.sees_all:
            return None
        if self.role == "sales_manager":
            return tuple(sorted(self.team_ids | {self.user_id or 0}))
        return (self.user_id or 0,)

    def sees_owner(self, owner_id: int | None) -> bool:
        owners = self.visible_owners
        return owners is None or (owner_id is not None and owner_id in owners)

    def allows(self, needed: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(needed)

    def need(self, needed: str) -> None:
        if not self.allows(needed):
            raise Forbidden(f"{self.name} may not do this: it needs the {needed!r} scope, "
                            f"and acts with {self.scope!r}", field="authorization")

    def need_role(self, *roles: str, what: str) -> None:
        if self.role not in roles:
            raise Forbidden(f"only {' or '.join(r.replace('_', ' ') for r in roles)} users "
                            f"may {what}", field="authorization")


def capped_scope(key_scopes: tuple[str, ...], role: str) -> str:
    """The highest scope a key grants, no higher than its user's role allows."""
    granted = max((SCOPES.index(s) for s in key_scopes if s in SCOPES), default=-1)
    if granted < 0:
        raise Forbidden("this key grants no scope", field="authorization")
    return SCOPES[min(granted, SCOPES.index(ROLE_SCOPE[role]))]


# The local operator: whoever runs the CLI on the machine holding the database.
OPERATOR = Principal(name="cli", role="admin", scope="admin")
