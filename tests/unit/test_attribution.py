"""Attribution's fold: first and last touch pick the right touch, linear shares add up to 1
per conversion, and the groups add up to the customers and the pipeline."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadflow.domain.attribution import Converting, Touch, attribute, before, shares

T = [Touch(ts=30, seq=3, campaign="c"), Touch(ts=10, seq=1, source="ads", campaign="a"),
     Touch(ts=20, seq=2, content="guide"), Touch(ts=50, seq=5, source="late")]


def test_first_and_last_pick_the_touches_before_the_conversion() -> None:
    ann = Converting(contact_id=1, touches=tuple(T), customer_at=40, pipeline_at=25,
                     pipeline={"EUR": 900.0})
    first = {g.group: g for g in attribute([ann], model="first", by="campaign").groups}
    assert first["a"].customers == 1
    assert first["a"].pipeline == {"EUR": 900.0}
    last = {g.group: g for g in attribute([ann], model="last", by="campaign").groups}
    assert last["c"].customers == 1  # the touch at 50 came after she became a customer
    assert last[None].pipeline == {"EUR": 900.0}  # the guide at 20: no campaign
    content = {g.group: g for g in attribute([ann], model="last", by="content").groups}
    assert content["guide"].pipeline == {"EUR": 900.0}
    linear = {g.group: g.customers for g in attribute([ann], model="linear",
                                                      by="source").groups}
    assert linear == pytest.approx({"ads": 1 / 3, None: 2 / 3})


def test_no_touch_goes_to_none() -> None:
    bob = Converting(contact_id=2, touches=(), customer_at=5)
    r = attribute([bob], model="linear", by="source")
    assert r.customers == 1
    assert [(g.group, g.customers) for g in r.groups] == [(None, 1.0)]


touch = st.builds(Touch, ts=st.integers(0, 100).map(float), seq=st.integers(0, 1000),
                  source=st.sampled_from([None, "ads", "fair"]),
                  campaign=st.sampled_from([None, "x", "y"]))
contact = st.builds(
    Converting, contact_id=st.integers(1, 100), touches=st.lists(touch, max_size=6).map(tuple),
    customer_at=st.one_of(st.none(), st.integers(0, 100).map(float)),
    pipeline_at=st.integers(0, 100).map(float),
    pipeline=st.dictionaries(st.sampled_from(["EUR", "USD"]),
                             st.integers(1, 10_000).map(float), max_size=2))


@given(st.lists(contact, max_size=8), st.sampled_from(["first", "last", "linear"]),
       st.sampled_from(["source", "campaign"]))
def test_every_conversion_is_credited_once(contacts: list[Converting], model: str,
                                           by: str) -> None:
    for c in contacts:
        for at in (c.customer_at, c.pipeline_at):
            if at is not None:
                assert sum(s for _, s in shares(before(c.touches, at), model)) == \
                    pytest.approx(1.0)
    r = attribute(contacts, model=model, by=by)
    assert r.customers == sum(c.customer_at is not None for c in contacts)
    assert sum(g.customers for g in r.groups) == pytest.approx(r.customers)
    for cur in ("EUR", "USD"):
        expected = sum(c.pipeline.get(cur, 0.0) for c in contacts)
        assert r.pipeline.get(cur, 0.0) == pytest.approx(expected)
        assert sum(g.pipeline.get(cur, 0.0) for g in r.groups) == pytest.approx(expected)
