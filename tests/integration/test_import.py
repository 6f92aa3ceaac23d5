"""Importing CSV files with a mapping: the real X Education and Olist files, bad rows, bad files,
bad mappings, re-imports and erased people — on SQLite and on PostgreSQL.

The full X Education file is imported once per database (module-scoped, in a database of its
own); the detailed checks use small files.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import ColumnElement, Table, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.event import listen

from leadflow.adapters.csv_mapping import load_mapping, parse_mapping_text
from leadflow.adapters.csv_source import open_csv
from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.errors import ConfigInvalid, InvalidInput
from leadflow.domain.model import Contact
from leadflow.domain.ports import NullProgress
from leadflow.services import importing
from leadflow.services.contacts import ContactIn, create_contact
from leadflow.services.importing import ImportReport, import_contacts, import_stage
from leadflow.services.moves import erase
from tests.conftest import PG_URL, FakeClock

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
X_EDUCATION = DATASETS / "x_education_leads" / "Leads.csv"
OLIST_MQL = DATASETS / "olist_marketing_funnel" / "olist_marketing_qualified_leads_dataset.csv"
OLIST_DEALS = DATASETS / "olist_marketing_funnel" / "olist_closed_deals_dataset.csv"


def need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared datasets sit beside the repository only "
                    "in the project's workspace and CI")
    return path




def run_import(app: App, path: Path, mapping: str, *, join: Path | None = None,
               chunk_size: int = 500) -> ImportReport:
    spec = load_mapping(mapping)
    source = open_csv(path, spec, join_path=join)
    return import_contacts(uow_factory=app.uow, ctx=app.ctx, mapping=spec, rows=source.rows(),
                           total=source.total, progress=NullProgress(), chunk_size=chunk_size)


def count(app: App, table: Table, *where: ColumnElement[bool]) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def count_events(app: App, event_type: str) -> int:
    with app.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(t.events)
            .join(t.event_shapes, t.event_shapes.c.id == t.events.c.shape_id)
            .where(t.event_shapes.c.type == event_type)).scalar_one()


def contact_by(app: App, kind: str, value: str) -> Contact | None:
    with app.uow() as uow:
        cid = uow.contacts.find_by_identity(kind, value)
        return uow.contacts.get(cid) if cid is not None else None


def stages(app: App) -> dict[str, int]:
    with app.engine.connect() as conn:
        rows = conn.execute(select(t.contacts.c.stage, func.count()).group_by(t.contacts.c.stage))
        return {str(stage): int(n) for stage, n in rows}


def slice_of(source: Path, rows: int, target: Path) -> Path:
    with source.open("rb") as handle:
        target.write_bytes(b"".join(handle.readline() for _ in range(rows + 1)))
    return target


# ------------------------------------------------------------------ the X Education file


@dataclass
class Imported:
    app: App
    first: ImportReport
    again: ImportReport
    events_after_first: int
    changes_after_first: int


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def x_education(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Imported]:
    path = need(X_EDUCATION)
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('x_education') / 'leadflow.db'}"
    else:
        if request.getfixturevalue("pg_database") is None:
            pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
        name = f"leadflow_import_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    app = App(Settings(database_url=url, data_dir=tmp_path_factory.mktemp("data")),
              clock=FakeClock())
    first = run_import(app, path, "x_education")
    events, changes = count(app, t.events), count(app, t.stage_changes)
    again = run_import(app, path, "x_education")
    yield Imported(app, first, again, events, changes)
    app.engine.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def x_rows() -> list[dict[str, str]]:
    with need(X_EDUCATION).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_x_education_row_imports_as_a_lead_or_beyond(x_education: Imported) -> None:
    app, report = x_education.app, x_education.first
    assert (report.rows, report.imported, report.bad, report.skipped) == (9240, 9240, [], [])
    assert count(app, t.contacts) == 9240
    assert stages(app) == {"lead": 5679, "customer": 3561}  # Converted = 1 is a purchase
    assert count(app, t.stage_changes, t.stage_changes.c.to_stage == "suspect") == 9240
    imported = t.stage_changes.c.reason == "imported from X Education: gave contact details " \
                                           "on the course site"
    assert count(app, t.stage_changes, imported, t.stage_changes.c.to_stage == "lead") == 9240


def test_x_education_consent_labels_and_missing_values(x_education: Imported) -> None:
    app = x_education.app
    rows = x_rows()
    no_email = next(r for r in rows if r["Do Not Email"] == "Yes" and r["Do Not Call"] == "No")
    contact = contact_by(app, "external_id", f"x_education:{no_email['Prospect ID']}")
    assert contact is not None
    assert contact.consent["email"].granted is False
    assert contact.consent["phone"].granted is True
    assert contact.consent["email"].source == "import:x_education"
    with app.engine.connect() as conn:
        granted = conn.execute(select(t.contacts.c.consent)).scalars().all()
    assert sum(1 for c in granted if not c["email"]["granted"]) == 734
    assert sum(1 for c in granted if not c["phone"]["granted"]) == 2

    first = contact_by(app, "external_id", f"x_education:{rows[0]['Prospect ID']}")
    assert first is not None
    assert rows[0]["Specialization"] == rows[0]["City"] == "Select"
    assert "specialization" not in first.attributes
    assert "city" not in first.attributes
    assert first.attributes["lead_number"] == int(rows[0]["Lead Number"])
    assert first.attributes["converted"] is False
    assert first.attributes["tags"] == rows[0]["Tags"]  # kept, though it leaks the label
    india = next(r for r in rows if r["Country"] == "India")
    found = contact_by(app, "external_id", f"x_education:{india['Prospect ID']}")
    assert found is not None
    assert found.country == "IN"
    assert found.attributes["country_name"] == "India"


def test_x_education_behaviour_becomes_events(x_education: Imported) -> None:
    app, rows = x_education.app, x_rows()
    assert count_events(app, "page_view") == sum(int(r["TotalVisits"] or 0) for r in rows)
    assert count_events(app, "purchase") == 3561
    premium = sum(1 for r in rows if r["A free copy of Mastering The Interview"] == "Yes")
    assert count_events(app, "content_download") == premium
    opened = sum(1 for r in rows if r["Last Activity"] == "Email Opened")
    assert count_events(app, "email_opened") == opened
    assert x_education.first.events == count(app, t.events)


def test_importing_x_education_again_duplicates_nothing(x_education: Imported) -> None:
    app, again = x_education.app, x_education.again
    assert (again.imported, again.updated, again.unchanged, again.events) == (0, 0, 9240, 0)
    assert count(app, t.contacts) == 9240
    assert count(app, t.events) == x_education.events_after_first
    assert count(app, t.stage_changes) == x_education.changes_after_first


def test_new_rows_are_written_a_chunk_at_a_time(app: App, tmp_path: Path) -> None:
    """New contacts of a chunk go in a few statements, not a dozen per row: until the
    provisional ids of the batch passed event validation, every chunk failed over to the row
    by row path (about 22 statements a row, 125 rows/s on the X Education file)."""
    data = slice_of(need(X_EDUCATION), 200, tmp_path / "leads.csv")
    statements: list[str] = []
    listen(app.engine, "before_cursor_execute",
           lambda conn, cursor, statement, *rest: statements.append(statement))
    report = run_import(app, data, "x_education")
    assert (report.imported, report.bad) == (200, [])
    assert len(statements) < 2 * 200, len(statements)
    assert count(app, t.contacts) == 200
    assert count(app, t.stage_changes, t.stage_changes.c.to_stage == "lead") == 200


def test_imported_contacts_tell_webhooks_as_contacts_added_one_by_one_do(
        app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunk path writes to the outbox what the row-by-row path writes: a stage change
    message for each stage change and a milestone message for each milestone (a chunk's first
    rows, then the next rows forced one by one). It wrote none while it worked."""
    data = slice_of(need(X_EDUCATION), 120, tmp_path / "leads.csv")
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    lines = data.read_text(encoding="utf-8").splitlines(keepends=True)
    first.write_text("".join(lines[:61]), encoding="utf-8")
    second.write_text(lines[0] + "".join(lines[61:]), encoding="utf-8")
    assert run_import(app, first, "x_education").imported == 60

    def topics() -> dict[str, int]:
        with app.engine.connect() as conn:
            return dict(conn.execute(select(t.outbox.c.topic, func.count())
                                     .group_by(t.outbox.c.topic)).all())
    batch = topics()
    assert batch["stage.changed"] == count(app, t.stage_changes)
    assert batch.get("milestone.reached", 0) == count(app, t.milestones)

    def refuse(**_: object) -> int:
        raise RuntimeError("the chunk path is off for this import")
    monkeypatch.setattr(importing, "create_batch", refuse)
    assert run_import(app, second, "x_education").imported == 60
    both = topics()
    assert both["stage.changed"] == count(app, t.stage_changes)
    assert both.get("milestone.reached", 0) == count(app, t.milestones)
    # 60 rows each way from the same file: each path told of every one of its stage changes
    assert both["stage.changed"] - batch["stage.changed"] >= 2 * 60
    assert batch["stage.changed"] >= 2 * 60  # first seen, then the move to the import stage


