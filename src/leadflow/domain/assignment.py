"""Assignment: which sales rep gets a contact when it enters the ``prospect`` stage.

Rules, in order:
1. Account owner: the contact's account owner, when that owner is an available rep.
2. Territory, the most specific match whose pool holds an available rep: reps covering the
   contact's country and region, else reps covering the whole country (territory exactly "FR"),
   else generalists (reps with no territory), else every available rep.
3. Within that pool, weighted round robin: the rep minimising ``(assigned + 1) / weight``, ties
   to the smaller id. ``assigned`` is the caller's running count of round-robin picks per rep,
   so a rep back from time off receives every pick of their pool until their count is back in
   line with their weight (caught up fairly).

A rep is available when ``available`` is set and ``weight`` is a finite number above 0.

Territories are "CC" or "CC:region"; ``parse_territory`` gives the normal form under which two
territories are the same exactly when their strings are equal.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

from leadflow.domain.errors import InvalidInput

ACCOUNT_OWNER = "account_owner"
TERRITORY_REGION = "territory_region"
TERRITORY_COUNTRY = "territory_country"
GENERALIST = "generalist"
ROUND_ROBIN = "round_robin"

_BY_WEIGHT = "round robin by weight"


@dataclass(frozen=True)
class Rep:
    id: int
    weight: float = 1.0
    available: bool = True
    territories: tuple[str, ...] = ()
    assigned: int = 0
    name: str = ""


@dataclass(frozen=True)
class Assignment:
    rep_id: int
    rule: str
    reason: str
    counted: bool


def parse_territory(value: str) -> str:
    """The normal form of a territory: "fr : Côtes  d'Armor " -> "FR:côtes d'armor".

    The country is upper-cased; the region is case-folded with its runs of whitespace made one
    space; whitespace around either part and around the colon goes.
    """
    text = value.strip()
    if not text:
        raise InvalidInput("a territory may not be empty", field="territories")
    country, colon, region = text.partition(":")
    country = country.strip().upper()
    if not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise InvalidInput(f"territory {value!r}: the country must be a 2-letter code "
                           "such as FR", field="territories")
    if not colon:
        return country
    region = " ".join(region.split()).casefold()
    if not region or ":" in region:
        raise InvalidInput(f"territory {value!r}: expected COUNTRY or COUNTRY:REGION "
                           "such as FR:Bretagne", field="territories")
    return f"{country}:{region}"


def choose_owner(reps: Sequence[Rep], *, country: str | None, region: str | None,
                 account_owner_id: int | None) -> Assignment | None:
    """The rep who gets the contact, and why; None when no rep is available.

    Raises ``InvalidInput`` when a rep's territory is malformed.
    """
    skipped_owner = ""
    if account_owner_id is not None:
        owner = next((r for r in reps if r.id == account_owner_id), None)
        if owner is not None and _is_available(owner):
            return Assignment(owner.id, ACCOUNT_OWNER, "account owner", counted=False)
        skipped_owner = f"account owner {account_owner_id} is not an available rep; "
    found = _pool(reps, country, region)
    if found is None:
        return None
    rule, reason, pool = found
    chosen = min(pool, key=lambda r: ((r.assigned + 1) / r.weight, r.id))
    return Assignment(chosen.id, rule, skipped_owner + reason, counted=True)


def distribute(reps: Sequence[Rep], n: int, *, country: str | None = None,
               region: str | None = None) -> dict[int, int]:
    """How many of ``n`` successive contacts each rep would get, every rep's ``assigned``
    growing with each pick as the caller's would. Every rep of ``reps`` is a key."""
    if n < 0:
        raise InvalidInput("the number of contacts may not be negative", field="n")
    got = {r.id: 0 for r in reps}
    if len(got) != len(reps):
        raise InvalidInput("two reps share an id", field="reps")
    found = _pool(reps, country, region)
    if found is None:
        return got
    heap = [((r.assigned + 1) / r.weight, r.id, r.assigned, r.weight) for r in found[2]]
    heapq.heapify(heap)
    for _ in range(n):
        _, rep_id, assigned, weight = heap[0]
        got[rep_id] += 1
        heapq.heapreplace(heap, ((assigned + 2) / weight, rep_id, assigned + 1, weight))
    return got


def _is_available(rep: Rep) -> bool:
    return rep.available and math.isfinite(rep.weight) and rep.weight > 0


def _pool(reps: Sequence[Rep], country: str | None,
          region: str | None) -> tuple[str, str, list[Rep]] | None:
    available = [r for r in reps if _is_available(r)]
    if not available:
        return None
    covers = {r.id: {parse_territory(t) for t in r.territories} for r in available}
    where = ""
    cc = (country or "").strip().upper()
    # A contact's country comes from tracked data: one that is no 2-letter code matches nothing.
    if len(cc) == 2 and cc.isascii() and cc.isalpha():
        shown_region = " ".join((region or "").split())
        where = f"{cc}:{shown_region}" if shown_region else cc
        if shown_region:
            key = f"{cc}:{shown_region.casefold()}"
            pool = [r for r in available if key in covers[r.id]]
            if pool:
                return TERRITORY_REGION, f"territory {where}, {_BY_WEIGHT}", pool
        pool = [r for r in available if cc in covers[r.id]]
        if pool:
            return TERRITORY_COUNTRY, f"territory {cc}, {_BY_WEIGHT}", pool
    no_match = f"no available rep covers {where}, " if where else "no territory, "
    pool = [r for r in available if not r.territories]
    if pool:
        return GENERALIST, f"{no_match}generalists, {_BY_WEIGHT}", pool
    return ROUND_ROBIN, f"{no_match}no generalist, every available rep, {_BY_WEIGHT}", available
