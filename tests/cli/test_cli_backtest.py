"""`leadflow backtest`: the table, the JSON, a candidate file, and each bad option named."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from leadflow.adapters.config_file import parse_config_text
from leadflow.adapters.db.backtest_reads import SqlBacktestReads
from leadflow.bootstrap import App
from leadflow.domain.ports import NullProgress
from leadflow.domain.users import OPERATOR
from leadflow.entrypoints.cli.base import app as cli
from leadflow.services.backtest import run_backtest
from tests.conftest import FakeClock
from tests.integration.test_backtest import candidate_text, make_history


def test_the_command_line(cli_app: App, clock: FakeClock, tmp_path: Path) -> None:
    make_history(cli_app, clock, people=6)
    runner = CliRunner()
    shown = runner.invoke(cli, ["backtest", "--mql", "10:50:20", "--metric", "recall",
                                "--min-flagged", "1"])
    assert shown.exit_code == 0, shown.output
    assert "Replayed 6 contacts" in shown.output
    assert "MQL threshold (mql)" in shown.output
    assert "SQL (hand-off) threshold" in shown.output
    assert re.search(r"│ 10 ★ +│ 6 +│ 2 +│ 33\.3% +│ 100\.0% +│ 1\.0 +│", shown.output)
    assert "★ suggested MQL threshold: 10 (recall 1.000); • current: 40." in shown.output
    assert "┃ recall ┃ lift" in shown.output  # the metric's column once
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nstages: [\n", encoding="utf-8")
    for args, says in (
            (["--config", str(bad)], "line"),
            (["--mql", "ten"], "mql: 'ten' is not a threshold"),
            (["--metric", "auc"], "metric: the metric to maximise is one of"),
            (["--created-before", "June"], "created-before: expected a date"),
            (["--as", "nobody@example.com"], "nobody@example.com")):
        result = runner.invoke(cli, ["backtest", *args])
        assert result.exit_code == 2, (args, result.output)
        assert says in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_a_candidate_file(cli_app: App, clock: FakeClock, tmp_path: Path) -> None:
    make_history(cli_app, clock, people=8)
    path = tmp_path / "candidate.yaml"
    path.write_text(candidate_text(), encoding="utf-8")
    result = CliRunner().invoke(cli, ["backtest", "--config", str(path), "--mql", "15,30",
                                      "--sql", "20:60:20", "--min-flagged", "1", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["in_force"] is False
    with cli_app.engine.connect() as conn:
        expected = run_backtest(
            reads=SqlBacktestReads(conn), ctx=cli_app.ctx, principal=OPERATOR,
            progress=NullProgress(), mql_thresholds=[15, 30], sql_thresholds=[20, 40, 60],
            min_flagged=1, candidate=parse_config_text(candidate_text(), source="c"))
    mql, sql = body["sweeps"]
    assert [(r["threshold"], r["flagged"], r["converted"]) for r in mql["thresholds"]] == [
        (r.threshold, r.flagged, r.converted) for r in expected.sweeps[0].results]
    assert [r["threshold"] for r in sql["thresholds"]] == [20, 40, 60]
    assert mql["suggested"]["threshold"] == expected.sweeps[0].suggested.threshold  # type: ignore[union-attr]
