"""`leadflow model evaluate`, through the command line: reproducible metrics, leaking columns
never read, clear errors, and the Olist label from the joined file."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from leadflow.entrypoints.cli import app as _registers_every_command  # noqa: F401
from leadflow.entrypoints.cli.base import app as cli
from tests.integration.test_import import OLIST_DEALS, OLIST_MQL, need
from tests.unit.test_model_evaluation import generated_leads

runner = CliRunner()

MAPPING = """\
name: generated
id: id
stage: {role: interest, at: {column: signup, type: date}}
attributes:
  region: region
  channel: channel
  visits: {column: visits, type: int}
  signup: {column: signup, type: date}
  status: status           # the sales status: it is the outcome itself
  score: {column: score, type: int}
label: {attribute: converted, column: converted, map: {"1": true, "0": false}}
"""


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def leads(n: int = 600) -> list[dict[str, Any]]:
    rows = generated_leads(n, seed=21)
    for row in rows:  # a second leaking column, an int: 100 when won
        row["score"] = 100 if row["converted"] else 0
    return rows


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    mapping = tmp_path / "generated.yaml"
    mapping.write_text(MAPPING)
    return write_csv(tmp_path / "leads.csv", leads()), mapping


def evaluate(*args: str, ok: bool = True) -> Any:
    result = runner.invoke(cli, ["model", "evaluate", *args])
    if ok:
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if "--json" in args else result.stdout
    assert result.exit_code == 2, result.output
    return result.stderr


def by_model(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in report["models"]}


def test_the_metrics_are_reproduced_with_a_fixed_seed(files: tuple[Path, Path]) -> None:
    data, mapping = files
    args = ["--csv", str(data), "--mapping", str(mapping), "--label", "converted",
            "--exclude", "status", "--exclude", "score", "--split", "seeded", "--json"]
    first = evaluate(*args, "--seed", "3")
    assert first == evaluate(*args, "--seed", "3")
    assert first["split"]["kind"] == "seeded"
    assert first["split"]["seed"] == 3
    assert first["split"]["train"]["rows"] + first["split"]["test"]["rows"] == 600
    assert first["models"] != evaluate(*args, "--seed", "4")["models"]  # another split
    assert set(by_model(first)) == {"leadflow", "naive Bayes (Odoo CRM)",
                                    "one-hot logistic regression"}
    text = evaluate(*args[:-1], "--seed", "3")
    assert "metrics on the test part" in text
    ours = by_model(first)["leadflow"]
    assert f"{ours['auc']:.3f}" in text
    assert f"{ours['average_precision']:.3f}" in text


def test_a_time_split_by_default_when_the_mapping_dates_its_rows(files: tuple[Path, Path]
                                                                 ) -> None:
    data, mapping = files
    report = evaluate("--csv", str(data), "--mapping", str(mapping), "--exclude", "status",
                      "--exclude", "score", "--json")
    split = report["split"]
    assert split["kind"] == "time"
    assert split["time_column"] == "signup"
    assert split["test_from"] > "2023-10-01"  # the last fifth of the year
    assert split["test"]["rows"] == 120


def test_a_leaking_column_in_the_exclusion_config_is_never_read(
        files: tuple[Path, Path], tmp_path: Path) -> None:
    data, mapping = files
    config = tmp_path / "exclude.yaml"
    config.write_text("exclude: [status, score]\n")
    args = ["--mapping", str(mapping), "--exclude-config", str(config), "--json", "--seed", "2"]
    leaked = evaluate("--csv", str(data), "--mapping", str(mapping), "--json", "--seed", "2")
    assert by_model(leaked)["naive Bayes (Odoo CRM)"]["auc"] > 0.99  # it does leak

    clean = evaluate("--csv", str(data), *args)
    assert {"status", "score"}.isdisjoint(f["column"] for f in clean["features"])
    assert {"status", "score"}.isdisjoint(clean["columns_read"])
    assert {n["name"]: n["reason"] for n in clean["not_read"]}["status"] == "excluded"
    assert by_model(clean)["naive Bayes (Odoo CRM)"]["auc"] < 0.9

    # Other values in those columns (even ones that are not numbers in the int column), or
    # no such columns at all, change nothing.
    rows = leads()
    for row in rows:
        row["status"], row["score"] = "anything", "not a number"
    garbled = evaluate("--csv", str(write_csv(tmp_path / "garbled.csv", rows)), *args)
    assert garbled["models"] == clean["models"]
    assert garbled["skipped"] == []
    mapping.write_text(MAPPING.replace("  status: status", "").replace(
        "  score: {column: score, type: int}", ""))
    for row in rows:
        del row["status"], row["score"]
    without = evaluate("--csv", str(write_csv(tmp_path / "without.csv", rows)),
                       "--mapping", str(mapping), "--json", "--seed", "2")
    assert without["models"] == clean["models"]


def test_the_mapping_marks_leaking_columns(files: tuple[Path, Path]) -> None:
    data, mapping = files
    mapping.write_text(MAPPING + "model: {leaking: [status, score]}\n")
    report = evaluate("--csv", str(data), "--mapping", str(mapping), "--json")
    assert {n["name"]: n["reason"] for n in report["not_read"]} == {
        "status": "leaking (mapping)", "score": "leaking (mapping)"}
    assert [f["name"] for f in report["features"]] == [
        "region", "channel", "visits", "signup_days", "signup_weekday"]


def test_both_classes_are_required(tmp_path: Path, files: tuple[Path, Path]) -> None:
    _, mapping = files
    rows = leads(100)
    for row in rows:
        row["converted"] = 0
    data = write_csv(tmp_path / "lost.csv", rows)
    err = evaluate("--csv", str(data), "--mapping", str(mapping), ok=False)
    assert "label: the file has no positive label in 100 row(s)" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_input_is_one_line_naming_the_problem(files: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    data, mapping = files
    base = ["--csv", str(data), "--mapping", str(mapping)]
    assert "unknown label column 'Won'" in evaluate(*base, "--label", "Won", ok=False)
    assert "cannot exclude 'nope'" in evaluate(*base, "--exclude", "nope", ok=False)
    assert "unknown split 'random'" in evaluate(*base, "--split", "random", ok=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text(MAPPING + "model: {leaking: [statuss]}\n")
    err = evaluate("--csv", str(data), "--mapping", str(bad), ok=False)
    assert "model.leaking[0] (line 12): 'statuss' is neither an attribute nor a column" in err
    undated = tmp_path / "undated.yaml"
    undated.write_text(MAPPING.replace(", at: {column: signup, type: date}", ""))
    err = evaluate("--csv", str(data), "--mapping", str(undated), "--split", "time", ok=False)
    assert "a time-ordered split needs the time each row entered" in err


def test_the_olist_label_comes_from_the_joined_file(tmp_path: Path) -> None:
    mql = [{"mql_id": f"m{i}", "first_contact_date": f"2018-0{1 + i % 5}-{10 + i % 18}",
            "landing_page_id": f"p{i % 7}", "origin": ("social", "email", "paid")[i % 3]}
           for i in range(300)]
    won = [r["mql_id"] for r in mql if r["landing_page_id"] in ("p1", "p2") or
           r["mql_id"].endswith("7")]
    mql_file = write_csv(tmp_path / "olist_marketing_qualified_leads_dataset.csv", mql)
    write_csv(tmp_path / "olist_closed_deals_dataset.csv", [
        {"mql_id": m, "seller_id": f"s{m}", "sdr_id": "x", "sr_id": "y",
         "won_date": "2018-06-01 10:00:00", "business_segment": "pets", "lead_type": "online",
         "lead_behaviour_profile": "cat", "has_company": "", "has_gtin": "",
         "average_stock": "", "business_type": "reseller", "declared_product_catalog_size": "",
         "declared_monthly_revenue": "0"} for m in won])
    report = evaluate("--csv", str(mql_file), "--mapping", "olist", "--label", "won", "--json")
    assert report["rows"] == 300
    assert report["positives"] == len(won)
    assert report["label"] == "won: the row's mql_id is in olist_closed_deals_dataset.csv"
    assert report["split"]["kind"] == "time"
    assert sorted(report["columns_read"]) == ["first_contact_date", "landing_page_id",
                                              "mql_id", "origin"]

    # A mapping that forgets to mark the deal columns still never reads them: they exist only
    # for the joined (won) rows.
    text = (Path(__file__).resolve().parents[2] / "src/leadflow/mappings/olist.yaml").read_text()
    start = text.index("\nmodel:")
    mine = tmp_path / "olist_unmarked.yaml"
    mine.write_text(text[:start] + text[text.index("\nlabel:"):])
    unmarked = evaluate("--csv", str(mql_file), "--mapping", str(mine), "--json")
    assert unmarked["columns_read"] == report["columns_read"]
    assert unmarked["models"] == report["models"]
    reasons = {n["name"]: n["reason"] for n in unmarked["not_read"]}
    assert reasons["seller_id"] == "only in the joined file, which is the label"


def test_the_real_olist_funnel() -> None:
    need(OLIST_DEALS)
    report = evaluate("--csv", str(need(OLIST_MQL)), "--mapping", "olist", "--label", "won",
                      "--json")
    assert (report["rows"], report["positives"]) == (8000, 842)
    assert report["split"]["kind"] == "time"
    assert sorted(report["columns_read"]) == ["first_contact_date", "landing_page_id",
                                              "mql_id", "origin"]
    for model in report["models"]:
        assert 0.6 < model["auc"] < 0.8  # three weak features, a drifting base rate
