"""Nurture tracks, their configuration, consent and the frequency cap: pure domain."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadflow.adapters.config_file import default_config_text, parse_config_text
from leadflow.domain.config_parsing import Problems
from leadflow.domain.errors import ConfigInvalid
from leadflow.domain.mail_links import LinkSigner
from leadflow.domain.mail_policy import (
    MARKETING,
    NEWSLETTER,
    TRANSACTIONAL,
    CapPolicy,
    ConsentPolicy,
    cap_decision,
    refusal,
)
from leadflow.domain.model import ConsentRecord
from leadflow.domain.nurture import Facts, SendAction, TaskAction, advance, tracks_for
from leadflow.domain.nurture_config import parse_track

DAY = 86400.0


def track(steps: list[dict[str, object]], audience: str = "sales") -> object:
    problems = Problems()
    found = parse_track({"key": "t", "audience": audience,
                         "stages": ["handoff"] if audience == "sales" else ["interest"],
                         "steps": steps}, "track", problems)
    assert not problems.items, problems.items
    return found


def test_a_track_runs_until_it_must_wait_then_resumes_there() -> None:
    t = track([{"send": {"maturity": "evaluation"}}, {"wait": "3d"},
               {"task": {"kind": "call", "title": "Call", "due": "1d"}},
               {"send": {"item": "pricing"}}])
    first = advance(t, step=0, facts=Facts(), now=100.0)  # type: ignore[arg-type]
    assert first.actions == [SendAction(step=0, item=None, maturities=("evaluation",))]
    assert (first.step, first.next_at) == (2, 100.0 + 3 * DAY)
    second = advance(t, step=first.step, facts=Facts(), now=first.next_at)  # type: ignore[arg-type]
    assert second.actions == [TaskAction(step=2, kind="call", title="Call", due_seconds=DAY),
                              SendAction(step=3, item="pricing", maturities=())]
    assert second.next_at is None  # the track is over


def test_an_if_stops_the_track_or_skips_the_next_step() -> None:
    stop = track([{"if": {"engagement_at_least": 20}}, {"send": {"item": "a"}}])
    cold = advance(stop, step=0, facts=Facts(engagement=5), now=0)  # type: ignore[arg-type]
    assert (cold.actions, cold.next_at, cold.stopped_by) == ([], None, 0)
    warm = advance(stop, step=0, facts=Facts(engagement=25), now=0)  # type: ignore[arg-type]
    assert [a.step for a in warm.actions] == [1]
    skip = track([{"if": {"no_milestone": "qualified"}, "else": "skip"},
                  {"task": {"title": "Qualify"}}, {"send": {"item": "b"}}])
    done = advance(skip, step=0, facts=Facts(milestones=frozenset({"qualified"})),  # type: ignore[arg-type]
                   now=0)
    assert [a.step for a in done.actions] == [2]
    todo = advance(skip, step=0, facts=Facts(), now=0)  # type: ignore[arg-type]
    assert [a.step for a in todo.actions] == [1, 2]


@given(st.lists(st.sampled_from(["send", "wait", "if_stop", "if_skip"]), min_size=1,
                max_size=12), st.floats(min_value=0, max_value=100))
def test_advancing_always_moves_forward_and_ends(kinds: list[str], engagement: float) -> None:
    steps: list[dict[str, object]] = []
    for kind in kinds:
        if kind == "send":
            steps.append({"send": {"maturity": "evaluation"}})
        elif kind == "wait":
            steps.append({"wait": "1d"})
        else:
            steps.append({"if": {"engagement_at_least": 50},
                          "else": "stop" if kind == "if_stop" else "skip"})
    t = track(steps)
    step, now, sends = 0, 0.0, []
    for _ in range(len(steps) + 1):
        out = advance(t, step=step, facts=Facts(engagement=engagement), now=now)  # type: ignore[arg-type]
        assert out.step > step or out.next_at is None
        sends += [a.step for a in out.actions]
        if out.next_at is None:
            break
        step, now = out.step, out.next_at
    else:
        pytest.fail("the track never ended")
    assert sends == sorted(set(sends))  # each send step runs once, in order


def test_configuration_errors_name_their_location() -> None:
    bad = default_config_text().replace(
        "        - send: {maturity: decision}\n", "        - send: {maturity: discovery}\n"
    ).replace("      when: {milestone: mql}", "      when: {milestone: nope}")
    with pytest.raises(ConfigInvalid) as caught:
        parse_config_text(bad, source="p.yaml")
    text = str(caught.value)
    assert "nurture.tracks[1].steps[5].send.maturity" in text
    assert "discovery content does not fit this audience" in text
    assert "nurture.autoresponders[0].when.milestone" in text
    problems = Problems()
    parse_track({"key": "x", "audience": "marketing", "stages": ["won"],
                 "steps": [{"task": {"title": "call", "kind": "telepathy"}}, {"wait": "soon"}]},
                "t", problems)
    messages = {p.location: p.message for p in problems.items}
    assert "customers get only the newsletter" in messages["t.stages"]
    assert "only sales tracks create tasks" in messages["t.steps[0].task"]
    assert "expected a duration" in messages["t.steps[1].wait"]
    assert "expected one of follow_up" in messages["t.steps[0].task.kind"]


def test_membership_follows_role_and_ownership() -> None:
    marketing = track([{"wait": "1d"}], audience="marketing")
    sales = track([{"wait": "1d"}], audience="sales")
    both = [marketing, sales]
    assert tracks_for(both, stage_role="interest", owned=False) == [marketing]  # type: ignore[list-item]
    assert tracks_for(both, stage_role="interest", owned=True) == []  # type: ignore[list-item]
    assert tracks_for(both, stage_role="handoff", owned=True) == [sales]  # type: ignore[list-item]
    assert tracks_for(both, stage_role="won", owned=True) == []  # type: ignore[list-item]


def consent(**granted: tuple[bool, str]) -> dict[str, ConsentRecord]:
    return {k: ConsentRecord(k, g, s, 0.0) for k, (g, s) in granted.items()}


def test_unsubscribe_bounce_and_suppression_always_win() -> None:
    policy = ConsentPolicy()

    def why(category: str, **kw: object) -> str | None:
        args: dict[str, object] = {"email": "a@b.c", "consent": {}, "source": "website",
                                   "mail_status": None, "suppressed": False, "policy": policy}
        args.update(kw)
        return refusal(category=category, **args)  # type: ignore[arg-type]
    assert why(MARKETING) is None
    assert why(MARKETING, consent=consent(email=(False, "unsubscribe"))) == "unsubscribed"
    assert why(NEWSLETTER, consent=consent(email=(False, "unsubscribe"),
                                           newsletter=(True, "form"))) == "unsubscribed"
    assert why(NEWSLETTER) == "not subscribed to the newsletter"
    assert why(MARKETING, source="trade_fair") == "contacts from trade_fair need to opt in first"
    assert why(MARKETING, source="trade_fair", consent=consent(email=(True, "form"))) is None
    for category in (MARKETING, NEWSLETTER, TRANSACTIONAL):
        assert why(category, mail_status="bounced") == "the address bounced"
        assert why(category, suppressed=True) == "suppressed"
        assert why(category, email=None) == "no email address"
    # What the contact just asked for goes, even after an unsubscribe.
    assert why(TRANSACTIONAL, consent=consent(email=(False, "unsubscribe"))) is None


@given(st.lists(st.floats(min_value=0, max_value=90 * DAY), max_size=10),
       st.floats(min_value=0, max_value=90 * DAY), st.integers(min_value=1, max_value=5))
def test_the_cap_frees_a_slot_exactly_when_the_window_allows(
        sent: list[float], now: float, emails: int) -> None:
    policy = CapPolicy(emails=emails, days=30)
    past = [s for s in sent if s <= now]
    decision = cap_decision(past, now=now, policy=policy)
    recent = [s for s in past if s + policy.window > now]
    assert decision.allowed == (len(recent) < emails)
    if not decision.allowed:
        assert decision.free_at is not None
        assert decision.free_at > now
        assert cap_decision(past, now=decision.free_at, policy=policy).allowed


def test_signed_links_cannot_be_forged_or_reused_for_another_message() -> None:
    links = LinkSigner(key=b"k" * 32, base_url="https://crm.example")
    url = links.click(7, "https://site.example/guide")
    sig = url.split("/m/c/7/")[1].split("?")[0]
    assert links.valid("click", 7, sig, "https://site.example/guide")
    assert not links.valid("click", 7, sig, "https://evil.example/")
    assert not links.valid("click", 8, sig, "https://site.example/guide")
    assert not links.valid("unsubscribe", 7, sig)
    token = links.profile("wp", 42).split("t=")[1]
    assert links.contact_of("wp", token) == 42
    assert links.contact_of("other-form", token) is None
    assert links.contact_of("wp", "43." + token.split(".")[1]) is None
    assert LinkSigner(key=b"x" * 32, base_url="").contact_of("wp", token) is None
