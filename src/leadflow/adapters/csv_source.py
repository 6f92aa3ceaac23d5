"""Reading the CSV file of an import (and the file joined to it) into numbered rows.

The whole file is checked before anything is written: a file that is not CSV text, or whose
header lacks a mapped column, is refused with a clear message. A record whose number of fields
differs from the header is one bad row, reported with its line, not a refused file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from leadflow.domain.errors import InvalidInput
from leadflow.services.import_mapping import ImportMapping
from leadflow.services.import_rows import SourceRow


@dataclass
class CsvSource:
    """A checked file, ready to give its rows (joined with the second file, if any)."""

    path: Path
    mapping: ImportMapping
    header: list[str]
    total: int
    joined: dict[str, dict[str, str]] = field(default_factory=dict)

    def rows(self) -> Iterator[SourceRow]:
        join = self.mapping.join
        records = _records(self.path, self.mapping)
        next(records, None)  # the header
        for line, record in records:
            if len(record) != len(self.header):
                yield SourceRow(line=line, values={}, problem=(
                    f"expected {len(self.header)} fields as in the header, found {len(record)}"))
                continue
            values = dict(zip(self.header, record, strict=True))
            match = self.joined.get(values[join.key].strip()) if join else None
            if match:
                values = {**match, **values}
            yield SourceRow(line=line, values=values, joined=match is not None)


def open_csv(path: Path, mapping: ImportMapping, *, join_path: Path | None = None) -> CsvSource:
    """Check the file (and the joined one) against the mapping; count its rows."""
    header, total = _scan(path, mapping)
    known = set(header)
    joined: dict[str, dict[str, str]] = {}
    if mapping.join is not None:
        if mapping.join.key not in header:
            raise InvalidInput(f"{path.name}: the header lacks the join key column "
                               f"{mapping.join.key!r} ({mapping.join.where})", line=1)
        other = join_path or _beside(path, mapping.join.file)
        if not other.is_file():
            raise InvalidInput(f"the file to join, {other}, is missing (the mapping's "
                               f"{mapping.join.where} names it beside {path.name})",
                               field="join.file")
        joined, join_header = _load_join(other, mapping)
        known |= set(join_header)
    lacking = [f"{column!r} ({where})" for column, where in mapping.columns().items()
               if column not in known]
    if lacking:
        raise InvalidInput(f"{path.name}: the header lacks mapped column(s) "
                           f"{', '.join(lacking)} of {mapping.source}", line=1)
    return CsvSource(path=path, mapping=mapping, header=header, total=total, joined=joined)


def _beside(path: Path, name: str) -> Path:
    other = Path(name)
    return other if other.is_absolute() else path.parent / other


def _records(path: Path, mapping: ImportMapping) -> Iterator[tuple[int, list[str]]]:
    """Each record with the physical line it starts on (the header is line 1)."""
    encoding = "utf-8-sig" if mapping.encoding.lower().replace("_", "-") == "utf-8" \
        else mapping.encoding
    try:
        with path.open(encoding=encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=mapping.delimiter, strict=True)
            start = 1
            try:
                for record in reader:
                    if record:
                        yield start, record
                    start = reader.line_num + 1
            except csv.Error as exc:
                raise InvalidInput(f"{path.name} is not a valid CSV file: {exc} (in the record "
                                   f"that starts on this line)", line=start) from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name} is not {mapping.encoding} text: byte {exc.start} "
                           "cannot be read; is it really a CSV file?") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}", field="file") from None


def _scan(path: Path, mapping: ImportMapping) -> tuple[list[str], int]:
    records = _records(path, mapping)
    first = next(records, None)
    if first is None:
        raise InvalidInput(f"{path.name} is empty: expected a header line", line=1)
    header = [name.strip() for name in first[1]]
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InvalidInput(f"{path.name}: the column {name!r} appears twice in the header",
                               line=first[0])
        seen.add(name)
    return header, sum(1 for _ in records)


def _load_join(path: Path, mapping: ImportMapping) -> tuple[dict[str, dict[str, str]],
                                                             list[str]]:
    assert mapping.join is not None
    records = _records(path, mapping)
    first = next(records, None)
    if first is None:
        raise InvalidInput(f"{path.name} (joined) is empty: expected a header line", line=1)
    header = [name.strip() for name in first[1]]
    key = mapping.join.file_key
    if key not in header:
        raise InvalidInput(f"{path.name} (joined): the header lacks the key column {key!r} "
                           f"({mapping.join.where})", line=1)
    out: dict[str, dict[str, str]] = {}
    lines: dict[str, int] = {}
    for line, record in records:
        if len(record) != len(header):
            raise InvalidInput(f"{path.name} (joined): expected {len(header)} fields as in "
                               f"the header, found {len(record)}", line=line)
        values = dict(zip(header, record, strict=True))
        value = values[key].strip()
        if not value:
            continue
        if value in out:
            raise InvalidInput(f"{path.name} (joined): key {value!r} also on line "
                               f"{lines[value]}; a row may match only one", line=line)
        out[value], lines[value] = values, line
    return out, header
