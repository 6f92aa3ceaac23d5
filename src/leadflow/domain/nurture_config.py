"""The nurture part of the lifecycle configuration (its ``nurture:`` section): the frequency cap,
the consent policy, the newsletter, progressive profiling, tracks and autoresponders.

Tracks can also be defined through the API; both kinds are parsed here, so a track sent to
the API is checked exactly as one in the file is.
"""

from __future__ import annotations

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
from leadflow.domain.content import MATURITIES, MATURITY_BY_ROLE
from leadflow.domain.mail_policy import (
    PRIORITY_AUTORESPONDER,
    PRIORITY_MARKETING_TRACK,
    PRIORITY_NEWSLETTER,
    PRIORITY_SALES_TRACK,
    CapPolicy,
    ConsentPolicy,
)
from leadflow.domain.nurture import AUDIENCE_ROLES, Autoresponder, Condition, Step, Track
from leadflow.domain.sales import TASK_KINDS

DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|h|d|w)$")
UNIT_SECONDS = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
PROFILE_FIELDS = ("first_name", "last_name", "company", "title", "phone", "country",
                  "company_size", "industry", "budget", "timeline", "authority")
TRIGGERS = ("form_submitted", "milestone")


@dataclass(frozen=True)
class NurtureConfig:
    cap: CapPolicy = field(default_factory=CapPolicy)
    consent: ConsentPolicy = field(default_factory=ConsentPolicy)
    newsletter_priority: int = PRIORITY_NEWSLETTER
    newsletter_expires_seconds: float = 7 * 86400.0
    profile_fields: tuple[str, ...] = ("company", "title", "company_size", "timeline",
                                       "budget")
    profile_max_fields: int = 3
    tracks: tuple[Track, ...] = ()
    autoresponders: tuple[Autoresponder, ...] = ()

    def track(self, key: str) -> Track | None:
        return next((t for t in self.tracks if t.key == key), None)


def parse_duration(value: Any, location: str, problems: Problems) -> float:
    """``30m``, ``12h``, ``3d``, ``2w`` (calendar time) as seconds."""
    match = DURATION_RE.match(str(value).strip()) if isinstance(value, str | int) else None
    if match is None:
        problems.add(location, f"expected a duration like '3d', '12h' or '30m', got {value!r}")
        return 0.0
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


