"""Next best content, pure: what each stage may be offered, how consumption and topics rank
items, unseen only, language; and the content CSV read into rows with their line numbers."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.domain.content import (
    FORMATS,
    MATURITIES,
    Consumed,
    ContentItem,
    Profile,
    Recommendation,
    allowed_maturities,
    next_best,
)
from leadflow.domain.errors import InvalidInput
from leadflow.services.content import contact_language, item_from_row, read_content_csv

ROLES = ("entry", "interest", "handoff", "commit", "won", "excluded", "erased")


def item(key: str, maturity: str, *, topics: Sequence[str] = (), language: str = "en",
         fmt: str = "article", premium: bool = False, archived: bool = False) -> ContentItem:
    return ContentItem(key=key, title=key.title(), url=f"/c/{key}", maturity=maturity,
                       format=fmt, premium=premium, topics=tuple(topics), language=language,
                       archived=archived)


LIBRARY = [
    item("intro", "discovery", topics=["crm"]),
    item("trends", "discovery", topics=["ai"]),
    item("compare", "evaluation", topics=["crm"]),
    item("roi", "evaluation", topics=["finance"], fmt="white_paper", premium=True),
    item("pricing", "decision", fmt="pricing"),
    item("demo", "decision", topics=["crm"], fmt="demo"),
]


def keys(recs: Sequence[Recommendation]) -> list[str]:
    return [r.item.key for r in recs]


def seen(*consumed: tuple[ContentItem, float]) -> list[Consumed]:
    return [Consumed(item=i, at=at) for i, at in consumed]


def test_a_fresh_lead_is_never_offered_decision_content_and_starts_with_discovery() -> None:
    recs = next_best(LIBRARY, Profile(stage_role="interest"), limit=10)
    assert {r.item.maturity for r in recs} == {"discovery", "evaluation"}
    assert recs[0].item.maturity == "discovery"
    assert "discovery content comes first" in recs[0].reasons
    assert not {"pricing", "demo"} & set(keys(recs))


def test_a_raw_contact_gets_discovery_only() -> None:
    recs = next_best(LIBRARY, Profile(stage_role="entry"), limit=10)
    assert sorted(keys(recs)) == ["intro", "trends"]


def test_a_prospect_or_opportunity_is_never_offered_discovery_content() -> None:
    for role in ("handoff", "commit"):
        recs = next_best(LIBRARY, Profile(stage_role=role), limit=10)
        assert sorted(keys(recs)) == ["compare", "demo", "pricing", "roi"]
        assert recs[0].item.maturity == "evaluation"  # the first step it may take


@pytest.mark.parametrize("role", ["won", "excluded", "erased", "unknown"])
def test_customers_and_contacts_out_of_the_funnel_are_offered_nothing(role: str) -> None:
    assert allowed_maturities(role) == ()
    assert next_best(LIBRARY, Profile(stage_role=role), limit=10) == []


def test_the_next_step_follows_the_most_mature_item_consumed() -> None:
    profile = Profile(stage_role="interest", consumed=seen((LIBRARY[1], 100.0)))
    recs = next_best(LIBRARY, profile, limit=10)
    assert recs[0].item.maturity == "evaluation"
    assert "evaluation is the next step after what it consumed" in recs[0].reasons
    prospect = Profile(stage_role="handoff", consumed=seen((LIBRARY[2], 100.0)))
    assert next_best(LIBRARY, prospect, limit=1)[0].item.maturity == "decision"


def test_topics_learned_from_consumption_rank_items() -> None:
    # Read two discovery items about crm: of the two evaluation items, the crm one wins;
    # without that history, the premium one (finance) would come first for a lead.
    crm_reader = Profile(stage_role="interest", consumed=seen(
        (LIBRARY[0], 200.0), (item("crm-basics", "discovery", topics=["crm"]), 100.0)))
    recs = next_best(LIBRARY, crm_reader, limit=10)
    assert keys(recs)[:2] == ["compare", "roi"]
    assert "about crm, which it read about before" in recs[0].reasons
    assert keys(next_best(LIBRARY, Profile(stage_role="interest",
                                           consumed=seen((LIBRARY[1], 1.0))), limit=2)) == [
        "roi", "compare"]


def test_only_unseen_items_consumed_or_emailed_items_are_left_out() -> None:
    profile = Profile(stage_role="interest", consumed=seen((LIBRARY[0], 1.0)),
                      sent_keys=frozenset({"trends", "roi"}))
    assert keys(next_best(LIBRARY, profile, limit=10)) == ["compare"]


def test_the_contacts_language_decides_and_english_is_the_default() -> None:
    library = [*LIBRARY, item("intro-fr", "discovery", language="fr")]
    assert keys(next_best(library, Profile(stage_role="entry", language="fr"))) == ["intro-fr"]
    recs = next_best(library, Profile(stage_role="entry", language=None))
    assert sorted(keys(recs)) == ["intro", "trends"]
    assert "in en, its language" in recs[0].reasons


def test_archived_items_and_newsletter_issues_are_never_recommended() -> None:
    library = [item("old", "discovery", archived=True),
               item("issue-12", "discovery", fmt="newsletter_issue"),
               item("fresh", "discovery")]
    assert keys(next_best(library, Profile(stage_role="entry"))) == ["fresh"]


def test_contact_language_takes_the_two_letters_of_a_locale() -> None:
    assert contact_language("fr-FR") == "fr"
    assert contact_language("DE") == "de"
    assert contact_language("french") == "en"
    assert contact_language(None) == "en"


# --- any library, any stage --------------------------------------------------------------

KEYS = [f"item-{n}" for n in range(12)]
items_st = st.lists(
    st.builds(item, st.sampled_from(KEYS), st.sampled_from(MATURITIES),
              topics=st.lists(st.sampled_from(["crm", "ai", "roi", "security"]), max_size=3),
              language=st.sampled_from(["en", "fr"]), fmt=st.sampled_from(FORMATS),
              premium=st.booleans(), archived=st.booleans()),
    max_size=12, unique_by=lambda i: i.key)


@settings(max_examples=300, deadline=None)
@given(library=items_st, role=st.sampled_from(ROLES), data=st.data(),
       language=st.sampled_from([None, "en", "fr"]), limit=st.integers(1, 12))
def test_every_recommendation_fits_the_stage_and_was_neither_consumed_nor_sent(
        library: list[ContentItem], role: str, data: st.DataObject, language: str | None,
        limit: int) -> None:
    consumed_items = data.draw(st.lists(st.sampled_from(library), unique_by=lambda i: i.key)
                               if library else st.just([]))
    consumed = [Consumed(item=i, at=float(n)) for n, i in enumerate(consumed_items)]
    # Mostly keys of the library (so that they matter), sometimes items no longer in it.
    sent = frozenset(data.draw(st.lists(st.sampled_from([i.key for i in library] + KEYS[:2]),
                                        max_size=4)))
    profile = Profile(stage_role=role, language=language, consumed=consumed, sent_keys=sent)
    recs = next_best(library, profile, limit=limit)
    consumed_keys = {i.key for i in consumed_items}
    assert len(recs) <= limit
    for rec in recs:
        assert rec.item.maturity in allowed_maturities(role)
        assert rec.item.key not in consumed_keys
        assert rec.item.key not in sent
        assert not rec.item.archived
        assert rec.item.language == (language or "en")
        assert rec.reasons
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    fitting = [i for i in library if i.maturity in allowed_maturities(role)
               and i.key not in consumed_keys | sent and not i.archived
               and i.format != "newsletter_issue" and i.language == (language or "en")]
    assert len(recs) == min(limit, len(fitting))  # nothing that fits is left out


# --- the content CSV ---------------------------------------------------------------------

HEADER = "key,title,url,maturity,format,premium,topics,language,summary\n"


def test_rows_keep_the_line_they_start_on_and_topics_split_on_either_separator() -> None:
    text = ("\ufeff" + HEADER
            + 'crm-guide,"The CRM guide,\nsecond edition",/guides/crm,discovery,article,'
              'no,CRM;sales| ai ,fr,\n'
            + "\n"
            + "roi,ROI,https://acme.io/roi,evaluation,white paper,YES,,,Numbers\n"
            + "short,row\n")
    rows, issues = read_content_csv(text)
    assert [r.line for r in rows] == [2, 5]
    assert issues[0].line == 6
    assert "expected 9 fields" in issues[0].reason
    guide = item_from_row(rows[0].values)
    assert (guide.title, guide.topics, guide.language, guide.premium) == (
        "The CRM guide,\nsecond edition", ("crm", "sales", "ai"), "fr", False)
    roi = item_from_row(rows[1].values)
    assert (roi.format, roi.premium, roi.language, roi.summary) == (
        "white_paper", True, "en", "Numbers")


@pytest.mark.parametrize(("values", "field"), [
    ({"premium": "maybe"}, "premium"), ({"maturity": "late"}, "maturity"),
    ({"url": "acme.io/x"}, "url"), ({"key": "Bad Key"}, "key"), ({"title": " "}, "title"),
    ({"language": "english"}, "language"), ({"format": "podcast"}, "format"),
])
def test_a_bad_value_names_its_column(values: dict[str, str], field: str) -> None:
    row = {"key": "k", "title": "T", "url": "/k", "maturity": "discovery",
           "format": "article", **values}
    with pytest.raises(InvalidInput) as caught:
        item_from_row(row)
    assert caught.value.field == field


@pytest.mark.parametrize(("text", "field", "message"), [
    ("", None, "the file is empty"),
    ("key,title,url,maturity\n", "format", "lacks the column(s) format"),
    ("key,title,url,maturity,format,colour\n", "colour", "unknown column 'colour'"),
    ("key,title,url,maturity,format,key\n", "key", "appears twice"),
])
def test_a_wrong_header_refuses_the_file(text: str, field: str | None, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_content_csv(text)
    assert caught.value.line == 1
    assert caught.value.field == field
    assert message in caught.value.message


def test_a_file_that_is_not_csv_is_refused_with_the_line_of_the_broken_record() -> None:
    with pytest.raises(InvalidInput) as caught:
        read_content_csv(HEADER + "a,b,/c,discovery,article,,,,\n"
                         + 'x,"never closed,/y,discovery,article,,,,\n')
    assert caught.value.line == 3
    assert "not a valid CSV file" in caught.value.message
