"""The content library: add, change, archive, list and import items; the next best content
for one contact.

Items are found by their key. Archiving keeps an item (emails and forms may point at it) but
takes it out of lists and recommendations. A CSV import creates or updates one item per row:
every bad row is reported with its line number and field while the good rows import, and a row
is written whole or not at all.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from leadflow.domain.content import (
    FORMATS,
    MATURITIES,
    ContentItem,
    Profile,
    Recommendation,
    allowed_maturities,
    next_best,
    validate_item,
)
from leadflow.domain.errors import Conflict, InvalidInput, LeadflowError, NotFound
from leadflow.domain.ports import UnitOfWork
from leadflow.services.common import load_contact
from leadflow.services.context import Context

UPDATABLE = ("title", "url", "maturity", "format", "premium", "topics", "language", "summary",
             "archived")
MAX_TOPICS = 20
MAX_SUMMARY = 5000
MAX_RECOMMENDATIONS = 50
DEFAULT_LANGUAGE = "en"


def checked_item(item: ContentItem, *, prefix: str = "") -> ContentItem:
    """The item validated and normalised, within the library's limits."""
    item = validate_item(item, prefix=prefix)
    if len(item.topics) > MAX_TOPICS:
        raise InvalidInput(f"at most {MAX_TOPICS} topics", field=f"{prefix}topics")
    if len(item.summary) > MAX_SUMMARY:
        raise InvalidInput(f"a summary is at most {MAX_SUMMARY} characters",
                           field=f"{prefix}summary")
    return item


def _load_item(uow: UnitOfWork, key: str) -> ContentItem:
    item = uow.content.get(key.strip().lower())
    if item is None:
        raise NotFound(f"no content item with key {key!r}", field="key")
    return item


def create_item(*, uow: UnitOfWork, ctx: Context, item: ContentItem) -> ContentItem:
    """Add an item to the library; its key must be new."""
    item = checked_item(replace(item, id=None, archived=False))
    with uow:
        existing = uow.content.get(item.key)
        if existing is not None:
            state = " (archived: update it with archived=false to bring it back)" \
                if existing.archived else ""
            raise Conflict(f"an item with the key {item.key!r} exists{state}", field="key")
        created = uow.content.add(item, ctx.clock.now())
        uow.commit()
    return created


def _changed(item: ContentItem, changes: Mapping[str, Any]) -> ContentItem:
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in UPDATABLE:
            raise InvalidInput(f"{name!r} cannot be changed (changeable: "
                               f"{', '.join(UPDATABLE)})", field=name)
        if value is None and name not in ("summary", "topics"):
            raise InvalidInput("give a value (null is not one)", field=name)
        if name == "topics":
            value = () if value is None else tuple(value)
        values[name] = "" if value is None else value
    return checked_item(replace(item, **values))


def update_item(*, uow: UnitOfWork, ctx: Context, key: str,
                changes: Mapping[str, Any]) -> ContentItem:
    """Change the fields given (topics are replaced as a whole)."""
    with uow:
        item = _load_item(uow, key)
        updated = _changed(item, changes)
        if updated != item:
            uow.content.save(updated, ctx.clock.now())
            uow.commit()
    return updated


def archive_item(*, uow: UnitOfWork, ctx: Context, key: str) -> ContentItem:
    """Take an item out of lists and recommendations; emails and forms keep their link."""
    return update_item(uow=uow, ctx=ctx, key=key, changes={"archived": True})


def get_item(*, uow: UnitOfWork, key: str) -> ContentItem:
    with uow:
        return _load_item(uow, key)


@dataclass(frozen=True)
class ContentPage:
    items: list[ContentItem]
    total: int


def _choice(value: str | None, allowed: Sequence[str], name: str) -> str | None:
    if value is None or not value.strip():
        return None
    clean = value.strip().lower().replace(" ", "_")
    if clean not in allowed:
        raise InvalidInput(f"{name} is one of {', '.join(allowed)}, got {value!r}", field=name)
    return clean


