"""A labelled CSV file, read through an import mapping, as rows a model can learn from.

Features are the mapping's attributes, account and contact fields (one per column; text and
yes/no values are categories, numbers numbers, and a date is a day count plus a weekday).
Never read, and listed in ``LabelledFile.not_read`` with the reason:

- what the mapping's ``model.leaking`` or ``model.ignore`` names, or ``exclude`` adds (an
  attribute or a column; a column excludes every field read from it);
- the label's column, and the identifiers (``id`` and the join key);
- when the label is "the row has a match in the joined file": every column that only the
  joined file has, since it exists exactly for the positives.

Only the columns a feature, the label, the time or the join needs are taken from each record;
the others are dropped before any value is converted (``columns_read`` lists the kept ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from leadflow.adapters.config_file import read_yaml
from leadflow.adapters.csv_source import open_csv
from leadflow.domain.errors import ConfigInvalid, ConfigProblem, InvalidInput
from leadflow.domain.evaluation import CATEGORY, MISSING, NUMBER, Feature, LabelledRows
from leadflow.services.import_mapping import ImportMapping, LabelSpec, ValueSpec
from leadflow.services.import_values import RowReader, zone

DAY = 86_400.0
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class NotRead:
    name: str  # the attribute (or contact_/account_ field)
    column: str | None
    reason: str


@dataclass(frozen=True)
class LabelledFile:
    rows: LabelledRows
    label: str  # where the label comes from, in words
    time: str | None  # the column that orders a time split, if the mapping has one
    columns_read: tuple[str, ...]
    not_read: tuple[NotRead, ...]
    skipped: tuple[tuple[int, str], ...]  # (line, why) of the rows left out


def read_labelled_csv(path: Path, mapping: ImportMapping, *, label: str | None = None,
                      exclude: Sequence[str] = (), join_path: Path | None = None
                      ) -> LabelledFile:
    """The file's rows as features and labels; InvalidInput names what is wrong."""
    label_spec, label_words = _label(mapping, label)
    uses_join = label_spec.joined
    base = replace(mapping, contact={}, attributes={}, account={}, consent={}, events=(),
                   stage=replace(mapping.stage, at=None),
                   label=label_spec if uses_join else None,
                   join=mapping.join if uses_join else None, model=None)
    header = open_csv(path, base, join_path=join_path).header
    if label_spec.value is not None and label_spec.value.column not in header:
        raise InvalidInput(f"unknown label column {label!r}: {path.name} has no such column, "
                           f"and it is not the label of the mapping {mapping.source}",
                           field="label")
    specs, not_read = _features(mapping, label_spec, exclude, header, joined_label=uses_join)
    time_spec = mapping.stage.at
    if time_spec is not None and any(n.column == time_spec.column for n in not_read
                                     if n.reason != "identifier"):
        time_spec = None  # the time column may not be read: no time-ordered split
    reduced = replace(base, attributes={name: spec for name, spec, _ in specs}, label=label_spec,
                      stage=replace(mapping.stage, at=time_spec))
    source = open_csv(path, reduced, join_path=join_path)
    wanted = set(reduced.columns())
    tz = zone(mapping.timezone)
    features = _feature_list(specs)
    columns: dict[str, list[Any]] = {f.name: [] for f in features}
    labels: list[bool] = []
    times: list[float | None] = []
    lines: list[int] = []
    skipped: list[tuple[int, str]] = []
    for row in source.rows():
        if row.problem is not None:
            skipped.append((row.line, row.problem))
            continue
        values = {k: v for k, v in row.values.items() if k in wanted}  # nothing else is read
        reader = RowReader(values, missing=mapping.missing, tz=tz, joined=row.joined)
        try:
            outcome = reader.joined if label_spec.joined else \
                reader.read(label_spec.value) if label_spec.value else None
            if outcome is None:
                skipped.append((row.line, "no label"))
                continue
            converted = [(f, v) for name, spec, kind in specs
                         for f, v in _values(name, kind, reader.read(spec))]
            when = _timestamp(reader.read(time_spec), tz) if time_spec else None
        except InvalidInput as exc:
            skipped.append((row.line, str(exc)))
            continue
        for name, value in converted:
            columns[name].append(value)
        labels.append(bool(outcome))
        times.append(when)
        lines.append(row.line)
    return LabelledFile(
        rows=LabelledRows(features=tuple(features), columns=columns, labels=labels,
                          times=times, lines=lines),
        label=label_words, time=time_spec.column if time_spec else None,
        columns_read=tuple(sorted(wanted)), not_read=tuple(not_read), skipped=tuple(skipped))