# ------------------------------------------------------------------ Olist, with a joined file


def test_olist_join_labels_the_won_deals(app: App) -> None:
    report = run_import(app, need(OLIST_MQL), "olist")
    assert (report.imported, report.bad) == (8000, [])
    won = t.contacts.c.attributes["won"].as_boolean()
    assert count(app, t.contacts, won) == 842
    assert stages(app) == {"lead": 8000 - 842, "customer": 842}
    assert count_events(app, "deal_won") == 842
    with need(OLIST_DEALS).open(newline="") as handle:
        deal = next(csv.DictReader(handle))
    contact = contact_by(app, "external_id", f"olist:{deal['mql_id']}")
    assert contact is not None
    assert contact.stage == "customer"
    assert contact.attributes["won"] is True
    assert contact.attributes["business_segment"] == deal["business_segment"]
    assert contact.last_event_at == pytest.approx(
        _utc(deal["won_date"]), abs=1.0)


def _utc(text_value: str) -> float:
    from datetime import UTC, datetime
    return datetime.fromisoformat(text_value).replace(tzinfo=UTC).timestamp()


# ------------------------------------------------------------------ bad rows in a small file

SHOP_MAPPING = """\
name: shop
id: Customer ID
missing: ["", "n/a"]
stage: {role: interest, reason: signed up in the shop}
time: 2026-01-15T10:00:00Z
contact:
  email: Email
  first_name: Name
  country: Country
account:
  name: Company
  employees: Staff
attributes:
  orders: {column: Orders, type: int}
  signed_up: {column: Signed up, type: date}
consent:
  email: {column: Newsletter, map: {"yes": true, "no": false}, other: error}
events:
  - type: page_view
    count: Visits
  - type: form_submitted
    at: {column: Signed up, type: date}
"""

