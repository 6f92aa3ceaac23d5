"""The lifecycle configuration: pipeline stages and rules, signals, scoring, fit, qualification
and temperature. Parsed from a plain mapping (the YAML file) into validated, immutable objects.

Every problem is reported with its location (``stages[2].role``) so that `leadflow config check`
can name each one; nothing is half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from leadflow.domain.config_parsing import (
    Problems,
    mapping,
    number,
    sequence,
    strings,
    under,
    unknown_keys,
    valid_key,
)
from leadflow.domain.errors import ConfigInvalid, ConfigProblem
from leadflow.domain.matching import SHAPE_FIELDS, EventShape, Matcher
from leadflow.domain.nurture_config import NurtureConfig, parse_nurture
from leadflow.domain.predictive_config import ModelConfig, parse_model
from leadflow.domain.sales_config import SalesConfig, parse_sales

ROLES = ("entry", "interest", "handoff", "commit", "won", "excluded", "erased")
MAIN_ROLES = ("entry", "interest", "handoff", "commit", "won")
SIDE_ROLES = ("excluded", "erased")
GRADES = ("A", "B", "C", "D")
TEMPERATURES = ("hot", "warm", "new", "cold")
QUESTION_TYPES = ("choice", "bool", "date", "number", "text")
DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(h|d|w)$")
DURATION_UNITS = {"h": 3600.0, "d": 86400.0, "w": 604800.0}
PERIOD_NAMES = {"hour": 3600.0, "day": 86400.0, "week": 604800.0}


# ---------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Condition:
    """A stage or milestone rule. ``op`` is one of:

    all / any (``children``), contact_details, signal (``name``: seen since the last recycle),
    engagement_at_least (``number``: engagement since the last recycle), fit_at_least
    (``name``: a grade, or ``persona`` for the best persona's minimum grade),
    qualification (passed).
    """

    op: str
    children: tuple[Condition, ...] = ()
    name: str = ""
    number: float = 0.0


CONDITION_OPS = (
    "all",
    "any",
    "contact_details",
    "signal",
    "engagement_at_least",
    "fit_at_least",
    "qualification",
)


@dataclass(frozen=True)
class CapSpec:
    points: float
    window_seconds: float


@dataclass(frozen=True)
class EngagementRule:
    key: str
    when: Matcher
    points: float
    cap: CapSpec | None = None
    description: str = ""


SHAPE_CACHE_LIMIT = 50_000  # distinct event shapes remembered per configuration


@dataclass(frozen=True)
class EngagementConfig:
    half_life_days: float
    rules: tuple[EngagementRule, ...]
    _by_shape: dict[EventShape, list[EngagementRule]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False)

    @property
    def half_life_seconds(self) -> float:
        return self.half_life_days * 86400.0

    def rules_for(self, shape: EventShape) -> list[EngagementRule]:
        """The rules an event of this shape matches (remembered: shapes repeat a lot)."""
        found = self._by_shape.get(shape)
        if found is None:
            if len(self._by_shape) >= SHAPE_CACHE_LIMIT:
                self._by_shape.clear()
            found = [r for r in self.rules if r.when.matches(shape)]
            self._by_shape[shape] = found
        return found


@dataclass(frozen=True)
class Stage:
    key: str
    name: str
    role: str
    enter_when: Condition | None


@dataclass(frozen=True)
class Milestone:
    key: str
    name: str
    when: Condition | None  # None: set by hand (sal) or by a service


@dataclass(frozen=True)
class Criterion:
    field: str
    weight: float
    values: tuple[str, ...] | None = None
    between: tuple[float, float] | None = None
    label: str = ""


@dataclass(frozen=True)
class Persona:
    key: str
    name: str
    min_grade: str
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True)
class Exclusion:
    key: str
    field: str
    values: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class FitConfig:
    grade_thresholds: tuple[tuple[str, float], ...]  # (("A", 75), ("B", 50), ("C", 25))
    personas: tuple[Persona, ...]
    exclusions: tuple[Exclusion, ...]


@dataclass(frozen=True)
class Question:
    key: str
    label: str
    kind: str  # bant | prerequisite
    type: str
    choices: tuple[str, ...] = ()
    passing: tuple[str, ...] = ()
    within_days: float | None = None
    required: bool = True


@dataclass(frozen=True)
class TemperatureConfig:
    hot_timeline_days: float = 30
    hot_intent_days: float = 7
    warm_timeline_days: float = 180
    intent_signals: tuple[str, ...] = ("demo_request", "pricing")
    lead_window_days: float = 30
    lead_content_signal: str = "content"
    lead_min_content: int = 2
    lead_webinar_signal: str = "webinar"
    lead_warm_engagement: float = 25
    cold_sources: tuple[str, ...] = ("outbound",)
    blocker_budget_values: tuple[str, ...] = ("none",)
    queue_order: tuple[str, ...] = ("hot", "warm", "new", "cold")


@dataclass(frozen=True)
class LifecycleConfig:
    version: str
    digest: str
    stages: tuple[Stage, ...]
    milestones: tuple[Milestone, ...]
    signals: dict[str, Matcher]
    engagement: EngagementConfig
    fit: FitConfig
    questions: tuple[Question, ...]
    temperature: TemperatureConfig
    sales: SalesConfig = field(default_factory=SalesConfig)
    nurture: NurtureConfig = field(default_factory=NurtureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    _signals_by_shape: dict[EventShape, list[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def signals_for(self, shape: EventShape) -> list[str]:
        """The named signals an event of this shape is (remembered like rules_for)."""
        found = self._signals_by_shape.get(shape)
        if found is None:
            if len(self._signals_by_shape) >= SHAPE_CACHE_LIMIT:
                self._signals_by_shape.clear()
            found = [name for name, m in self.signals.items() if m.matches(shape)]
            self._signals_by_shape[shape] = found
        return found

    @property
    def config_version(self) -> str:
        """What a stage change records: the declared version and the content digest."""
        return f"{self.version}+{self.digest[:10]}"

    def stage(self, key: str) -> Stage:
        for s in self.stages:
            if s.key == key:
                return s
        raise ConfigInvalid(f"lifecycle configuration {self.config_version}", [ConfigProblem(
            "stages", f"has no stage {key!r}, which contacts are in: add it back, or move "
                      "them with the configuration that has it")])

    def is_erased(self, stage_key: str) -> bool:
        """Whether contacts in this stage asked to be forgotten."""
        return any(s.key == stage_key and s.role == "erased" for s in self.stages)

    def has_stage(self, key: str) -> bool:
        return any(s.key == key for s in self.stages)

    def stages_with_role(self, role: str) -> tuple[Stage, ...]:
        return tuple(s for s in self.stages if s.role == role)

    def first_stage(self, role: str) -> Stage:
        return self.stages_with_role(role)[0]

    @property
    def main_stages(self) -> tuple[Stage, ...]:
        return tuple(s for s in self.stages if s.role in MAIN_ROLES)

    def rank(self, stage_key: str) -> int:
        """Position on the main path; side stages (excluded, erased) rank -1."""
        for i, s in enumerate(self.main_stages):
            if s.key == stage_key:
                return i
        return -1

    def role_of(self, stage_key: str) -> str:
        return self.stage(stage_key).role

    def milestone_keys(self) -> tuple[str, ...]:
        return tuple(m.key for m in self.milestones)


# ---------------------------------------------------------------- parsing


def parse_matcher(value: Any, location: str, problems: Problems) -> Matcher:
    data = mapping(value, location, problems)
    if data is None:
        return Matcher()
    unknown_keys(data, SHAPE_FIELDS, location, problems)
    kwargs: dict[str, Any] = {}
    for name in SHAPE_FIELDS:
        if name not in data:
            continue
        if name == "premium":
            if not isinstance(data[name], bool):
                problems.add(under(location, name), f"expected true or false, got {data[name]!r}")
            else:
                kwargs[name] = data[name]
        elif name == "url":
            urls = data[name] if isinstance(data[name], list) else [data[name]]
            if not urls or not all(isinstance(u, str) and u for u in urls):
                problems.add(under(location, name), "expected a URL pattern or a list of them")
            else:
                kwargs[name] = tuple(urls)
        else:
            kwargs[name] = strings(data[name], under(location, name), problems)
    if not kwargs and not any(p.location.startswith(location) for p in problems.items):
        problems.add(location, "a matcher needs at least one field (type, url, ...)")
    return Matcher(**kwargs)


def parse_condition(
    value: Any, location: str, problems: Problems, signals: set[str]
) -> Condition:
    data = mapping(value, location, problems)
    if data is None:
        return Condition("all")
    if len(data) != 1:
        problems.add(location, f"a condition has exactly one of: {', '.join(CONDITION_OPS)}")
        return Condition("all")
    op, arg = next(iter(data.items()))
    here = under(location, str(op))
    if op in ("all", "any"):
        items = sequence(arg, here, problems)
        if not items:
            problems.add(here, "expected at least one condition")
        children = tuple(
            parse_condition(c, under(here, i), problems, signals) for i, c in enumerate(items)
        )
        return Condition(op, children=children)
    if op in ("contact_details", "qualification"):
        if arg is not True and arg != "passed":
            problems.add(here, "expected true")
        return Condition(op)
    if op == "signal":
        if arg not in signals:
            problems.add(here, f"unknown signal {arg!r} (defined: {', '.join(sorted(signals))})")
        return Condition(op, name=str(arg))
    if op == "engagement_at_least":
        return Condition(op, number=number(arg, here, problems))
    if op == "fit_at_least":
        if arg != "persona" and arg not in GRADES:
            problems.add(here, "expected a grade A-D or 'persona'")
        return Condition(op, name=str(arg))
    problems.add(here, f"unknown condition (allowed: {', '.join(CONDITION_OPS)})")
    return Condition("all")


def _duration(value: Any, location: str, problems: Problems) -> float:
    if isinstance(value, str):
        if value in PERIOD_NAMES:
            return PERIOD_NAMES[value]
        m = DURATION_RE.match(value.strip())
        if m and float(m.group(1)) > 0:
            return float(m.group(1)) * DURATION_UNITS[m.group(2)]
    problems.add(location,
                 f"expected hour, day, week or a duration like '12h', '7d', got {value!r}")
    return 86400.0


def _parse_engagement(data: Any, problems: Problems) -> EngagementConfig:
    loc = "engagement"
    eng = mapping(data, loc, problems) or {}
    unknown_keys(eng, ("half_life_days", "rules"), loc, problems)
    half_life = number(eng.get("half_life_days", 30), under(loc, "half_life_days"), problems,
                        positive=True, default=30.0)
    rules = []
    seen: set[str] = set()
    for i, raw in enumerate(sequence(eng.get("rules", []), under(loc, "rules"), problems)):
        here = under(under(loc, "rules"), i)
        r = mapping(raw, here, problems)
        if r is None:
            continue
        unknown_keys(r, ("key", "when", "points", "cap", "description"), here, problems)
        key = valid_key(r.get("key"), under(here, "key"), problems)
        if key in seen:
            problems.add(under(here, "key"), f"duplicate rule key {key!r}")
        seen.add(key)
        points = number(r.get("points"), under(here, "points"), problems)
        given = r.get("points")
        if points == 0 and isinstance(given, int | float) and not isinstance(given, bool):
            problems.add(under(here, "points"), "points must not be 0")  # (not refused above)
        cap = None
        if "cap" in r:
            c = mapping(r["cap"], under(here, "cap"), problems)
            if c is not None:
                unknown_keys(c, ("points", "per"), under(here, "cap"), problems)
                cap = CapSpec(
                    points=number(c.get("points"), under(under(here, "cap"), "points"), problems,
                                   positive=True, default=1.0),
                    window_seconds=_duration(c.get("per"), under(under(here, "cap"), "per"),
                                             problems),
                )
        rules.append(
            EngagementRule(
                key=key,
                when=parse_matcher(r.get("when"), under(here, "when"), problems),
                points=points,
                cap=cap,
                description=str(r.get("description", "")),
            )
        )
    return EngagementConfig(half_life_days=half_life, rules=tuple(rules))


def _parse_stages(data: Any, problems: Problems, signals: set[str]) -> tuple[Stage, ...]:
    stages = []
    seen: set[str] = set()
    for i, raw in enumerate(sequence(data, "stages", problems)):
        here = under("stages", i)
        s = mapping(raw, here, problems)
        if s is None:
            continue
        unknown_keys(s, ("key", "name", "role", "enter_when"), here, problems)
        key = valid_key(s.get("key"), under(here, "key"), problems)
        if key in seen:
            problems.add(under(here, "key"), f"duplicate stage {key!r}")
        seen.add(key)
        role = s.get("role")
        if role not in ROLES:
            problems.add(under(here, "role"),
                         f"unknown role {role!r} (allowed: {', '.join(ROLES)})")
        when = None
        if s.get("enter_when") is not None:
            if role in ("entry", "excluded", "erased"):
                problems.add(under(here, "enter_when"),
                             f"a stage with role {role!r} is not entered by a rule")
            when = parse_condition(s["enter_when"], under(here, "enter_when"), problems, signals)
        stages.append(Stage(key=key, name=str(s.get("name", key.title())), role=str(role),
                            enter_when=when))
    roles = [s.role for s in stages]
    if roles.count("entry") != 1:
        problems.add("stages", "exactly one stage must have role 'entry'")
    for needed in ("interest", "handoff", "commit", "won", "excluded", "erased"):
        if needed not in roles:
            problems.add("stages", f"no stage has role {needed!r}")
    main = [s.role for s in stages if s.role in MAIN_ROLES]
    order = [MAIN_ROLES.index(r) for r in main]
    if order != sorted(order):
        problems.add("stages", "main stages must follow the role order "
                     "entry, interest, handoff, commit, won")
    return tuple(stages)


def _parse_milestones(data: Any, problems: Problems, signals: set[str]) -> tuple[Milestone, ...]:
    out = []
    seen: set[str] = set()
    for i, raw in enumerate(sequence(data, "milestones", problems)):
        here = under("milestones", i)
        m = mapping(raw, here, problems)
        if m is None:
            continue
        unknown_keys(m, ("key", "name", "when"), here, problems)
        key = valid_key(m.get("key"), under(here, "key"), problems)
        if key in seen:
            problems.add(under(here, "key"), f"duplicate milestone {key!r}")
        seen.add(key)
        when = None
        if m.get("when") is not None:
            when = parse_condition(m["when"], under(here, "when"), problems, signals)
        out.append(Milestone(key=key, name=str(m.get("name", key.upper())), when=when))
    return tuple(out)


def _parse_fit(data: Any, problems: Problems) -> FitConfig:
    loc = "fit"
    fit = mapping(data, loc, problems) or {}
    unknown_keys(fit, ("grades", "personas", "exclusions"), loc, problems)
    grades_raw = mapping(fit.get("grades", {"A": 75, "B": 50, "C": 25}), under(loc, "grades"),
                          problems) or {}
    thresholds = []
    for g in ("A", "B", "C"):
        if g not in grades_raw:
            problems.add(under(loc, "grades"), f"missing threshold for grade {g}")
            continue
        thresholds.append((g, number(grades_raw[g], under(under(loc, "grades"), g), problems)))
    for g in grades_raw:
        if g not in ("A", "B", "C"):
            problems.add(under(under(loc, "grades"), str(g)),
                         "only A, B and C take thresholds (D is the rest)")
    values = [t for _, t in thresholds]
    if values != sorted(values, reverse=True):
        problems.add(under(loc, "grades"), "thresholds must decrease from A to C")
    personas = []
    for i, raw in enumerate(sequence(fit.get("personas", []), under(loc, "personas"), problems)):
        here = under(under(loc, "personas"), i)
        p = mapping(raw, here, problems)
        if p is None:
            continue
        unknown_keys(p, ("key", "name", "min_grade", "criteria"), here, problems)
        min_grade = p.get("min_grade", "B")
        if min_grade not in GRADES:
            problems.add(under(here, "min_grade"), "expected a grade A-D")
        criteria = []
        for j, craw in enumerate(sequence(p.get("criteria", []), under(here, "criteria"),
                                           problems)):
            cl = under(under(here, "criteria"), j)
            c = mapping(craw, cl, problems)
            if c is None:
                continue
            unknown_keys(c, ("field", "in", "between", "weight", "label"), cl, problems)
            fname = _field_path(c.get("field"), under(cl, "field"), problems)
            values_in = strings(c["in"], under(cl, "in"), problems) if "in" in c else None
            between = None
            if "between" in c:
                b = c["between"]
                if (not isinstance(b, list) or len(b) != 2
                        or not all(isinstance(x, int | float) for x in b) or b[0] > b[1]):
                    problems.add(under(cl, "between"), "expected [low, high] with low <= high")
                else:
                    between = (float(b[0]), float(b[1]))
            if (values_in is None) == (between is None):
                problems.add(cl, "a criterion has exactly one of 'in' or 'between'")
            criteria.append(Criterion(
                field=fname,
                weight=number(c.get("weight"), under(cl, "weight"), problems, positive=True,
                               default=1.0),
                values=values_in, between=between, label=str(c.get("label", "")),
            ))
        if not criteria:
            problems.add(under(here, "criteria"), "a persona needs at least one criterion")
        personas.append(Persona(key=valid_key(p.get("key"), under(here, "key"), problems),
                                name=str(p.get("name", p.get("key"))),
                                min_grade=str(min_grade), criteria=tuple(criteria)))
    exclusions = []
    for i, raw in enumerate(sequence(fit.get("exclusions", []), under(loc, "exclusions"),
                                      problems)):
        here = under(under(loc, "exclusions"), i)
        x = mapping(raw, here, problems)
        if x is None:
            continue
        unknown_keys(x, ("key", "field", "in", "reason"), here, problems)
        exclusions.append(Exclusion(
            key=valid_key(x.get("key"), under(here, "key"), problems),
            field=_field_path(x.get("field"), under(here, "field"), problems),
            values=strings(x.get("in", []), under(here, "in"), problems),
            reason=str(x.get("reason", x.get("key"))),
        ))
    return FitConfig(tuple(thresholds), tuple(personas), tuple(exclusions))


CONTACT_FIELDS = ("email", "email_domain", "phone", "first_name", "last_name", "title",
                  "seniority", "account_role", "country", "region", "language", "source")
ACCOUNT_FIELDS = ("name", "domain", "industry", "employees", "country", "annual_revenue")


def _field_path(value: Any, location: str, problems: Problems) -> str:
    if isinstance(value, str) and "." in value:
        owner, name = value.split(".", 1)
        if owner == "contact" and (name in CONTACT_FIELDS or name.startswith("attributes.")):
            return value
        if owner == "account" and (name in ACCOUNT_FIELDS or name.startswith("attributes.")):
            return value
    problems.add(location, f"unknown field {value!r}: use contact.<{'|'.join(CONTACT_FIELDS)}>, "
                 f"account.<{'|'.join(ACCOUNT_FIELDS)}> or <contact|account>.attributes.<name>")
    return str(value)


def _parse_questions(data: Any, problems: Problems) -> tuple[Question, ...]:
    loc = "qualification"
    q = mapping(data, loc, problems) or {}
    unknown_keys(q, ("questions",), loc, problems)
    out = []
    for i, raw in enumerate(sequence(q.get("questions", []), under(loc, "questions"), problems)):
        here = under(under(loc, "questions"), i)
        d = mapping(raw, here, problems)
        if d is None:
            continue
        unknown_keys(d, ("key", "label", "kind", "type", "choices", "pass", "within_days",
                          "required"), here, problems)
        qtype = d.get("type", "choice")
        if qtype not in QUESTION_TYPES:
            problems.add(under(here, "type"), f"expected one of {', '.join(QUESTION_TYPES)}")
        kind = d.get("kind", "prerequisite")
        if kind not in ("bant", "prerequisite", "info"):
            problems.add(under(here, "kind"), "expected bant, prerequisite or info")
        choices = strings(d["choices"], under(here, "choices"), problems) if "choices" in d else ()
        if qtype == "choice" and not choices:
            problems.add(under(here, "choices"), "a choice question needs choices")
        passing: tuple[str, ...] = ()
        if "pass" in d:
            raw_pass = d["pass"] if isinstance(d["pass"], list) else [d["pass"]]
            passing = tuple(str(v).lower() for v in raw_pass)
            for v in passing:
                if choices and v not in choices:
                    problems.add(under(here, "pass"), f"{v!r} is not one of the choices")
        within = None
        if "within_days" in d:
            within = number(d["within_days"], under(here, "within_days"), problems, positive=True)
        out.append(Question(
            key=valid_key(d.get("key"), under(here, "key"), problems),
            label=str(d.get("label", "")),
            kind=str(kind), type=str(qtype), choices=choices, passing=passing,
            within_days=within, required=bool(d.get("required", kind != "info")),
        ))
    return tuple(out)


def _parse_temperature(data: Any, problems: Problems, signals: set[str]) -> TemperatureConfig:
    loc = "temperature"
    t = mapping(data if data is not None else {}, loc, problems) or {}
    defaults = TemperatureConfig()
    allowed = tuple(TemperatureConfig.__dataclass_fields__)
    unknown_keys(t, allowed, loc, problems)
    kwargs: dict[str, Any] = {}
    for name in allowed:
        if name not in t:
            continue
        default = getattr(defaults, name)
        here = under(loc, name)
        if isinstance(default, tuple):
            kwargs[name] = strings(t[name], here, problems)
        elif isinstance(default, str):
            kwargs[name] = str(t[name])
        elif isinstance(default, int) and not isinstance(default, bool) and name.endswith(
                "min_content"):
            kwargs[name] = int(number(t[name], here, problems, positive=True, default=default))
        else:
            kwargs[name] = number(t[name], here, problems, positive=True, default=default)
    cfg = TemperatureConfig(**kwargs)
    for name in (*cfg.intent_signals, cfg.lead_content_signal, cfg.lead_webinar_signal):
        if name not in signals:
            problems.add(loc, f"unknown signal {name!r}")
    if cfg.lead_min_content not in (1, 2):
        problems.add(under(loc, "lead_min_content"), "must be 1 or 2")
    if sorted(cfg.queue_order) != sorted(TEMPERATURES):
        problems.add(under(loc, "queue_order"), f"must list each of {', '.join(TEMPERATURES)} once")
    return cfg


TOP_LEVEL = ("version", "stages", "milestones", "signals", "engagement", "fit",
             "qualification", "temperature", "sales", "nurture", "model")


def parse_config(data: Any, *, source: str = "<config>") -> LifecycleConfig:
    """Validate a configuration mapping; raise ConfigInvalid listing every problem."""
    problems = Problems()
    root = mapping(data, "(top)", problems)
    if root is None:
        raise ConfigInvalid(source, problems.items)
    unknown_keys(root, TOP_LEVEL, "", problems)
    version = root.get("version")
    if not isinstance(version, str | int) or isinstance(version, bool) or str(version) == "":
        problems.add("version", "expected a version label such as 1 or '2024-06'")
    signals_raw = mapping(root.get("signals", {}), "signals", problems) or {}
    signals: dict[str, Matcher] = {}
    for name, raw in signals_raw.items():
        here = under("signals", str(name))
        valid_key(name, here, problems)
        signals[str(name)] = parse_matcher(raw, here, problems)
    names = set(signals)
    stages = _parse_stages(root.get("stages"), problems, names)
    milestones = _parse_milestones(root.get("milestones", []), problems, names)
    stage_keys = {s.key for s in stages}
    for m in milestones:
        if m.key in stage_keys:
            problems.add("milestones", f"{m.key!r} is both a stage and a milestone")
    engagement = _parse_engagement(root.get("engagement", {}), problems)
    fit = _parse_fit(root.get("fit", {}), problems)
    questions = _parse_questions(root.get("qualification", {}), problems)
    temperature = _parse_temperature(root.get("temperature"), problems, names)
    sales = parse_sales(root.get("sales"), problems)
    nurture = parse_nurture(root.get("nurture"), problems)
    milestone_keys = {m.key for m in milestones}
    for i, responder in enumerate(nurture.autoresponders):
        if responder.trigger == "milestone" and responder.match not in milestone_keys:
            problems.add(f"nurture.autoresponders[{i}].when.milestone",
                         f"unknown milestone {responder.match!r}")
    main = [s.key for s in stages if s.role in MAIN_ROLES]
    after_interest = [s.key for s in stages if s.role in ("handoff", "commit", "won")]
    model = parse_model(root.get("model"), problems, signals=names,
                        stages={k: main.index(k) for k in after_interest},
                        milestones=milestone_keys)
    if problems.items:
        raise ConfigInvalid(source, problems.items)
    digest = hashlib.sha256(json.dumps(root, sort_keys=True, default=str).encode()).hexdigest()
    return LifecycleConfig(
        version=str(version), digest=digest, stages=stages, milestones=milestones,
        signals=signals, engagement=engagement, fit=fit, questions=questions,
        temperature=temperature, sales=sales, nurture=nurture, model=model, raw=root,
    )