def _integer(value: Any, location: str, problems: Problems, *, low: int, high: int,
             default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.add(location, f"expected a whole number from {low} to {high}, got {value!r}")
        return default
    return value


def _maturities(value: Any, location: str, problems: Problems,
                allowed: tuple[str, ...]) -> tuple[str, ...]:
    out = strings(value, location, problems)
    for m in out:
        if m not in MATURITIES:
            problems.add(location, f"unknown maturity {m!r} (maturities: {', '.join(MATURITIES)})")
        elif m not in allowed:
            problems.add(location, f"{m} content does not fit this audience "
                                   f"(it may get: {', '.join(allowed)})")
    return out


CONDITION_KEYS = ("engagement_at_least", "engagement_below", "milestone", "no_milestone",
                  "consumed", "not_consumed", "temperature")


def _condition(value: Any, location: str, problems: Problems) -> Condition:
    data = mapping(value, location, problems)
    if not data:
        if data is not None:
            problems.add(location, "an `if` needs at least one test")
        return Condition()
    unknown_keys(data, CONDITION_KEYS, location, problems)
    kw: dict[str, Any] = {}
    for key in ("engagement_at_least", "engagement_below"):
        if key in data:
            kw[key] = number(data[key], under(location, key), problems)
    for key in ("milestone", "no_milestone"):
        if key in data:
            kw[key] = valid_key(data[key], under(location, key), problems)
    for key in ("consumed", "not_consumed"):
        if key in data:
            if data[key] not in MATURITIES:
                problems.add(under(location, key),
                             f"expected a maturity ({', '.join(MATURITIES)}), got {data[key]!r}")
            kw[key] = str(data[key])
    if "temperature" in data:
        kw["temperature"] = strings(data["temperature"], under(location, "temperature"),
                                    problems)
    return Condition(**kw)


def _send(data: Any, location: str, problems: Problems, allowed: tuple[str, ...]
          ) -> tuple[str | None, tuple[str, ...]]:
    body = mapping(data, location, problems)
    if body is None:
        return None, ()
    unknown_keys(body, ("item", "maturity"), location, problems)
    if ("item" in body) == ("maturity" in body):
        problems.add(location, "a send names an `item` or a `maturity`, not both")
        return None, ()
    if "item" in body:
        if not isinstance(body["item"], str) or not body["item"].strip():
            problems.add(under(location, "item"), "expected a content item key")
            return None, ()
        return body["item"].strip().lower(), ()
    return None, _maturities(body["maturity"], under(location, "maturity"), problems, allowed)


STEP_KINDS = ("send", "wait", "if", "task")


def _step(value: Any, location: str, problems: Problems, *, audience: str,
          allowed: tuple[str, ...]) -> Step | None:
    data = mapping(value, location, problems)
    if data is None:
        return None
    kinds = [k for k in STEP_KINDS if k in data]
    if len(kinds) != 1:
        problems.add(location, f"a step is exactly one of {', '.join(STEP_KINDS)}")
        return None
    kind = kinds[0]
    where = under(location, kind)
    if kind == "send":
        unknown_keys(data, ("send",), location, problems)
        item, maturities = _send(data["send"], where, problems, allowed)
        return Step(kind="send", item=item, maturities=maturities)
    if kind == "wait":
        unknown_keys(data, ("wait",), location, problems)
        return Step(kind="wait", seconds=parse_duration(data["wait"], where, problems))
    if kind == "if":
        unknown_keys(data, ("if", "else"), location, problems)
        otherwise = data.get("else", "stop")
        if otherwise not in ("stop", "skip"):
            problems.add(under(location, "else"), "expected 'stop' or 'skip'")
        return Step(kind="if", condition=_condition(data["if"], where, problems),
                    otherwise=str(otherwise))
    unknown_keys(data, ("task",), location, problems)
    if audience != "sales":
        problems.add(where, "only sales tracks create tasks: a marketing contact has no owner")
    body = mapping(data["task"], where, problems) or {}
    unknown_keys(body, ("kind", "title", "due"), where, problems)
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.add(under(where, "title"), "a task needs a title")
        title = ""
    kind_value = body.get("kind", "follow_up")
    if kind_value not in TASK_KINDS:
        problems.add(under(where, "kind"), f"expected one of {', '.join(TASK_KINDS)}, "
                                            f"got {kind_value!r}")
    return Step(kind="task", task_kind=str(kind_value), title=str(title).strip(),
                due_seconds=parse_duration(body.get("due", "1d"), under(where, "due"), problems))


def parse_track(value: Any, location: str, problems: Problems, *, source: str = "config"
                ) -> Track | None:
    data = mapping(value, location, problems)
    if data is None:
        return None
    unknown_keys(data, ("key", "name", "audience", "stages", "priority", "expires", "steps"),
                 location, problems)
    key = valid_key(data.get("key"), under(location, "key"), problems)
    audience = data.get("audience", "marketing")
    if audience not in AUDIENCE_ROLES:
        problems.add(under(location, "audience"),
                     f"expected one of {', '.join(AUDIENCE_ROLES)}, got {audience!r}")
        audience = "marketing"
    roles = AUDIENCE_ROLES[audience]
    stage_roles = strings(data.get("stages", list(roles[-1:])), under(location, "stages"),
                          problems)
    for role in stage_roles:
        if role not in roles:
            problems.add(under(location, "stages"),
                         f"a {audience} track takes contacts in {' or '.join(roles)} stages, "
                         f"not {role!r} (customers get only the newsletter)")
    allowed = tuple(dict.fromkeys(m for r in stage_roles for m in MATURITY_BY_ROLE.get(r, ())))
    default_priority = PRIORITY_SALES_TRACK if audience == "sales" else PRIORITY_MARKETING_TRACK
    priority = _integer(data.get("priority", default_priority), under(location, "priority"),
                        problems, low=1, high=99, default=default_priority)
    expires = parse_duration(data.get("expires", "7d"), under(location, "expires"), problems)
    raw_steps = sequence(data.get("steps"), under(location, "steps"), problems)
    if not raw_steps and isinstance(data.get("steps"), list):
        problems.add(under(location, "steps"), "a track needs at least one step")
    steps = [_step(s, under(under(location, "steps"), i), problems, audience=audience,
                   allowed=allowed) for i, s in enumerate(raw_steps)]
    name = data.get("name", key)
    return Track(key=key, name=str(name), audience=str(audience), stage_roles=stage_roles,
                 steps=tuple(s for s in steps if s is not None), priority=priority,
                 expires_seconds=expires, source=source)


def _autoresponder(value: Any, location: str, problems: Problems) -> Autoresponder | None:
    data = mapping(value, location, problems)
    if data is None:
        return None
    unknown_keys(data, ("key", "when", "send", "priority"), location, problems)
    key = valid_key(data.get("key"), under(location, "key"), problems)
    when = mapping(data.get("when"), under(location, "when"), problems) or {}
    unknown_keys(when, TRIGGERS, under(location, "when"), problems)
    if len(when) != 1:
        problems.add(under(location, "when"), "name one trigger: form_submitted or milestone")
        return None
    trigger = next(iter(when))
    match = when[trigger]
    if trigger == "milestone":
        match = valid_key(match, under(under(location, "when"), trigger), problems)
    elif match in ("any", None):
        match = None
    else:
        match = str(match).strip().lower()
    item, maturities = _send(data.get("send"), under(location, "send"), problems,
                             ("discovery", "evaluation", "decision"))
    priority = _integer(data.get("priority", PRIORITY_AUTORESPONDER),
                        under(location, "priority"), problems, low=1, high=99,
                        default=PRIORITY_AUTORESPONDER)
    return Autoresponder(key=key, trigger=trigger, match=match, item=item,
                         maturities=maturities, priority=priority)


def _unique(keys: list[str], location: str, what: str, problems: Problems) -> None:
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key and key in seen:
            problems.add(under(under(location, i), "key"), f"duplicate {what} key {key!r}")
        seen.add(key)


def parse_nurture(value: Any, problems: Problems) -> NurtureConfig:
    if value is None:
        return NurtureConfig()
    data = mapping(value, "nurture", problems)
    if data is None:
        return NurtureConfig()
    unknown_keys(data, ("cap", "consent", "newsletter", "profiling", "tracks",
                        "autoresponders"), "nurture", problems)
    cap = CapPolicy()
    if "cap" in data:
        body = mapping(data["cap"], "nurture.cap", problems) or {}
        unknown_keys(body, ("emails", "days"), "nurture.cap", problems)
        cap = CapPolicy(
            emails=_integer(body.get("emails", 3), "nurture.cap.emails", problems, low=0,
                            high=1000, default=3),
            days=number(body.get("days", 30), "nurture.cap.days", problems, positive=True,
                        default=30.0))
    consent = ConsentPolicy()
    if "consent" in data:
        body = mapping(data["consent"], "nurture.consent", problems) or {}
        unknown_keys(body, ("opt_in_required",), "nurture.consent", problems)
        raw = body.get("opt_in_required", [])
        consent = ConsentPolicy(opt_in_required=strings(raw, "nurture.consent.opt_in_required",
                                                        problems) if raw else ())
    news = mapping(data.get("newsletter", {}), "nurture.newsletter", problems) or {}
    unknown_keys(news, ("priority", "expires"), "nurture.newsletter", problems)
    profiling = mapping(data.get("profiling", {}), "nurture.profiling", problems) or {}
    unknown_keys(profiling, ("fields", "max_fields"), "nurture.profiling", problems)
    fields = NurtureConfig().profile_fields
    if "fields" in profiling:
        fields = strings(profiling["fields"], "nurture.profiling.fields", problems)
        for name in fields:
            if name not in PROFILE_FIELDS:
                problems.add("nurture.profiling.fields",
                             f"unknown field {name!r} (fields: {', '.join(PROFILE_FIELDS)})")
    tracks = [parse_track(t, under("nurture.tracks", i), problems)
              for i, t in enumerate(sequence(data.get("tracks", []), "nurture.tracks", problems))]
    found = [t for t in tracks if t is not None]
    _unique([t.key for t in found], "nurture.tracks", "track", problems)
    responders = [_autoresponder(a, under("nurture.autoresponders", i), problems)
                  for i, a in enumerate(sequence(data.get("autoresponders", []),
                                                 "nurture.autoresponders", problems))]
    kept = [a for a in responders if a is not None]
    _unique([a.key for a in kept], "nurture.autoresponders", "autoresponder", problems)
    return NurtureConfig(
        cap=cap, consent=consent,
        newsletter_priority=_integer(news.get("priority", PRIORITY_NEWSLETTER),
                                     "nurture.newsletter.priority", problems, low=1, high=99,
                                     default=PRIORITY_NEWSLETTER),
        newsletter_expires_seconds=parse_duration(news.get("expires", "7d"),
                                                  "nurture.newsletter.expires", problems),
        profile_fields=fields,
        profile_max_fields=_integer(profiling.get("max_fields", 3),
                                    "nurture.profiling.max_fields", problems, low=1, high=20,
                                    default=3),
        tracks=tuple(found), autoresponders=tuple(kept))