HEADER = "Customer ID,Email,Name,Country,Company,Staff,Orders,Signed up,Newsletter,Visits"
SHOP_ROWS = [
    "c1,ann@shop.test,Ann,FR,,,2,2026-01-02,yes,3",                    # 2 good
    "c2,not-an-email,Bob,FR,,,1,2026-01-02,yes,1",                     # 3 bad email
    "c3,cy@shop.test,Cy,DE,,,three,2026-01-02,no,1",                   # 4 bad number
    "c4,di@shop.test,Di,DE,,,1,31/02/2026,no,1",                       # 5 bad date
    ",ed@shop.test,Ed,GB,,,1,2026-01-03,no,1",                         # 6 no id
    'c6,fay@shop.test,"Fay\nMarie",ES,,,1,2026-01-03,n/a,2',           # 7-8 good, two lines
    "c7,gus@shop.test,Gus,IT,,,1,2026-01-03,no",                       # 9 a field short
    "c8,hal@shop.test,Hal,IT,,,1,2026-01-03,maybe,1",                  # 10 bad consent
    "c9,old@shop.test,Ola,NL,Shop BV,-5,1,2026-01-04,yes,1",           # 11 bad account
    "c10,ivy@shop.test,Ivy,France,,,1,2026-01-04,yes,1",               # 12 bad country
    "c11,jo@shop.test,Jo,BE,Jo Ltd,12,4,2026-01-05,no,0",              # 13 good
]


def shop_files(tmp_path: Path) -> tuple[Path, Path]:
    mapping = tmp_path / "shop.yaml"
    mapping.write_text(SHOP_MAPPING, encoding="utf-8")
    data = tmp_path / "shop.csv"
    data.write_bytes(("\r\n".join([HEADER, *SHOP_ROWS]) + "\r\n").encode())
    return data, mapping


