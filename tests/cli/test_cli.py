"""The command line as a user meets it: readable output, JSON for machines, clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadflow.bootstrap import App
from leadflow.entrypoints.cli import app as _registers_every_command  # noqa: F401
from leadflow.entrypoints.cli.base import app as cli
from leadflow.entrypoints.cli.base import set_app
from tests.conftest import FakeClock

runner = CliRunner()
README = Path(__file__).resolve().parents[2] / "README.md"



def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result.stdout + result.stderr


def as_json(*args: str) -> object:
    return json.loads(runner.invoke(cli, [*args, "--json"]).stdout)


def test_a_lead_becomes_a_prospect_and_shows_why(cli_app: App, clock: FakeClock) -> None:
    run("contact", "create", "--email", "ann@acme.io", "--first-name", "Ann", "--seniority",
        "director", "--country", "FR", "--company", "Acme", "--domain", "acme.io",
        "--industry", "software", "--employees", "300")
    out = run("track", "form_submitted", "--email", "ANN@acme.io", "--url", "/contact")
    assert "suspect → lead" in out
    clock.advance(3600)
    out = run("track", "content_download", "--email", "ann@acme.io", "--premium",
              "--url", "https://acme.io/resources/wp?utm_source=x", "--message-id", "m-1")
    assert "lead → prospect" in out
    assert "duplicate" in run("track", "content_download", "--email", "ann@acme.io",
                              "--premium", "--message-id", "m-1")
    shown = run("contact", "show", "ann@acme.io")
    assert "Prospect" in shown
    assert "premium_download" in shown
    assert "grade A" in shown
    assert "hot" not in shown.split("temperature:")[1].split("\n")[0]  # no demo, no timeline
    view = as_json("contact", "show", "ann@acme.io")
    assert isinstance(view, dict)
    assert view["stage"] == "prospect"
    assert view["engagement"]["breakdown"]["premium_download"] > 0
    assert [e["what"] for e in view["timeline"] if e["kind"] == "event"] == [
        "content_download", "form_submitted"]


def test_lists_filter_and_sort(cli_app: App) -> None:
    for i, n in enumerate((1, 5, 3)):
        run("contact", "create", "--email", f"p{i}@x.io")
        for _ in range(n):
            run("track", "webinar_attended", "--email", f"p{i}@x.io")
    listed = as_json("contacts", "list", "--sort", "score")
    assert isinstance(listed, dict)
    assert [r["email"] for r in listed["items"]] == ["p1@x.io", "p2@x.io", "p0@x.io"]
    listed = as_json("contacts", "list", "--min-score", "40")
    assert isinstance(listed, dict)
    assert [r["email"] for r in listed["items"]] == ["p1@x.io", "p2@x.io"]
    assert listed["total"] == 2
    out = run("contacts", "list", "--stage", "nowhere", code=2)
    assert "unknown stage 'nowhere'" in out


def test_moves_qualification_and_funnel(cli_app: App) -> None:
    run("lead", "add", "--email", "bob@x.io", "--reason", "met at the fair")
    out = run("contact", "move", "bob@x.io", "opportunity", code=2)
    assert "reason" in out.lower()
    run("contact", "move", "bob@x.io", "opportunity", "--reason", "agreed to a pilot")
    shown = run("contact", "qualify", "bob@x.io", "budget=approved", "authority=decision_maker",
                "need=yes", "timeline=2026-04-01", "has_crm_data=yes")
    assert "qualified" in shown
    assert "unknown question 'colour'" in run("contact", "qualify", "bob@x.io", "colour=red",
                                               code=2)
    run("contact", "recycle", "bob@x.io", "--reason", "lost the deal to price")
    data = as_json("funnel")
    assert isinstance(data, dict)
    counts = {s["stage"]: s["count"] for s in data["stages"]}
    assert counts["lead"] == 1
    reached = {r["stage"]: r["count"] for r in data["reached"]}
    assert reached["prospect"] == 1
    assert reached["opportunity"] == 1


def test_bad_input_is_one_clear_line(cli_app: App, tmp_path: Path) -> None:
    assert "not a valid email address" in run("contact", "create", "--email", "nope", code=2)
    assert "event for an unknown contact id 999" in run("track", "page_view", "--contact", "999",
                                                         code=2)
    batch = tmp_path / "events.jsonl"
    batch.write_text('{"type": "page_view", "email": "a@x.io"}\n{"type": "page view"}\n')
    out = run("track", "--batch", str(batch), code=2)
    assert "events[1].type" in out
    assert as_json("contacts", "list") == {"total": 0, "offset": 0, "items": []}
    batch.write_text('{"type": "page_view", "email": "a@x.io"}\n{oops\n')
    assert "line 2" in run("track", "--batch", str(batch), code=2)


def test_config_check_names_each_problem_with_its_line(cli_app: App, tmp_path: Path) -> None:
    assert "ok" in run("config", "check")
    bad = tmp_path / "pipeline.yaml"
    bad.write_text("version: 1\nstages:\n  - key: suspect\n    role: entry\n"
                   "  - key: lead\n    role: hopeful\n")
    out = run("config", "check", str(bad), code=2)
    assert "stages[1].role (line 6)" in out
    assert "no stage has role 'handoff'" in out


def test_rescore_check_is_clean_after_late_events(cli_app: App) -> None:
    run("track", "page_view", "--email", "c@x.io", "--at", "2026-02-20T10:00:00Z")
    run("track", "page_view", "--email", "c@x.io", "--at", "2026-02-10T10:00:00Z")
    assert "0 contact(s) differ" in run("rescore", "--check")
    assert "rescored every contact" in run("rescore")
    assert "0 changed" in run("rescore")  # a second pass finds nothing to rewrite
    assert "0 contact(s) differ" in run("rescore", "--check")


def test_every_command_is_in_the_readme() -> None:
    readme = README.read_text()
    names: list[str] = []
    for command in cli.registered_commands:
        names.append(command.name or (command.callback.__name__ if command.callback else ""))
    for group in cli.registered_groups:
        assert group.typer_instance is not None
        for command in group.typer_instance.registered_commands:
            names.append(f"{group.name} {command.name}")
    missing = [n for n in names if not re.search(rf"leadflow {re.escape(n)}\b", readme)]
    assert not missing, f"commands missing from README.md: {missing}"


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    from leadflow.config import Settings

    set_app(App(Settings(database_url="postgresql+psycopg://nobody:secret@127.0.0.1:1/none",
                         data_dir=tmp_path)))
    try:
        out = run("funnel", code=2)
    finally:
        set_app(None)
    assert "cannot open the database postgresql+psycopg://nobody:***@127.0.0.1:1/none" in out
    assert "secret" not in out


@pytest.mark.parametrize(("line", "field"), [
    ('{"type": "page_view", "email": 123}', "events[0].email"),
    ('{"type": "page_view", "email": "a@x.io", "properties": "x"}', "events[0].properties"),
    ('{"type": "page_view", "contact_id": "12"}', "events[0].contact_id"),
    ('{"type": "page_view", "contact_id": true}', "events[0].contact_id"),
    ('{"type": "page_view", "contact_id": 99999999999999999999}', "events[0].contact_id"),
    ('{"type": "page_view", "email": "a@x.io", "message_id": "' + "m" * 201 + '"}',
     "events[0].message_id"),
    ('{"type": "page_view", "email": "a@x.io", "url": 7}', "events[0].url"),
])
def test_a_batch_with_a_badly_typed_value_is_refused_by_name(cli_app: App, tmp_path: Path,
                                                             line: str, field: str) -> None:
    batch = tmp_path / "events.jsonl"
    batch.write_text(line + "\n")
    assert field in run("track", "--batch", str(batch), code=2)


def test_unreadable_files_and_huge_ids_are_clear_errors(cli_app: App, tmp_path: Path) -> None:
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"type": "page_view", "email": "caf\xe9@x.io"}\n'.encode("latin-1"))
    assert "not UTF-8" in run("track", "--batch", str(latin), code=2)
    cfg = tmp_path / "latin.yaml"
    cfg.write_bytes("version: caf\xe9\n".encode("latin-1"))
    assert "not UTF-8" in run("config", "check", str(cfg), code=2)
    assert "no contact '99999999999999999999'" in run("contact", "show",
                                                       "99999999999999999999", code=2)
    out = run("contact", "create", "--email", "a@x.io", "--first-name", "x" * 201, code=2)
    assert "first_name: longer than 200 characters" in out
    out = run("contact", "create", "--email", "a@x.io", "--company", "Acme", code=0)
    out = run("contact", "update", "a@x.io", "--company", "Acme", "--domain", "acme.io",
              "--industry", "i" * 101, code=2)
    assert "account.industry: longer than 100 characters" in out


def test_utm_parameters_in_the_url_are_kept(cli_app: App) -> None:
    run("track", "page_view", "--email", "u@x.io",
        "--url", "https://acme.io/pricing?utm_source=ads&utm_campaign=spring#top")
    view = as_json("contact", "show", "u@x.io")
    assert isinstance(view, dict)
    event = next(e for e in view["timeline"] if e["kind"] == "event")
    assert event["url"] == "/pricing"
    assert event["properties"]["url"].endswith("utm_source=ads&utm_campaign=spring#top")
    with cli_app.uow() as uow:
        events = uow.events.timeline(view["id"], 5)
    assert events[0].shape.utm_source == "ads"
    assert events[0].shape.utm_campaign == "spring"


def test_a_manual_lead_needs_real_contact_details(cli_app: App) -> None:
    out = run("lead", "add", "--email", "   ", "--reason", "heard of her", code=2)
    assert "a lead needs an email or a phone number" in out


def test_never_active_contacts_sort_last_on_every_database(cli_app: App) -> None:
    run("contact", "create", "--email", "quiet@x.io")
    run("track", "page_view", "--email", "busy@x.io")
    listed = as_json("contacts", "list", "--sort", "last_activity")
    assert isinstance(listed, dict)
    assert [r["email"] for r in listed["items"]] == ["busy@x.io", "quiet@x.io"]
