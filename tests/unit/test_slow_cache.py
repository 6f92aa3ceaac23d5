"""The dashboard keeps only what was slow to compute, and only for a while."""

from __future__ import annotations

from leadflow.entrypoints.web.slow_cache import SlowResultCache


class Timer:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_quick_result_is_computed_every_time() -> None:
    timer = Timer()
    cache = SlowResultCache(slow_seconds=0.5, keep_seconds=60, timer=timer)
    calls = []
    assert cache.get("k", lambda: calls.append(1) or len(calls), as_of=1.0) == (1, None)
    assert cache.get("k", lambda: calls.append(1) or len(calls), as_of=2.0) == (2, None)


def test_a_slow_result_is_kept_for_a_while_per_key() -> None:
    timer = Timer()
    cache = SlowResultCache(slow_seconds=0.5, keep_seconds=60, timer=timer)

    def slow(value: str) -> str:
        timer.now += 2
        return value
    assert cache.get("a", lambda: slow("first"), as_of=10.0) == ("first", None)
    assert cache.get("a", lambda: slow("second"), as_of=11.0) == ("first", 10.0)
    assert cache.get("b", lambda: slow("other"), as_of=12.0) == ("other", None)
    timer.now += 61
    assert cache.get("a", lambda: slow("third"), as_of=13.0) == ("third", None)


def test_a_result_that_became_quick_is_no_longer_kept() -> None:
    timer = Timer()
    cache = SlowResultCache(slow_seconds=0.5, keep_seconds=60, timer=timer)

    def slow() -> str:
        timer.now += 2
        return "slow"
    cache.get("a", slow, as_of=1.0)
    timer.now += 61
    assert cache.get("a", lambda: "quick", as_of=2.0) == ("quick", None)
    assert cache.get("a", lambda: "again", as_of=3.0) == ("again", None)
