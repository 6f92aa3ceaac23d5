"""The install's own history as rows a conversion model learns from, and the contacts it
scores, set-based in SQL (SQLite and PostgreSQL). What an example is, and what is never read,
is in ``domain/predictive.py``.

Three statements per batch, whatever its size: the *base* (one row per contact: its cutoff,
and for training when it reached the target), the contact and account inputs (only the
columns and attributes that are inputs: an excluded one is never selected), and the behaviour
aggregates — per contact and event shape, over the events with ``ts`` ≤ the contact's cutoff
only, and without the shapes that are an opportunity or an outcome, or that the configuration
excludes: count, first and last time, count in the 30 days before the cutoff. Shapes are few;
Python turns each shape's aggregates into the behaviour features it feeds (its type, its
signals, its content maturity, premium).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.mapping import shape_from_row
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.evaluation import CATEGORY, MISSING, NUMBER, Feature, LabelledRows
from leadflow.domain.predictive import (
    DAY,
    OUTCOME_EVENT_PREFIXES,
    SNAPSHOT_DAYS,
    SNAPSHOTS,
    Examples,
    Target,
    outcome_signals,
)
from leadflow.domain.predictive_config import ACCOUNT_INPUTS, ATTRIBUTE_RE, CONTACT_INPUTS

RECENT_DAYS = 30
MIN_TYPE_CONTACTS = 5  # an event type becomes an input when this many examples have it
MAX_TYPES = 50
BATCH = 1000  # contacts per scoring statement
NUMBER_INPUTS = {"account.employees", "account.annual_revenue"}
# What a model never reads, whatever the configuration (listed with each training run).
NEVER_READ = (
    ("contact.stage", "the stage is what is predicted"),
    ("contact.owner_id", "owned only after the hand-off"),
    ("opportunities", "an opportunity is the outcome under way"),
    ("milestones", "recorded along the way to the outcome"),
    ("contact scores, grade, persona, temperature, qualification",
     "computed from data as they are now, not at the cutoff"),
    ("events after the cutoff", "not known yet at the cutoff"),
)


@dataclass(frozen=True)
class Inputs:
    """What to read: contact and account columns, attributes, and the names excluded."""

    contact: tuple[str, ...]
    account: tuple[str, ...]
    attributes: tuple[tuple[str, str], ...]  # (contact|account, attribute)
    excluded: tuple[str, ...]

    @property
    def column_names(self) -> list[str]:
        return ([f"contact.{c}" for c in self.contact] + [f"account.{c}" for c in self.account]
                + [f"{o}.attributes.{a}" for o, a in self.attributes])


def plan_inputs(config: LifecycleConfig, *, exclude: Sequence[str]) -> Inputs:
    """The contact and account inputs: fixed fields, the attributes the fit criteria and
    ``model.attributes`` name; minus what ``exclude`` names."""
    excluded = set(exclude)
    wanted: list[str] = []
    for persona in config.fit.personas:
        wanted += [c.field for c in persona.criteria]
    wanted += list(config.model.attributes)
    attributes: list[tuple[str, str]] = []
    for name in wanted:
        found = ATTRIBUTE_RE.match(name)
        if found and name not in excluded and (found.group(1), found.group(2)) not in attributes:
            attributes.append((found.group(1), found.group(2)))
    return Inputs(
        contact=tuple(c for c in CONTACT_INPUTS if f"contact.{c}" not in excluded),
        account=tuple(c for c in ACCOUNT_INPUTS if f"account.{c}" not in excluded),
        attributes=tuple(attributes), excluded=tuple(exclude))


# ------------------------------------------------------------------------- event shapes


@dataclass(frozen=True)
class Shapes:
    feeds: dict[int, tuple[str, ...]]  # kept shape id → the behaviour features it adds to
    dropped: tuple[int, ...]  # shapes whose events are never read
    dropped_why: dict[str, str]  # event type → why its events are not read


def classify_shapes(conn: Connection, config: LifecycleConfig, *, exclude: Sequence[str]
                    ) -> Shapes:
    excluded = set(exclude)
    outcome = outcome_signals(config)
    feeds: dict[int, tuple[str, ...]] = {}
    dropped: list[int] = []
    why: dict[str, str] = {}
    for row in conn.execute(select(t.event_shapes)):
        shape = shape_from_row(row)
        signals = config.signals_for(shape)
        reason = None
        if shape.type.startswith(OUTCOME_EVENT_PREFIXES) or outcome.intersection(signals):
            reason = "an opportunity or its outcome"
        elif f"events.type.{shape.type}" in excluded:
            reason = "excluded (model.exclude)"
        elif any(f"events.signal.{s}" in excluded for s in signals):
            reason = "its signal is excluded (model.exclude)"
        if reason is not None:
            dropped.append(int(row.id))
            why.setdefault(shape.type, reason)
            continue
        names = [f"events.type.{shape.type}", *(f"events.signal.{s}" for s in signals)]
        if shape.content_stage:
            names.append(f"events.content.{shape.content_stage}")
        if shape.premium:
            names.append("events.premium")
        feeds[int(row.id)] = tuple(names)
    return Shapes(feeds=feeds, dropped=tuple(dropped), dropped_why=why)


# ------------------------------------------------------------------------- statements


def _lead_times(target: Target, ids: Sequence[int] | None = None) -> Any:
    sc = t.stage_changes.c
    query = (select(sc.contact_id, func.min(sc.at).label("lead_at"))
             .where(sc.to_stage.in_(target.lead_stages)).group_by(sc.contact_id))
    return query if ids is None else query.where(sc.contact_id.in_(list(ids)))


def _reached_times(target: Target, ids: Sequence[int] | None = None) -> Any:
    if target.kind == "milestone":
        m = t.milestones.c
        query = select(m.contact_id, m.reached_at).where(m.key == target.keys[0])
        return query if ids is None else query.where(m.contact_id.in_(list(ids)))
    sc = t.stage_changes.c
    query = (select(sc.contact_id, func.min(sc.at).label("reached_at"))
             .where(sc.to_stage.in_(target.keys)).group_by(sc.contact_id))
    return query if ids is None else query.where(sc.contact_id.in_(list(ids)))


def _side_stages(config: LifecycleConfig, *roles: str) -> list[str]:
    return [s.key for s in config.stages if s.role in roles]


def _snapshots() -> Any:
    return union_all(*(select(literal(k).label("k")) for k in range(SNAPSHOTS))).subquery("k")


def training_base(config: LifecycleConfig, target: Target, *, horizon_days: float,
                  now: float) -> Any:
    """(contact_id, k, cutoff, lead_at, reached_at) of every example whose horizon has
    passed: snapshot ``k`` of a contact is taken ``k`` × SNAPSHOT_DAYS after it became a lead,
    while it has not reached the target, nor left for an excluded or erased stage."""
    lead = _lead_times(target).subquery("lead")
    reached = _reached_times(target).subquery("reached")
    sc = t.stage_changes.c
    left = (select(sc.contact_id, func.min(sc.at).label("left_at"))
            .select_from(t.stage_changes.join(lead, lead.c.contact_id == sc.contact_id))
            .where(sc.to_stage.in_(_side_stages(config, "excluded", "erased")),
                   sc.at >= lead.c.lead_at)
            .group_by(sc.contact_id).subquery("left_for"))
    k = _snapshots()
    cutoff = lead.c.lead_at + k.c.k * (SNAPSHOT_DAYS * DAY)
    return (select(lead.c.contact_id, k.c.k, cutoff.label("cutoff"), lead.c.lead_at,
                   reached.c.reached_at)
            .select_from(lead.join(t.contacts, t.contacts.c.id == lead.c.contact_id)
                         .join(k, true())
                         .outerjoin(reached, reached.c.contact_id == lead.c.contact_id)
                         .outerjoin(left, left.c.contact_id == lead.c.contact_id))
            .where(cutoff + horizon_days * DAY <= now,
                   or_(reached.c.reached_at.is_(None), reached.c.reached_at > cutoff),
                   or_(left.c.left_at.is_(None), left.c.left_at > cutoff),
                   t.contacts.c.stage.not_in(_side_stages(config, "erased"))))


def scoring_base(target: Target, *, now: float, contact_ids: Sequence[int] | None = None
                 ) -> Any:
    """(contact_id, k = 0, cutoff = now, lead_at) of the contacts the model scores (among
    ``contact_ids``, or all): a lead or later, target not reached."""
    lead = _lead_times(target, contact_ids).subquery("lead")
    reached = _reached_times(target, contact_ids).subquery("reached")
    c = t.contacts.c
    query = (select(c.id.label("contact_id"), literal(0).label("k"),
                    cast(literal(now), Float).label("cutoff"),
                    func.coalesce(lead.c.lead_at, c.created_at).label("lead_at"))
             .select_from(t.contacts.outerjoin(lead, lead.c.contact_id == c.id)
                          .outerjoin(reached, reached.c.contact_id == c.id))
             .where(c.stage.in_(target.open_stages), reached.c.reached_at.is_(None)))
    if contact_ids is not None:
        query = query.where(c.id.in_(list(contact_ids)))
    return query


def _input_rows(conn: Connection, base: Any, inputs: Inputs) -> dict[int, dict[str, Any]]:
    c, a = t.contacts.c, t.accounts.c
    cols: list[Any] = [c.id, c.created_at]
    cols += [c[name].label(f"contact.{name}") for name in inputs.contact]
    cols += [a[name].label(f"account.{name}") for name in inputs.account]
    for owner, key in inputs.attributes:
        column = (c if owner == "contact" else a).attributes
        cols.append(column[key].as_string().label(f"{owner}.attributes.{key}"))
    who = select(base.c.contact_id).distinct().subquery("who")
    query = (select(*cols).select_from(
        who.join(t.contacts, t.contacts.c.id == who.c.contact_id)
        .outerjoin(t.accounts, t.accounts.c.id == c.account_id)))
    return {int(r[0]): dict(r._mapping) for r in conn.execute(query)}


Key = tuple[int, int]  # (contact id, snapshot)
Aggregate = tuple[int, int, float, float, int]  # shape, count, first, last, recent count


def _aggregates(conn: Connection, base: Any, shapes: Shapes) -> dict[Key, list[Aggregate]]:
    e = t.events.c
    recent = base.c.cutoff - RECENT_DAYS * DAY
    query = (select(e.contact_id, base.c.k, e.shape_id, func.count().label("n"),
                    func.min(e.ts).label("first"), func.max(e.ts).label("last"),
                    func.sum(case((e.ts > recent, 1), else_=0)).label("recent"))
             .select_from(t.events.join(base, base.c.contact_id == e.contact_id))
             .where(e.ts <= base.c.cutoff)
             .group_by(e.contact_id, base.c.k, e.shape_id))
    if shapes.dropped:
        query = query.where(e.shape_id.not_in(list(shapes.dropped)))
    out: dict[Key, list[Aggregate]] = defaultdict(list)
    for cid, k, sid, n, first, last, recent_n in conn.execute(query):
        out[(int(cid), int(k))].append((int(sid), int(n), float(first), float(last),
                                        int(recent_n or 0)))
    return out


# ------------------------------------------------------------------------- rows


def _category(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip()
    return text if text else MISSING


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _behaviour(events: list[Aggregate], shapes: Shapes,
               cutoff: float) -> dict[str, float | None]:
    out: dict[str, float | None] = defaultdict(float)
    first = last = None
    total = recent = 0
    for sid, n, lo, hi, recent_n in events:
        feeds = shapes.feeds.get(sid)
        if feeds is None:
            continue
        for name in feeds:
            out[name] = (out[name] or 0.0) + n
        total += n
        recent += recent_n
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
    out["events.total"] = float(total)
    out["events.last_30d"] = float(recent)
    out["events.days_since_first"] = None if first is None else (cutoff - first) / DAY
    out["events.days_since_last"] = None if last is None else (cutoff - last) / DAY
    return out


FIXED_BEHAVIOUR = ("lead.days_after_creation", "lead.days_as_lead", "events.total",
                   "events.last_30d", "events.days_since_first", "events.days_since_last")


def _features_of(config: LifecycleConfig, inputs: Inputs, shapes: Shapes,
                 found: dict[int, dict[str, Any]], behaviour: dict[Key, dict[str, float | None]]
                 ) -> tuple[Feature, ...]:
    """The inputs a training run learns from: contact and account fields, attributes (a
    number when every value present is one), the fixed behaviour figures, every signal that
    is read, and the event types and content maturities enough examples have."""
    features: list[Feature] = []
    for name in inputs.column_names:
        if name in NUMBER_INPUTS:
            kind = NUMBER
        elif ".attributes." in name:
            present = [v for r in found.values() if (v := r.get(name)) is not None]
            kind = NUMBER if present and all(_number(v) is not None for v in present) \
                else CATEGORY
        else:
            kind = CATEGORY
        features.append(Feature(name, kind, name))
    excluded = set(inputs.excluded)
    outcome = outcome_signals(config)
    features += [Feature(n, NUMBER, "stage_changes" if n.startswith("lead.") else "events")
                 for n in FIXED_BEHAVIOUR if n not in excluded]
    features += [Feature(f"events.signal.{s}", NUMBER, "events") for s in sorted(config.signals)
                 if s not in outcome and f"events.signal.{s}" not in excluded]
    having: dict[str, int] = defaultdict(int)
    for values in behaviour.values():
        for name, value in values.items():
            if value and name.startswith(("events.type.", "events.content.", "events.premium")):
                having[name] += 1
    common = sorted((n for n, k in having.items() if k >= MIN_TYPE_CONTACTS and n not in excluded),
                    key=lambda n: (-having[n], n))
    types = sorted(n for n in common if n.startswith("events.type."))[:MAX_TYPES]
    others = sorted(n for n in common if not n.startswith("events.type."))
    features += [Feature(n, NUMBER, "events") for n in types + others]
    return tuple(features)


def _columns(features: Sequence[Feature], keys: Sequence[Key], found: dict[int, dict[str, Any]],
             behaviour: dict[Key, dict[str, float | None]]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {f.name: [] for f in features}
    for key in keys:
        row = found.get(key[0], {})
        moved = behaviour[key]
        for f in features:
            if f.source in ("events", "stage_changes"):
                value: Any = moved.get(f.name) if f.name.startswith(
                    ("events.days_since", "lead.")) else moved.get(f.name, 0.0)
                columns[f.name].append(value)
            elif f.kind == NUMBER:
                columns[f.name].append(_number(row.get(f.name)))
            else:
                columns[f.name].append(_category(row.get(f.name)))
    return columns


def _gather(conn: Connection, base_query: Any, inputs: Inputs, shapes: Shapes
            ) -> tuple[list[Any], dict[int, dict[str, Any]], dict[Key, dict[str, float | None]]]:
    base_rows = list(conn.execute(base_query))
    base = base_query.cte("base")
    found = _input_rows(conn, base, inputs)
    events = _aggregates(conn, base, shapes)
    behaviour: dict[Key, dict[str, float | None]] = {}
    for r in base_rows:
        key = (int(r.contact_id), int(r.k))
        cutoff, lead_at = float(r.cutoff), float(r.lead_at)
        values = _behaviour(events.get(key, []), shapes, cutoff)
        created = found.get(key[0], {}).get("created_at")
        values["lead.days_after_creation"] = None if created is None else \
            max(0.0, (lead_at - float(created)) / DAY)
        values["lead.days_as_lead"] = max(0.0, (cutoff - lead_at) / DAY)
        behaviour[key] = values
    return base_rows, found, behaviour


def training_rows(conn: Connection, *, config: LifecycleConfig, target: Target,
                  horizon_days: float, now: float, exclude: Sequence[str]) -> Examples:
    """Every example whose horizon has passed, labelled, its inputs as of its cutoff; in
    order of cutoff."""
    inputs = plan_inputs(config, exclude=exclude)
    shapes = classify_shapes(conn, config, exclude=exclude)
    query = training_base(config, target, horizon_days=horizon_days, now=now)
    base_rows, found, behaviour = _gather(conn, query, inputs, shapes)
    base_rows.sort(key=lambda r: (float(r.cutoff), int(r.contact_id)))
    keys = [(int(r.contact_id), int(r.k)) for r in base_rows]
    features = _features_of(config, inputs, shapes, found, behaviour)
    horizon = horizon_days * DAY
    labels = [r.reached_at is not None and float(r.reached_at) <= float(r.cutoff) + horizon
              for r in base_rows]
    rows = LabelledRows(features=features, columns=_columns(features, keys, found, behaviour),
                        labels=labels, times=[float(r.cutoff) for r in base_rows],
                        lines=[cid for cid, _ in keys])
    not_read = [*NEVER_READ, *((n, "excluded (model.exclude)") for n in inputs.excluded)]
    not_read += [(f"events of type {k}", v) for k, v in sorted(shapes.dropped_why.items())]
    return Examples(rows=rows, columns_read=tuple(inputs.column_names),
                    not_read=tuple(not_read), lead_at=[float(r.lead_at) for r in base_rows])


def scoring_rows(conn: Connection, *, config: LifecycleConfig, target: Target,
                 features: Sequence[Feature], excluded: Sequence[str], now: float,
                 contact_ids: Sequence[int] | None) -> LabelledRows:
    """The model's inputs, as of now, of the contacts it scores among ``contact_ids``
    (all of them when None); lines: their ids. Only the model's own inputs are read."""
    names = {f.name for f in features}
    full = plan_inputs(config, exclude=excluded)
    inputs = Inputs(contact=tuple(c for c in full.contact if f"contact.{c}" in names),
                    account=tuple(c for c in full.account if f"account.{c}" in names),
                    attributes=tuple((o, k) for o, k in _attributes(names)),
                    excluded=full.excluded)
    shapes = classify_shapes(conn, config, exclude=excluded)
    query = scoring_base(target, now=now, contact_ids=contact_ids)
    base_rows, found, behaviour = _gather(conn, query, inputs, shapes)
    keys = sorted((int(r.contact_id), int(r.k)) for r in base_rows)
    n = len(keys)
    return LabelledRows(features=tuple(features),
                        columns=_columns(features, keys, found, behaviour),
                        labels=[False] * n, times=[now] * n, lines=[cid for cid, _ in keys])


def _attributes(names: set[str]) -> Iterator[tuple[str, str]]:
    for name in sorted(names):
        found = ATTRIBUTE_RE.match(name)
        if found:
            yield found.group(1), found.group(2)


def scorable_ids(conn: Connection, *, target: Target, after: int, limit: int) -> list[int]:
    """The next ``limit`` ids of contacts the model scores, above ``after`` (in id order)."""
    base = scoring_base(target, now=0.0).subquery()
    query = (select(base.c.contact_id).where(base.c.contact_id > after)
             .order_by(base.c.contact_id).limit(limit))
    return [int(r[0]) for r in conn.execute(query)]


def changed_ids(conn: Connection, *, since: float) -> list[int]:
    """Contacts changed (events, attributes, stage) or whose account changed after
    ``since``."""
    c, a = t.contacts.c, t.accounts.c
    own = select(c.id).where(c.updated_at > since)
    via_account = select(c.id).select_from(t.contacts.join(
        t.accounts, and_(a.id == c.account_id, a.updated_at > since)))
    return sorted({int(r[0]) for r in conn.execute(own.union(via_account))})