def _label(mapping: ImportMapping, label: str | None) -> tuple[LabelSpec, str]:
    own = mapping.label
    if label is None:
        if own is None:
            raise InvalidInput(f"the mapping {mapping.source} has no label: name the label "
                               "column with --label", field="label")
        label = own.attribute
    if own is not None and (label == own.attribute
                            or (own.value is not None and label == own.value.column)):
        if own.joined:
            assert mapping.join is not None
            return own, (f"{own.attribute}: the row's {mapping.join.key} is in "
                         f"{Path(mapping.join.file).name}")
        assert own.value is not None
        return own, f"{own.attribute}: column {own.value.column!r}"
    spec = ValueSpec(where="--label", column=label, type="bool")
    return (LabelSpec(where="--label", attribute=label, value=spec),
            f"column {label!r} (yes/no, true/false or 1/0)")


def _features(mapping: ImportMapping, label: LabelSpec, exclude: Sequence[str],
              header: list[str], *, joined_label: bool
              ) -> tuple[list[tuple[str, ValueSpec, str]], list[NotRead]]:
    groups = [("", mapping.attributes), ("account_", mapping.account),
              ("contact_", mapping.contact)]
    fields = {prefix + name: (name, spec) for prefix, group in groups
              for name, spec in group.items()}
    known = {*fields, *(n for _, (n, _s) in fields.items()), *mapping.columns(), *header}
    for name in exclude:
        if name not in known:
            raise InvalidInput(f"cannot exclude {name!r}: neither an attribute of the mapping "
                               f"{mapping.source} nor a column of the file", field="exclude")
    model = mapping.model
    reasons: dict[str, str] = {}
    for names, reason in ((model.leaking if model else (), "leaking (mapping)"),
                          (model.ignore if model else (), "ignored (mapping)"),
                          (exclude, "excluded")):
        for name in names:
            reasons.setdefault(name, reason)
    ids = {c for c in (mapping.id.column if mapping.id else None,
                       mapping.join.key if mapping.join else None) if c}
    label_column = label.value.column if label.value else None
    out: list[tuple[str, ValueSpec, str]] = []
    not_read: list[NotRead] = []
    used: set[str] = set()
    for key, (name, spec) in fields.items():
        column = spec.column
        why = reasons.get(key) or reasons.get(name) or (reasons.get(column) if column else None)
        if why is None:
            if column is None:
                why = "a constant"
            elif column == label_column:
                why = "the label"
            elif column in ids:
                why = "identifier"
            elif joined_label and column not in header:
                why = "only in the joined file, which is the label"
            elif column in used:
                why = "same column as another feature"
        if why is not None:
            not_read.append(NotRead(name=key, column=column, reason=why))
            continue
        assert column is not None
        used.add(column)
        kind = NUMBER if spec.type in ("int", "float") else \
            "moment" if spec.type in ("date", "datetime") else CATEGORY
        out.append((key, spec, kind))
    return out, not_read


def _feature_list(specs: list[tuple[str, ValueSpec, str]]) -> list[Feature]:
    out: list[Feature] = []
    for name, spec, kind in specs:
        source = spec.column or name
        if kind == "moment":
            out += [Feature(f"{name}_days", NUMBER, source),
                    Feature(f"{name}_weekday", CATEGORY, source)]
        else:
            out.append(Feature(name, kind, source))
    return out


def _values(name: str, kind: str, value: Any) -> list[tuple[str, Any]]:
    if kind == "moment":
        if value is None:
            return [(f"{name}_days", None), (f"{name}_weekday", MISSING)]
        day = value.date() if isinstance(value, datetime) else value
        return [(f"{name}_days", float(day.toordinal())), (f"{name}_weekday",
                                                            WEEKDAYS[day.weekday()])]
    if kind == NUMBER:
        return [(name, None if value is None else float(value))]
    if value is None:
        return [(name, MISSING)]
    if isinstance(value, bool):
        return [(name, "yes" if value else "no")]
    return [(name, str(value))]


def _timestamp(value: Any, tz: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), tzinfo=tz or UTC).timestamp()
    raise InvalidInput(f"expected a date, got {value!r}", field="time")


def load_exclusions(path: Path) -> tuple[str, ...]:
    """The names listed in an exclusion file: ``exclude: [Tags, lead_quality, ...]``
    (attributes of the mapping or columns of the file)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the exclusion file {path}: {exc}",
                           field="exclude-config") from None
    doc = read_yaml(text, source=source)
    data = doc.data
    problems: list[ConfigProblem] = []
    names: list[str] = []
    if not isinstance(data, dict) or set(data) != {"exclude"}:
        problems.append(ConfigProblem("(top)", "expected one key, exclude: a list of "
                                      "attributes or columns"))
    else:
        items = data["exclude"] if isinstance(data["exclude"], list) else [data["exclude"]]
        for i, item in enumerate(items):
            if isinstance(item, str) and item.strip():
                names.append(item)
            else:
                problems.append(ConfigProblem(f"exclude[{i}]", f"expected a name, got {item!r}"))
    if problems or doc.duplicates:
        raise ConfigInvalid(source, doc.located(problems))
    return tuple(names)