def list_items(*, uow: UnitOfWork, maturity: str | None = None, format: str | None = None,
               language: str | None = None, topic: str | None = None,
               include_archived: bool = False, limit: int = 50, offset: int = 0
               ) -> ContentPage:
    """Items by key, filtered, a page at a time, with how many match in all."""
    maturity = _choice(maturity, MATURITIES, "maturity")
    format = _choice(format, FORMATS, "format")
    with uow:
        # The library holds hundreds of items: one read gives the page and the total.
        found = uow.content.search(
            maturity=maturity, format=format, language=(language or "").strip().lower() or None,
            topic=(topic or "").strip().lower() or None, include_archived=include_archived,
            limit=10**9, offset=0)
    return ContentPage(items=found[offset:offset + limit], total=len(found))


# --- CSV import ---------------------------------------------------------------------------

CSV_REQUIRED = ("key", "title", "url", "maturity", "format")
CSV_OPTIONAL = ("premium", "topics", "language", "summary")
TOPIC_SEPARATORS = re.compile(r"[;|]")
TRUE = ("yes", "y", "true", "1", "x")
FALSE = ("no", "n", "false", "0", "")


@dataclass(frozen=True)
class RowIssue:
    line: int
    field: str | None
    reason: str


@dataclass
class ContentImport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    bad: list[RowIssue] = field(default_factory=list)


@dataclass(frozen=True)
class CsvRow:
    line: int
    values: dict[str, str]


def _premium(value: str) -> bool:
    text = value.strip().lower()
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise InvalidInput(f"expected yes or no, got {value!r}", field="premium")


def item_from_row(values: Mapping[str, str]) -> ContentItem:
    """One row as an item, checked; InvalidInput names the column at fault."""
    topics = tuple(t for t in TOPIC_SEPARATORS.split(values.get("topics", "")) if t.strip())
    return checked_item(ContentItem(
        key=values["key"], title=values["title"], url=values["url"],
        maturity=values["maturity"], format=values["format"],
        premium=_premium(values.get("premium", "")), topics=topics,
        language=values.get("language", "").strip() or DEFAULT_LANGUAGE,
        summary=values.get("summary", "")))


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each non-empty record with the line it starts on (the header is line 1)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    start = 1
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                yield start, record
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidInput(f"not a valid CSV file: {exc} (in the record that starts on this "
                           "line)", line=start) from None


def _header(first: tuple[int, list[str]] | None) -> list[str]:
    if first is None:
        raise InvalidInput("the file is empty: expected a header line with the columns "
                           f"{', '.join(CSV_REQUIRED + CSV_OPTIONAL)}", line=1)
    header = [name.strip().lower() for name in first[1]]
    known = CSV_REQUIRED + CSV_OPTIONAL
    for name in header:
        if name not in known:
            raise InvalidInput(f"unknown column {name!r} (columns: {', '.join(known)})",
                               field=name, line=first[0])
        if header.count(name) > 1:
            raise InvalidInput(f"the column {name!r} appears twice", field=name, line=first[0])
    missing = [name for name in CSV_REQUIRED if name not in header]
    if missing:
        raise InvalidInput(f"the header lacks the column(s) {', '.join(missing)}",
                           field=missing[0], line=first[0])
    return header


def read_content_csv(text: str) -> tuple[list[CsvRow], list[RowIssue]]:
    """The rows of a content CSV, and the rows that are not even rows (a wrong number of
    fields). A file that is not CSV, or whose header is wrong, is refused whole."""
    records = _records(text)
    header = _header(next(records, None))
    rows: list[CsvRow] = []
    issues: list[RowIssue] = []
    for line, record in records:
        if len(record) != len(header):
            issues.append(RowIssue(line, None, f"expected {len(header)} fields as in the "
                                               f"header, found {len(record)}"))
        else:
            rows.append(CsvRow(line, dict(zip(header, record, strict=True))))
    return rows, issues


