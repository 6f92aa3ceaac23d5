"""`leadflow model train|list|activate|score|explain` on a generated history, the training
queued for the worker, and the lifecycle YAML's model section checked by `config check`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from leadflow.bootstrap import App
from leadflow.entrypoints.cli.base import app as cli
from leadflow.entrypoints.worker import Jobs
from tests.conftest import FakeClock
from tests.integration.test_predictive import MODEL, generate, track, with_model

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result.stdout + result.stderr


def as_json(*args: str) -> Any:
    return json.loads(run(*args, "--json"))


def test_train_activate_score_and_explain(cli_app: App, clock: FakeClock) -> None:
    assert "no model trained yet" in run("model", "list")
    assert "at least 50 examples" in run("model", "train", code=2)
    with_model(cli_app, **MODEL)
    history = generate(cli_app, clock, n=200)
    out = run("model", "train")
    assert "model version 1: predicts customer within 90 days" in out
    assert "one-hot logistic regression" in out
    assert "contact.stage (the stage is what is predicted)" in out
    assert "not active yet: leadflow model activate 1" in out
    [listed] = as_json("model", "list")
    assert listed["active"] is False
    assert {"auc", "average_precision", "brier", "lift_top_decile"} <= set(listed["metrics"])
    assert "model" not in listed
    activated = as_json("model", "activate", "1")
    open_leads = set(history.leads) - history.converted
    assert activated["scored"] == len(open_leads)
    assert as_json("model", "score") == {"version": 1, "full": False, "considered": 0,
                                         "scored": 0, "forgotten": 0}
    lead = min(open_leads)
    email = f"p{lead - 1}@co{lead - 1}.example"
    clock.advance(60)
    track(cli_app, email, "email_replied", clock.now())
    clock.advance(60)
    assert "1 looked at, 1 scored" in run("model", "score")
    explained = run("model", "explain", email)
    assert f"contact {lead}: " in explained
    assert "chance of reaching customer within 90 days (model version 1)" in explained
    assert "log-odds" in explained
    shown = as_json("model", "explain", str(lead))
    assert shown["contact_id"] == lead
    assert 0 < shown["probability"] < 1
    assert shown["reasons"]
    buyer = min(history.converted)
    assert "not scored: the model scores contacts in lead, prospect, opportunity" in run(
        "model", "explain", str(buyer))
    assert "no contact" in run("model", "explain", "nobody@nowhere.example", code=2)
    assert "no model version 7" in run("model", "activate", "7", code=2)
    assert "unknown milestone" in run("model", "train", "--target", "milestone:nope", code=2)


def test_training_in_the_background_is_a_worker_job(cli_app: App, clock: FakeClock) -> None:
    with_model(cli_app, **MODEL)
    generate(cli_app, clock, n=160)
    assert "queued" in run("model", "train", "--background", "--activate", "--by", "ada")
    assert as_json("model", "list") == []  # nothing until the worker runs it
    jobs = Jobs(cli_app)
    task = jobs.huey.dequeue()
    assert task is not None
    assert task.name == "train_model"
    jobs.huey.execute(task)
    [version] = as_json("model", "list")
    assert version["active"] is True
    assert version["trained_by"] == "ada"
    assert version["scored_through"] is None  # the worker's next pass scores everyone
    report = jobs.score_predictions.call_local()
    assert report["full"] is True
    assert report["scored"] > 0
    assert as_json("model", "list")[0]["scored_through"] == clock.now()


def test_config_check_names_each_problem_of_the_model_section(cli_app: App,
                                                              tmp_path: Path) -> None:
    raw = dict(cli_app.config.raw)
    raw["model"] = {"target": "milestone:nope", "horizon_days": -3,
                    "exclude": ["contact.owner", "events.signal.nope"], "extra": 1}
    path = tmp_path / "pipeline.yaml"
    path.write_text(json.dumps(raw))
    out = run("config", "check", str(path), code=2)
    for where in ("model.target", "model.horizon_days", "model.exclude[0]", "model.exclude[1]",
                  "model.extra"):
        assert where in out, where
