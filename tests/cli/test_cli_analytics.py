"""`leadflow analytics funnel|time-in-stage|sla`, for people and with --json; --as keeps a
rep to their own contacts."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from leadflow.bootstrap import App
from leadflow.entrypoints.cli.base import app as cli
from tests.conftest import FakeClock
from tests.integration.test_analytics import build

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result.stdout + result.stderr


def test_the_funnel_for_people_and_machines(cli_app: App, clock: FakeClock) -> None:
    build(cli_app, clock)
    text = run("analytics", "funnel")
    assert "funnel: 4 contacts" in text
    assert "prospects won: 50.0% (1/2)" in text
    assert "1 recycles (1 contacts), 1 disqualifications" in text
    by_source = json.loads(run("analytics", "funnel", "--by", "source", "--json"))
    assert {g["group"]: g["contacts"] for g in by_source["groups"]} == {
        "website": 2, "fair": 1, None: 1}
    assert by_source["total"]["reached"]["prospect"] == 2
    text = run("analytics", "funnel", "--by", "content", "--item", "crm-guide")
    assert "funnel by content item crm-guide" in text
    assert "consumed" in text
    assert "break down by one of" in run("analytics", "funnel", "--by", "colour", code=2)
    assert "no content item 'nope'" in run("analytics", "funnel", "--by", "content", "--item",
                                           "nope", code=2)
    mine = json.loads(run("analytics", "funnel", "--as", "rita@sales.example", "--json"))
    assert mine["total"]["contacts"] == 1


def test_time_in_stage_and_sla(cli_app: App, clock: FakeClock) -> None:
    build(cli_app, clock)
    text = run("analytics", "time-in-stage")
    assert "5.1 d" in text  # the median suspect: 5 days 3 hours
    times = json.loads(run("analytics", "time-in-stage", "--by", "cohort-week", "--json"))
    assert times["by"] == "cohort-week"
    assert {r["group"] for r in times["groups"]} == {"2026-03-02"}
    text = run("analytics", "sla")
    assert "Rita" in text
    sla = json.loads(run("analytics", "sla", "--json"))
    assert sla["total"] == {"on_time": 0, "late": 1, "overdue": 1, "pending": 0, "due": 2,
                            "compliance": 0.0}