def _planned(rows: Sequence[CsvRow], report: ContentImport) -> list[tuple[int, ContentItem]]:
    """Each good row's item; a key seen on an earlier line makes the later row bad."""
    first_line: dict[str, int] = {}
    out: list[tuple[int, ContentItem]] = []
    for row in rows:
        try:
            item = item_from_row(row.values)
        except LeadflowError as exc:
            given = row.values.get(exc.field or "")
            shown = f" (got {given!r})" if given else ""
            report.bad.append(RowIssue(row.line, exc.field, exc.message + shown))
            continue
        if item.key in first_line:
            report.bad.append(RowIssue(row.line, "key", f"the key {item.key!r} is also on "
                                                        f"line {first_line[item.key]}"))
            continue
        first_line[item.key] = row.line
        out.append((row.line, item))
    return out


def _store(uow: UnitOfWork, item: ContentItem, now: float, report: ContentImport) -> None:
    existing = uow.content.get(item.key)
    if existing is None:
        uow.content.add(item, now)
        report.created += 1
        return
    # An archived item stays archived: importing the catalogue again does not revive it.
    updated = replace(item, id=existing.id, archived=existing.archived)
    if updated == existing:
        report.unchanged += 1
    else:
        uow.content.save(updated, now)
        report.updated += 1


def import_items(*, uow: UnitOfWork, ctx: Context, text: str) -> ContentImport:
    """Create or update one item per CSV row (columns key, title, url, maturity, format and
    optionally premium, topics — separated by ';' or '|' —, language, summary)."""
    rows, issues = read_content_csv(text)
    report = ContentImport(rows=len(rows) + len(issues), bad=list(issues))
    planned = _planned(rows, report)
    with uow:
        now = ctx.clock.now()
        for _, item in planned:
            _store(uow, item, now, report)
        uow.commit()
    report.bad.sort(key=lambda issue: issue.line)
    return report


# --- next best content --------------------------------------------------------------------

LANGUAGE_PREFIX = re.compile(r"^([a-z]{2})(?:[-_].*)?$")


@dataclass(frozen=True)
class NextContent:
    contact_id: int
    stage: str
    stage_role: str
    language: str
    maturities: tuple[str, ...]
    consumed: tuple[str, ...]  # keys of the items it consumed, latest first
    recommendations: list[Recommendation]

    @property
    def note(self) -> str | None:
        if not self.maturities:
            return (f"a contact in a {self.stage_role} stage is offered no library content "
                    "(customers get the newsletter only)")
        if not self.recommendations:
            return (f"no unseen {' or '.join(self.maturities)} item in {self.language} "
                    "is left in the library")
        return None


def contact_language(language: str | None) -> str:
    """The two-letter language of a contact (``fr-FR`` → ``fr``); English when unknown."""
    match = LANGUAGE_PREFIX.match((language or "").strip().lower())
    return match.group(1) if match else DEFAULT_LANGUAGE


def next_best_for(*, uow: UnitOfWork, ctx: Context, contact_id: int,
                  limit: int = 5) -> NextContent:
    """The unseen items that fit the contact's stage, language and topics, best first, each
    with the reasons it was picked."""
    if not 1 <= limit <= MAX_RECOMMENDATIONS:
        raise InvalidInput(f"limit is from 1 to {MAX_RECOMMENDATIONS}", field="limit")
    with uow:
        contact = load_contact(uow, contact_id)
        consumed = uow.content.consumed(contact_id)
        sent = uow.content.by_ids(uow.mail.sent_item_ids(contact_id))
        library = uow.content.active()
    role = ctx.config.role_of(contact.stage)
    language = contact_language(contact.language)
    profile = Profile(stage_role=role, language=language, consumed=consumed,
                      sent_keys=frozenset(i.key for i in sent.values()))
    return NextContent(
        contact_id=contact_id, stage=contact.stage, stage_role=role,
        language=language, maturities=allowed_maturities(role),
        consumed=tuple(c.item.key for c in consumed),
        recommendations=next_best(library, profile, limit=limit,
                                  default_language=DEFAULT_LANGUAGE))
