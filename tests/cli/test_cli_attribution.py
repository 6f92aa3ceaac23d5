"""`leadflow analytics attribution`, for people and with --json; --as keeps a rep to their
own contacts."""

from __future__ import annotations

import json

from leadflow.bootstrap import App
from tests.cli.test_cli_analytics import run
from tests.conftest import FakeClock
from tests.integration.test_attribution import history


def test_attribution_for_people_and_machines(cli_app: App, clock: FakeClock) -> None:
    history(cli_app, clock)
    text = run("analytics", "attribution", "--model", "linear", "--by", "campaign")
    assert "linear attribution by campaign" in text
    assert "spring" in text
    assert "summer" in text
    body = json.loads(run("analytics", "attribution", "--json"))
    assert (body["model"], body["by"], body["customers"]) == ("first", "source", 1)
    assert body["pipeline"] == {"EUR": 1000.0, "USD": 500.0}
    assert "model is one of" in run("analytics", "attribution", "--model", "middle", code=2)
    mine = json.loads(run("analytics", "attribution", "--as", "rita@sales.example",
                          "--json"))
    assert mine["customers"] == 1