def test_bad_rows_are_reported_by_line_and_the_good_rows_import(app: App, tmp_path: Path
                                                                 ) -> None:
    existing = create_contact(uow=app.uow(), ctx=app.ctx,
                              data=ContactIn(email="old@shop.test", first_name="Olga"))
    data, mapping = shop_files(tmp_path)
    report = run_import(app, data, str(mapping))
    assert [(b.line, b.column) for b in report.bad] == [
        (3, "Email"), (4, "Orders"), (5, "Signed up"), (6, "Customer ID"), (9, None),
        (10, "Newsletter"), (11, "account.employees"), (12, "Country")]
    reasons = {b.line: b.reason for b in report.bad}
    assert reasons[3] == "not a valid email address: 'not-an-email'"
    assert reasons[4] == "expected a whole number, got 'three'"
    assert reasons[5] == "expected an ISO 8601 date, got '31/02/2026'"
    assert reasons[6] == "the id is missing"
    assert reasons[9] == "expected 10 fields as in the header, found 9"
    assert reasons[10] == "unexpected value 'maybe' (expected one of 'yes', 'no')"
    assert reasons[11] == "expected a whole number of employees"
    assert reasons[12] == "expected a 2-letter country code, got 'France'"
    assert (report.rows, report.imported, report.updated) == (11, 3, 0)

    fay = contact_by(app, "external_id", "shop:c6")
    assert fay is not None
    assert fay.first_name == "Fay\nMarie"
    assert "email" not in fay.consent  # "n/a" means missing
    jo = contact_by(app, "external_id", "shop:c11")
    assert jo is not None
    assert jo.account_id is not None
    assert jo.attributes == {"orders": 4, "signed_up": "2026-01-05"}
    assert count(app, t.contacts) == 4  # the three good rows and the contact made before
    assert count_events(app, "page_view") == 3 + 2
    assert count_events(app, "form_submitted") == 3
    # Line 11 matched the existing contact by email and failed on its account: nothing of it
    # stays, not even the identity written before the failure.
    assert contact_by(app, "external_id", "shop:c9") is None
    assert existing.id is not None
    with app.uow() as uow:
        again = uow.contacts.get(existing.id)
        assert again is not None
        assert again.first_name == "Olga"
        assert uow.contacts.identities(existing.id) == [("email", "old@shop.test")]


def test_a_changed_row_updates_its_contact_and_adds_only_new_events(app: App, tmp_path: Path
                                                                     ) -> None:
    data, mapping = shop_files(tmp_path)
    run_import(app, data, str(mapping))
    events = count(app, t.events)
    rows = [r.replace("c1,ann@shop.test,Ann,FR,,,2,2026-01-02,yes,3",
                      "c1,ann@shop.test,Anne,FR,,,2,2026-01-02,no,5") for r in SHOP_ROWS]
    data.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    report = run_import(app, data, str(mapping))
    assert (report.imported, report.updated, report.unchanged) == (0, 1, 2)
    assert report.events == 2  # page views 4 and 5
    assert count(app, t.events) == events + 2
    ann = contact_by(app, "external_id", "shop:c1")
    assert ann is not None
    assert ann.first_name == "Anne"
    assert ann.consent["email"].granted is False
    with app.uow() as uow:
        assert ann.id is not None
        audit = uow.history.audit_entries(ann.id)
    assert audit[-1]["action"] == "updated"
    assert audit[-1]["details"]["first_name"] == ["Ann", "Anne"]


def test_an_erased_person_is_skipped_when_imported_again(app: App, tmp_path: Path) -> None:
    data, mapping = shop_files(tmp_path)
    run_import(app, data, str(mapping))
    ann = contact_by(app, "external_id", "shop:c1")
    assert ann is not None
    assert ann.id is not None
    erase(uow=app.uow(), ctx=app.ctx, contact_id=ann.id, reason="asked to be forgotten")
    report = run_import(app, data, str(mapping))
    assert [(s.line, s.reason) for s in report.skipped] == [
        (2, "this person asked to be forgotten; the row is not imported")]
    assert (report.imported, report.unchanged) == (0, 2)
    assert count(app, t.contacts) == 3


