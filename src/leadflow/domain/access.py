"""API keys: what each kind of key may do.

A *public* write key only sends tracking calls and is safe to embed in a web page. A *secret*
key carries scopes: ``read`` lists and shows, ``write`` also changes, ``admin`` also manages keys,
webhooks and configuration. Each scope includes the ones before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from leadflow.domain.choices import pick

SCOPES = ("read", "write", "admin")
TRACK = "track"
KINDS = ("public", "secret")


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    kind: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None
    user_id: int | None = None  # the user a secret key acts as

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, needed: str) -> bool:
        if needed == TRACK:
            return True  # every key may send tracking calls
        if self.kind != "secret":
            return False
        level = SCOPES.index(needed)
        return any(SCOPES.index(s) >= level for s in self.scopes if s in SCOPES)


def parse_scopes(values: Iterable[str]) -> tuple[str, ...]:
    return pick(values, SCOPES, field="scopes", what="scope",
                empty="a secret key needs at least one scope")
