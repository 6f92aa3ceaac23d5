"""The lifecycle configuration: the shipped file parses; every problem names its location."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadflow.adapters.config_file import default_config_text, load_config, parse_config_text
from leadflow.domain.config import LifecycleConfig, parse_config
from leadflow.domain.errors import ConfigInvalid


@pytest.fixture
def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(default_config_text())
    return data


def problems_of(data: Any) -> dict[str, str]:
    with pytest.raises(ConfigInvalid) as info:
        parse_config(data)
    return {p.location: p.message for p in info.value.problems}


def stage_index(raw: dict[str, Any], key: str) -> int:
    return next(i for i, s in enumerate(raw["stages"]) if s["key"] == key)


def rule_index(raw: dict[str, Any], key: str) -> int:
    return next(i for i, r in enumerate(raw["engagement"]["rules"]) if r["key"] == key)


# ------------------------------------------------------------------ the shipped configuration


def test_shipped_config_parses_with_the_default_pipeline() -> None:
    cfg = load_config(None)
    assert [(s.key, s.role) for s in cfg.stages] == [
        ("suspect", "entry"), ("lead", "interest"), ("prospect", "handoff"),
        ("opportunity", "commit"), ("customer", "won"), ("disqualified", "excluded"),
        ("closed", "erased"),
    ]
    assert cfg.milestone_keys() == ("mql", "pql", "sal", "qualified")
    assert [s.key for s in cfg.main_stages] == ["suspect", "lead", "prospect", "opportunity",
                                                "customer"]
    assert cfg.rank("disqualified") == cfg.rank("closed") == -1
    assert cfg.engagement.half_life_days == 30
    page_view = next(r for r in cfg.engagement.rules if r.key == "page_view")
    assert page_view.cap is not None
    assert (page_view.cap.points, page_view.cap.window_seconds) == (10, 86400)
    assert {p.key for p in cfg.fit.personas} == {"it_leader", "ops_manager"}
    assert [x.key for x in cfg.fit.exclusions] == ["competitor"]
    assert cfg.fit.grade_thresholds == (("A", 75.0), ("B", 50.0), ("C", 25.0))
    assert {q.key for q in cfg.questions} >= {"budget", "authority", "need", "timeline"}


def test_version_label_carries_a_content_digest(raw: dict[str, Any]) -> None:
    a = parse_config(raw)
    assert a.config_version.startswith("1+")
    assert parse_config(copy.deepcopy(raw)).config_version == a.config_version
    raw["engagement"]["rules"][0]["points"] = 2
    b = parse_config(raw)
    assert b.version == a.version
    assert b.config_version != a.config_version  # same label, other content: another version


def test_a_duration_can_be_written_as_hours_days_or_weeks(raw: dict[str, Any]) -> None:
    i = rule_index(raw, "page_view")
    for per, seconds in (("week", 604800.0), ("12h", 43200.0), ("2d", 172800.0),
                         ("1w", 604800.0)):
        raw["engagement"]["rules"][i]["cap"]["per"] = per
        rule = parse_config(raw).engagement.rules[i]
        assert rule.cap is not None
        assert rule.cap.window_seconds == seconds


# ------------------------------------------------------------------ problems and their location


def test_unknown_stage_role_names_the_stage(raw: dict[str, Any]) -> None:
    raw["stages"][2]["role"] = "handover"
    problems = problems_of(raw)
    assert "stages[2].role" in problems
    assert "handover" in problems["stages[2].role"]


def test_unknown_signal_in_a_stage_condition(raw: dict[str, Any]) -> None:
    i = stage_index(raw, "prospect")
    raw["stages"][i]["enter_when"]["all"][2]["any"][1] = {"signal": "demo_requested"}
    problems = problems_of(raw)
    loc = f"stages[{i}].enter_when.all[2].any[1].signal"
    assert loc in problems
    assert "demo_requested" in problems[loc]


def test_unknown_signal_in_a_milestone_and_in_temperature(raw: dict[str, Any]) -> None:
    raw["milestones"][1]["when"] = {"signal": "trial"}
    raw["temperature"]["intent_signals"] = ["demo_request", "pricing_page"]
    problems = problems_of(raw)
    assert "trial" in problems["milestones[1].when.signal"]
    assert "pricing_page" in problems["temperature"]


def test_unknown_condition_operator(raw: dict[str, Any]) -> None:
    raw["milestones"][0]["when"] = {"engagement_above": 40}
    assert "milestones[0].when.engagement_above" in problems_of(raw)


def test_duplicate_stage_key(raw: dict[str, Any]) -> None:
    raw["stages"].insert(2, {"key": "lead", "name": "Lead again", "role": "interest"})
    problems = problems_of(raw)
    assert "duplicate" in problems["stages[2].key"]


def test_duplicate_rule_and_milestone_keys(raw: dict[str, Any]) -> None:
    raw["engagement"]["rules"].append(copy.deepcopy(raw["engagement"]["rules"][0]))
    raw["milestones"].append({"key": "mql", "when": {"engagement_at_least": 50}})
    problems = problems_of(raw)
    last_rule = len(raw["engagement"]["rules"]) - 1
    assert "duplicate" in problems[f"engagement.rules[{last_rule}].key"]
    assert "duplicate" in problems[f"milestones[{len(raw['milestones']) - 1}].key"]


def test_a_key_that_is_both_stage_and_milestone(raw: dict[str, Any]) -> None:
    raw["milestones"].append({"key": "prospect"})
    assert "prospect" in problems_of(raw)["milestones"]


@pytest.mark.parametrize("per", ["fortnight", "0d", "-1d", 7, "", None])
def test_bad_cap_period(raw: dict[str, Any], per: Any) -> None:
    i = rule_index(raw, "page_view")
    raw["engagement"]["rules"][i]["cap"]["per"] = per
    assert f"engagement.rules[{i}].cap.per" in problems_of(raw)


def test_bad_cap_points_and_zero_points(raw: dict[str, Any]) -> None:
    i = rule_index(raw, "page_view")
    raw["engagement"]["rules"][i]["cap"]["points"] = 0
    raw["engagement"]["rules"][i + 1]["points"] = 0
    problems = problems_of(raw)
    assert f"engagement.rules[{i}].cap.points" in problems
    assert f"engagement.rules[{i + 1}].points" in problems


@pytest.mark.parametrize("points", ["lots", None, False, [1]])
def test_points_that_are_not_a_number_get_that_one_problem(raw: dict[str, Any],
                                                           points: Any) -> None:
    i = rule_index(raw, "page_view")
    raw["engagement"]["rules"][i]["points"] = points
    with pytest.raises(ConfigInvalid) as info:
        parse_config(raw)
    assert [p.message for p in info.value.problems
            if p.location == f"engagement.rules[{i}].points"] == [
        f"expected a number, got {points!r}"]


def test_missing_entry_stage(raw: dict[str, Any]) -> None:
    raw["stages"] = [s for s in raw["stages"] if s["role"] != "entry"]
    problems = problems_of(raw)
    assert "entry" in problems["stages"]


def test_missing_roles_and_wrong_order(raw: dict[str, Any]) -> None:
    i, j = stage_index(raw, "prospect"), stage_index(raw, "opportunity")
    raw["stages"][i], raw["stages"][j] = raw["stages"][j], raw["stages"][i]
    raw["stages"] = [s for s in raw["stages"] if s["role"] != "won"]
    with pytest.raises(ConfigInvalid) as info:
        parse_config(raw)
    messages = [p.message for p in info.value.problems if p.location == "stages"]
    assert any("'won'" in m for m in messages)
    assert any("order" in m for m in messages)


def test_a_rule_entered_side_stage_is_refused(raw: dict[str, Any]) -> None:
    i = stage_index(raw, "closed")
    raw["stages"][i]["enter_when"] = {"signal": "purchase"}
    assert f"stages[{i}].enter_when" in problems_of(raw)


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ((), "colour"),
        (("stages", 1), "stages[1].colour"),
        (("engagement",), "engagement.colour"),
        (("engagement", "rules", 0), "engagement.rules[0].colour"),
        (("engagement", "rules", 0, "when"), "engagement.rules[0].when.colour"),
        (("fit", "personas", 0, "criteria", 1), "fit.personas[0].criteria[1].colour"),
        (("qualification", "questions", 2), "qualification.questions[2].colour"),
        (("temperature",), "temperature.colour"),
    ],
)
def test_unknown_keys_are_named(raw: dict[str, Any], path: tuple[Any, ...],
                                location: str) -> None:
    target: Any = raw
    for step in path:
        target = target[step]
    target["colour"] = "blue"
    problems = problems_of(raw)
    assert location in problems
    assert "unknown key" in problems[location]


def test_every_problem_is_reported_at_once(raw: dict[str, Any]) -> None:
    raw["stages"][2]["role"] = "handover"
    raw["engagement"]["half_life_days"] = -3
    raw["fit"]["personas"][0]["min_grade"] = "E"
    raw["fit"]["exclusions"][0]["field"] = "contact.shoe_size"
    raw["qualification"]["questions"][0]["pass"] = ["approved", "maybe"]
    raw["temperature"]["queue_order"] = ["hot", "hot", "new", "cold"]
    problems = problems_of(raw)
    assert {"stages[2].role", "engagement.half_life_days", "fit.personas[0].min_grade",
            "fit.exclusions[0].field", "qualification.questions[0].pass",
            "temperature.queue_order"} <= set(problems)


@pytest.mark.parametrize("data", [None, [], "stages: []", 3])
def test_a_config_that_is_not_a_mapping(data: Any) -> None:
    with pytest.raises(ConfigInvalid):
        parse_config(data)


def test_problems_in_the_error_message(raw: dict[str, Any]) -> None:
    raw["stages"][2]["role"] = "handover"
    with pytest.raises(ConfigInvalid) as info:
        parse_config(raw, source="mine.yaml")
    assert "mine.yaml" in str(info.value)
    assert "stages[2].role" in str(info.value)


# ------------------------------------------------------------------ through the YAML file


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def file_problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigInvalid) as info:
        parse_config_text(text, source="pipeline.yaml")
    return {p.location: p.message for p in info.value.problems}


def test_yaml_problems_carry_line_numbers() -> None:
    text = default_config_text().replace("role: handoff", "role: handover")
    text = text.replace("points: 10, per: day}", "points: 10, per: fortnight}")
    problems = file_problems(text)
    assert f"stages[2].role (line {line_of(text, 'role: handover')})" in problems
    assert (f"engagement.rules[0].cap.per (line {line_of(text, 'per: fortnight')})"
            in problems)


def test_yaml_unknown_signal_line_number() -> None:
    text = default_config_text().replace("- signal: demo_request", "- signal: demo_requested")
    problems = file_problems(text)
    line = line_of(text, "signal: demo_requested")
    assert any(loc.startswith("stages[2].enter_when") and loc.endswith(f"(line {line})")
               for loc in problems), problems


def test_yaml_missing_key_points_at_its_parent() -> None:
    text = default_config_text().replace("    role: entry\n", "")
    problems = file_problems(text)
    assert any(re.fullmatch(rf"stages\[0\]\.role \(line {line_of(text, 'key: suspect')}\)", loc)
               for loc in problems), problems
    assert f"stages (line {line_of(text, 'stages:')})" in problems


def test_yaml_duplicate_mapping_key_is_a_problem() -> None:
    """A key written twice would silently win over the first: name both lines."""
    text = default_config_text().replace(
        "    role: handoff\n", "    role: handoff\n    role: commit\n", 1)
    problems = file_problems(text)
    loc = f"stages[2].role (line {line_of(text, 'role: commit')})"
    assert loc in problems, problems
    assert f"line {line_of(text, 'role: handoff')}" in problems[loc]


def test_yaml_duplicate_key_is_reported_even_when_both_values_are_valid() -> None:
    text = default_config_text().replace("half_life_days: 30\n",
                                         "half_life_days: 30\n  half_life_days: 14\n", 1)
    problems = file_problems(text)
    assert list(problems) == [
        f"engagement.half_life_days (line {line_of(text, 'half_life_days: 14')})"]


def test_yaml_syntax_error_names_line_and_column() -> None:
    text = default_config_text().replace("version: 1", "version: [1", 1)
    problems = file_problems(text)
    assert any(loc.startswith("line ") for loc in problems)


def test_a_missing_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.problems[0].location == "(file)"


def test_a_file_on_disk_loads(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(default_config_text().replace("half_life_days: 30", "half_life_days: 14"),
                    encoding="utf-8")
    cfg: LifecycleConfig = load_config(path)
    assert cfg.engagement.half_life_days == 14