def test_small_chunks_give_the_same_result(app: App, tmp_path: Path) -> None:
    data, mapping = shop_files(tmp_path)
    report = run_import(app, data, str(mapping), chunk_size=2)
    assert [b.line for b in report.bad] == [3, 4, 5, 6, 9, 10, 11, 12]
    assert (report.imported, report.events) == (3, 3 + 1 + 2 + 1 + 0 + 1)


# ------------------------------------------------------------------ bad files, bad mappings


def test_a_file_that_is_not_csv_is_refused_before_anything_is_written(app: App, tmp_path: Path
                                                                       ) -> None:
    _, mapping = shop_files(tmp_path)
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 10)
    with pytest.raises(InvalidInput, match="is not utf-8 text"):
        open_csv(binary, load_mapping(str(mapping)))
    quoted = tmp_path / "quote.csv"
    quoted.write_text(f'{HEADER}\nc1,a@b.test,"Ann,FR,,,1,2026-01-01,yes,1\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="not a valid CSV file") as caught:
        open_csv(quoted, load_mapping(str(mapping)))
    assert caught.value.line == 2
    assert count(app, t.contacts) == 0


def test_a_mapped_column_missing_from_the_header_is_named_with_its_place(tmp_path: Path
                                                                         ) -> None:
    _, mapping = shop_files(tmp_path)
    data = tmp_path / "short.csv"
    data.write_text("Customer ID,Email,Name\nc1,a@b.test,Ann\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        open_csv(data, load_mapping(str(mapping)))
    message = str(caught.value)
    assert message.startswith("line 1: short.csv: the header lacks mapped column(s) ")
    assert "'Country' (contact.country (line 9))" in message
    assert "'Visits' (events[0].count (line 20))" in message


def test_a_mapping_with_errors_is_rejected_with_every_location() -> None:
    text_value = """\
name: My List
stage: {role: lead}
contact:
  colour: Colour
  first_name: {column: Name, type: number}
consent:
  email: {column: Opt in, map: {Yes: true}}
events:
  - type: Page View
  - type: {column: Activity}
    count: Visits
    when: {joined: true}
  - type: {column: Kind, map: {"a": page_view}}
    key: page_view
"""
    with pytest.raises(ConfigInvalid) as caught:
        parse_mapping_text(text_value, source="bad.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert problems == [
        "name (line 1): use lower-case letters, digits and _ (it prefixes ids)",
        "contact.colour (line 4): unknown field (allowed: email, phone, first_name, last_name, "
        "title, seniority, account_role, country, region, language, source)",
        "contact.first_name.type (line 5): unknown type 'number' (allowed: text, int, float, "
        "bool, date, datetime)",
        "consent.email.map (line 7): key True: quote it: YAML reads yes, no, on, off and "
        "numbers as other things",
        "stage.role (line 2): unknown role 'lead' (allowed: entry, interest, handoff, commit, "
        "won, excluded, erased)",
        "events[0].type (line 9): an event type looks like 'page_view'",
        "events[1].type (line 10): an event type read from a column needs a map",
        "events[1].when.joined (line 12): there is no join section",
        "events[2].key (line 14): two events have the key 'page_view'; give each its own "
        "(it makes their message ids)",
        "(top) (line 1): no id: give an id column, or map contact.email, so that importing the "
        "file again finds its contacts instead of duplicating them",
    ]


def test_a_mapping_stage_unknown_to_the_pipeline_is_named(app: App) -> None:
    mapping = parse_mapping_text("name: x\nid: ID\nstage: {key: hot_lead, reason: r}\n",
                                 source="x.yaml")
    with pytest.raises(ConfigInvalid) as caught:
        import_stage(mapping=mapping, config=app.config)
    assert [str(p) for p in caught.value.problems] == [
        "stage (line 3): unknown stage 'hot_lead' (stages: suspect, lead, prospect, "
        "opportunity, customer, disqualified, closed)"]
    no_reason = parse_mapping_text("name: x\nid: ID\nstage: {role: interest}\n", source="x.yaml")
    with pytest.raises(ConfigInvalid, match="say why rows enter at 'lead'"):
        import_stage(mapping=no_reason, config=app.config)


def test_the_shipped_mappings_parse() -> None:
    for name in ("x_education", "olist"):
        mapping = load_mapping(name)
        assert mapping.name == name
        assert mapping.stage.role == "interest"
        assert mapping.label is not None
