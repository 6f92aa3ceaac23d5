"""The predictive part of the lifecycle configuration (its ``model:`` section): what the
conversion model predicts, over which horizon, and which inputs it must never read.

```yaml
model:
  target: customer            # a main stage after the interest stage, or milestone:<key>
  horizon_days: 90            # converted within this many days of becoming a lead
  exclude: [contact.account_role, events.type.call_answered]
  attributes: [contact.attributes.budget]   # more attributes to read (fit criteria's are)
```

Input names: ``contact.<field>``, ``account.<field>``, ``contact.attributes.<name>``,
``account.attributes.<name>``, ``events.<...>`` (a behaviour feature: ``events.type.<type>``,
``events.signal.<signal>``, ``events.content.<maturity>``, ``events.premium``,
``events.total``, ``events.last_30d``, ``events.days_since_first``,
``events.days_since_last``) and ``lead.days_after_creation``. An excluded contact or account
field is never selected from the database; an excluded event type or signal takes its events
out of every behaviour figure (totals included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from leadflow.domain.config_parsing import Problems, mapping, number, sequence, under, unknown_keys

CONTACT_INPUTS = ("seniority", "account_role", "country", "region", "language", "source")
ACCOUNT_INPUTS = ("industry", "employees", "country", "annual_revenue")
# Fields a name may cite (a few are never inputs, such as email: excluding them is harmless).
CONTACT_NAMES = ("email", "email_domain", "phone", "first_name", "last_name", "title",
                 *CONTACT_INPUTS)
ACCOUNT_NAMES = ("name", "domain", *ACCOUNT_INPUTS)
EVENT_FIXED = ("events.premium", "events.total", "events.last_30d", "events.days_since_first",
               "events.days_since_last", "lead.days_after_creation")
NAME_PART = r"[A-Za-z0-9_][A-Za-z0-9_.:\-]*"
EVENT_FAMILY_RE = re.compile(rf"^events\.(type|signal|content)\.({NAME_PART})$")
ATTRIBUTE_RE = re.compile(rf"^(contact|account)\.attributes\.({NAME_PART})$")
MILESTONE_PREFIX = "milestone:"


@dataclass(frozen=True)
class ModelConfig:
    target: str | None = None  # a stage key, or milestone:<key>; None: the won stage
    horizon_days: float = 90.0
    exclude: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()

    def excludes(self, name: str) -> bool:
        return name in self.exclude


def input_problem(name: str, signals: set[str]) -> str | None:
    """Why ``name`` is not an input name (None: it is one)."""
    if name in EVENT_FIXED:
        return None
    found = EVENT_FAMILY_RE.match(name)
    if found:
        if found.group(1) == "signal" and found.group(2) not in signals:
            return f"unknown signal {found.group(2)!r} (defined: {', '.join(sorted(signals))})"
        return None
    if ATTRIBUTE_RE.match(name):
        return None
    owner, _, field = name.partition(".")
    if (owner == "contact" and field in CONTACT_NAMES) or (
            owner == "account" and field in ACCOUNT_NAMES):
        return None
    return (f"unknown input {name!r}: use contact.<{'|'.join(CONTACT_NAMES)}>, "
            f"account.<{'|'.join(ACCOUNT_NAMES)}>, <contact|account>.attributes.<name>, "
            "events.type.<type>, events.signal.<signal>, events.content.<maturity> or one of "
            f"{', '.join(EVENT_FIXED)}")


def _names(value: Any, location: str, problems: Problems, signals: set[str]) -> tuple[str, ...]:
    out: list[str] = []
    for i, item in enumerate(sequence(value, location, problems)):
        here = under(location, i)
        if not isinstance(item, str) or not item.strip():
            problems.add(here, f"expected an input name, got {item!r}")
            continue
        why = input_problem(item.strip(), signals)
        if why is not None:
            problems.add(here, why)
            continue
        if item.strip() not in out:
            out.append(item.strip())
    return tuple(out)


def parse_model(value: Any, problems: Problems, *, signals: set[str], stages: dict[str, int],
                milestones: set[str]) -> ModelConfig:
    """``stages``: the main stages a target may name, with their rank (only those after the
    interest stage); ``milestones``: every milestone key."""
    if value is None:
        return ModelConfig()
    data = mapping(value, "model", problems)
    if data is None:
        return ModelConfig()
    unknown_keys(data, ("target", "horizon_days", "exclude", "attributes"), "model", problems)
    target = data.get("target")
    if target is not None:
        problem = target_problem(str(target), stages=stages, milestones=milestones) \
            if isinstance(target, str) else f"expected a stage key or milestone:<key>, got " \
                                            f"{target!r}"
        if problem is not None:
            problems.add("model.target", problem)
            target = None
    horizon = number(data.get("horizon_days", 90), "model.horizon_days", problems,
                     positive=True, default=90.0)
    exclude = _names(data.get("exclude", []), "model.exclude", problems, signals)
    attributes = _names(data.get("attributes", []), "model.attributes", problems, signals)
    for i, name in enumerate(attributes):
        if not ATTRIBUTE_RE.match(name):
            problems.add(under("model.attributes", i),
                         f"expected <contact|account>.attributes.<name>, got {name!r}")
    return ModelConfig(target=target, horizon_days=horizon, exclude=exclude,
                       attributes=tuple(a for a in attributes if ATTRIBUTE_RE.match(a)))


def target_problem(target: str, *, stages: dict[str, int], milestones: set[str]) -> str | None:
    """Why ``target`` cannot be predicted (None: it can)."""
    if target.startswith(MILESTONE_PREFIX):
        key = target.removeprefix(MILESTONE_PREFIX)
        if key not in milestones:
            return f"unknown milestone {key!r} (defined: {', '.join(sorted(milestones))})"
        return None
    if target not in stages:
        return (f"unknown target {target!r}: a main stage after the interest stage "
                f"({', '.join(stages)}) or milestone:<key>")
    return None
