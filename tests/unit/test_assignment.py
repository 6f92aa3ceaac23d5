"""Assignment of new prospects: account owner, then the most specific territory, then a
weighted round robin that lets a rep back from time off catch up."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadflow.domain.assignment import (
    Assignment,
    Rep,
    choose_owner,
    distribute,
    parse_territory,
)
from leadflow.domain.errors import InvalidInput

WEIGHTS = {1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0}


def team(changed: int | None = None, **change: Any) -> list[Rep]:
    reps = [Rep(id=i, weight=w) for i, w in WEIGHTS.items()]
    return [dataclasses.replace(r, **change) if r.id == changed else r for r in reps]


def with_counts(reps: Sequence[Rep], counts: dict[int, int]) -> list[Rep]:
    return [dataclasses.replace(r, assigned=r.assigned + counts[r.id]) for r in reps]


def assert_weight_shares(counts: dict[int, int]) -> None:
    total = sum(counts.values())
    weights = sum(WEIGHTS.values())
    for rep_id, weight in WEIGHTS.items():
        share = total * weight / weights
        assert abs(counts[rep_id] - share) <= 0.01 * share, (rep_id, counts)


def pick(reps: Sequence[Rep], country: str | None = None, region: str | None = None,
         account_owner_id: int | None = None) -> Assignment:
    chosen = choose_owner(reps, country=country, region=region,
                          account_owner_id=account_owner_id)
    assert chosen is not None
    return chosen


# ------------------------------------------------------------------ territories


@pytest.mark.parametrize(("value", "normal"), [
    ("FR", "FR"),
    (" fr ", "FR"),
    ("fr : Bretagne", "FR:bretagne"),
    ("FR:Côtes  d'Armor ", "FR:côtes d'armor"),
    ("de:BAYERN", "DE:bayern"),
])
def test_parse_territory_gives_one_normal_form(value: str, normal: str) -> None:
    assert parse_territory(value) == normal
    assert parse_territory(normal) == normal


@pytest.mark.parametrize("value", [
    "", "   ", "France", "F", "F1", "ÉS", ":Bretagne", "FR:", "FR:  ", "FR:a:b", "FR::a",
])
def test_parse_territory_refuses_empty_or_malformed_values(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_territory(value)
    assert info.value.field == "territories"


def test_a_malformed_rep_territory_is_reported_not_ignored() -> None:
    with pytest.raises(InvalidInput):
        choose_owner([Rep(1, territories=("France",))], country="FR", region=None,
                     account_owner_id=None)


# ------------------------------------------------------------------ weighted round robin


def test_round_robin_follows_the_weights_within_one_percent() -> None:
    assert_weight_shares(distribute(team(), 10_000))


def test_round_robin_prefers_the_lowest_load_per_weight_and_breaks_ties_by_id() -> None:
    reps = [Rep(5, weight=2.0, assigned=1), Rep(3, weight=1.0, assigned=0),
            Rep(9, weight=1.0, assigned=5)]
    assert pick(reps) == Assignment(3, "generalist", "no territory, generalists, round robin "
                                    "by weight", counted=True)
    assert pick(reps[::-1]).rep_id == 3
    assert pick([*reps, Rep(4, weight=0.5, assigned=0)]).rep_id == 3


@pytest.mark.parametrize("away", list(WEIGHTS))
def test_a_rep_back_from_time_off_catches_up_to_their_weight(away: int) -> None:
    reps = team(away, available=False)
    first = distribute(reps, 5_000)
    assert first[away] == 0

    reps = [dataclasses.replace(r, available=True) for r in with_counts(reps, first)]
    assert pick(reps).rep_id == away
    second = distribute(reps, 5_000)
    assert_weight_shares({i: first[i] + second[i] for i in WEIGHTS})

    reps = with_counts(reps, second)
    third = distribute(reps, 10_000)
    assert_weight_shares({i: first[i] + second[i] + third[i] for i in WEIGHTS})


@pytest.mark.parametrize("change", [{"available": False}, {"weight": 0.0}, {"weight": -1.0},
                                    {"weight": math.nan}, {"weight": math.inf}])
def test_unavailable_reps_are_never_picked(change: dict[str, Any]) -> None:
    reps = team(1, **change)
    assert distribute(reps, 1_000)[1] == 0
    assert pick(reps, account_owner_id=1).rep_id != 1


def test_no_available_rep_means_no_assignment() -> None:
    assert choose_owner([], country="FR", region=None, account_owner_id=None) is None
    reps = [Rep(1, available=False), Rep(2, weight=0.0, territories=("FR",))]
    assert choose_owner(reps, country="FR", region=None, account_owner_id=1) is None
    assert distribute(reps, 10) == {1: 0, 2: 0}


def test_distribute_names_every_rep_and_checks_its_arguments() -> None:
    assert distribute(team(2, available=False), 0) == {1: 0, 2: 0, 3: 0, 4: 0}
    with pytest.raises(InvalidInput):
        distribute(team(), -1)
    with pytest.raises(InvalidInput):
        distribute([Rep(1), Rep(1, weight=2.0)], 10)


def test_distribute_is_fast_enough_for_a_preview() -> None:
    reps = [Rep(i, weight=0.5 + i % 5, assigned=i * 7) for i in range(1, 21)]
    start = time.perf_counter()
    counts = distribute(reps, 10_000)
    assert time.perf_counter() - start < 1.0
    assert sum(counts.values()) == 10_000


# ------------------------------------------------------------------ account owner and territory

BRETAGNE, FRANCE, GENERALIST, GERMANY, NORMANDIE = 1, 2, 3, 4, 5


def territorial_team(*away: int) -> list[Rep]:
    territories = {BRETAGNE: ("FR:Bretagne",), FRANCE: ("FR",), GENERALIST: (),
                   GERMANY: ("DE",), NORMANDIE: ("FR:Normandie", "DE")}
    return [Rep(i, territories=t, available=i not in away) for i, t in territories.items()]


def test_the_account_owner_wins_when_available() -> None:
    reps = [dataclasses.replace(r, assigned=1_000) if r.id == GERMANY else r
            for r in territorial_team()]
    chosen = pick(reps, "FR", "Bretagne", account_owner_id=GERMANY)
    assert chosen == Assignment(GERMANY, "account_owner", "account owner", counted=False)


def test_an_account_owner_out_of_office_falls_back_to_the_territory() -> None:
    chosen = pick(territorial_team(GERMANY), "FR", "Bretagne", account_owner_id=GERMANY)
    assert (chosen.rep_id, chosen.rule, chosen.counted) == (BRETAGNE, "territory_region", True)
    assert chosen.reason == (f"account owner {GERMANY} is not an available rep; "
                             "territory FR:Bretagne, round robin by weight")
    assert pick(territorial_team(), "FR", "Bretagne", account_owner_id=99).rep_id == BRETAGNE


@pytest.mark.parametrize(("away", "rep_id", "rule"), [
    ((), BRETAGNE, "territory_region"),
    ((BRETAGNE,), FRANCE, "territory_country"),
    ((BRETAGNE, FRANCE), GENERALIST, "generalist"),
    ((BRETAGNE, FRANCE, GENERALIST), GERMANY, "round_robin"),
    ((BRETAGNE, FRANCE, GENERALIST, GERMANY), NORMANDIE, "round_robin"),
])
def test_region_beats_country_beats_generalists_beats_everyone(
    away: tuple[int, ...], rep_id: int, rule: str,
) -> None:
    chosen = pick(territorial_team(*away), " fr", "BRETAGNE ")
    assert (chosen.rep_id, chosen.rule) == (rep_id, rule)


def test_territory_matching_ignores_case_and_surrounding_whitespace() -> None:
    reps = [Rep(1), Rep(2, territories=(" fr : bretagne ",))]
    assert pick(reps, "Fr", "  Bretagne").rep_id == 2


def test_a_contact_without_a_covered_region_goes_to_the_country() -> None:
    assert pick(territorial_team(), "FR", "Alsace").rule == "territory_country"
    assert pick(territorial_team(), "FR", None).rep_id == FRANCE
    assert pick(territorial_team(FRANCE), "FR", None).rule == "generalist"


def test_a_contact_without_a_usable_country_goes_to_the_generalists() -> None:
    for country in (None, "", "France"):
        chosen = pick(territorial_team(), country, "Bretagne")
        assert (chosen.rep_id, chosen.rule) == (GENERALIST, "generalist")
    assert pick(territorial_team(), None, None).reason == \
        "no territory, generalists, round robin by weight"


# ------------------------------------------------------------------ properties

TERRITORIES = [(), ("FR",), ("FR:Bretagne",), ("DE",), ("FR:Normandie", "DE")]
weights = st.one_of(st.floats(0.5, 5.0), st.sampled_from([0.5, 1.0, 2.0, 4.0]))


@st.composite
def rep_lists(draw: st.DrawFn) -> list[Rep]:
    ids = draw(st.lists(st.integers(1, 50), min_size=1, max_size=12, unique=True))
    return [Rep(i, weight=draw(weights), available=draw(st.booleans()),
                territories=draw(st.sampled_from(TERRITORIES)),
                assigned=draw(st.integers(0, 20))) for i in ids]


countries = st.sampled_from([None, "FR", "DE", "fr "])
regions = st.sampled_from([None, "Bretagne", "normandie", "Alsace"])


def covers(rep: Rep, territory: str) -> bool:
    return territory in {parse_territory(t) for t in rep.territories}


@given(rep_lists(), countries, regions)
def test_the_pick_is_the_least_loaded_available_rep_of_the_most_specific_pool(
    reps: list[Rep], country: str | None, region: str | None,
) -> None:
    chosen = choose_owner(reps, country=country, region=region, account_owner_id=None)
    available = [r for r in reps if r.available]
    if not available:
        assert chosen is None
        return
    assert chosen is not None
    cc = country.strip().upper() if country else None
    ladder = [
        ("territory_region", [r for r in available if cc and region
                              and covers(r, parse_territory(f"{cc}:{region}"))]),
        ("territory_country", [r for r in available if cc and covers(r, cc)]),
        ("generalist", [r for r in available if not r.territories]),
        ("round_robin", available),
    ]
    rule, pool = next((rule, pool) for rule, pool in ladder if pool)
    assert chosen.rule == rule
    assert chosen.counted
    best = min((r.assigned + 1) / r.weight for r in pool)
    ties = [r.id for r in pool if (r.assigned + 1) / r.weight == best]
    assert chosen.rep_id == min(ties)


@given(rep_lists(), st.integers(0, 60), countries, regions)
def test_distribute_is_successive_picks_with_growing_counts(
    reps: list[Rep], n: int, country: str | None, region: str | None,
) -> None:
    expected = {r.id: 0 for r in reps}
    current = list(reps)
    for _ in range(n):
        chosen = choose_owner(current, country=country, region=region, account_owner_id=None)
        if chosen is None:
            break
        expected[chosen.rep_id] += 1
        current = [dataclasses.replace(r, assigned=r.assigned + 1) if r.id == chosen.rep_id
                   else r for r in current]
    assert distribute(reps, n, country=country, region=region) == expected
