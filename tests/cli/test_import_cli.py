"""`leadflow import contacts FILE --mapping MAP`, through the command line."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.entrypoints.cli import app as _registers_every_command  # noqa: F401
from leadflow.entrypoints.cli.base import app as cli
from tests.integration.test_import import (
    OLIST_DEALS,
    OLIST_MQL,
    X_EDUCATION,
    need,
    shop_files,
    slice_of,
)

runner = CliRunner()



def contacts(app: App) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.contacts)).scalar_one()


def test_bad_rows_are_listed_with_their_line_and_the_exit_code_is_1(cli_app: App,
                                                                     tmp_path: Path) -> None:
    data, mapping = shop_files(tmp_path)
    result = runner.invoke(cli, ["import", "contacts", str(data), "--mapping", str(mapping)])
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "11 rows in" in out
    assert "imported 3, updated 0, unchanged 0, skipped 0, bad 8" in out
    assert "bad line 3 [Email]: not a valid email address: 'not-an-email'" in out
    assert "bad line 9: expected 10 fields as in the header, found 9" in out
    assert "bad line 12 [Country]: expected a 2-letter country code, got 'France'" in out
    assert contacts(cli_app) == 3


def test_json_output_for_machines(cli_app: App, tmp_path: Path) -> None:
    data, mapping = shop_files(tmp_path)
    runner.invoke(cli, ["import", "contacts", str(data), "--mapping", str(mapping)])
    result = runner.invoke(cli, ["import", "contacts", str(data), "-m", str(mapping), "--json"])
    report = json.loads(result.stdout)
    assert (report["imported"], report["updated"], report["unchanged"]) == (0, 0, 3)
    assert report["bad_rows"][0] == {"line": 3, "column": "Email",
                                     "reason": "not a valid email address: 'not-an-email'"}
    assert [b["line"] for b in report["bad_rows"]] == [3, 4, 5, 6, 9, 10, 11, 12]
    assert report["skipped"] == []


def test_a_shipped_mapping_is_named(cli_app: App, tmp_path: Path) -> None:
    data = slice_of(need(X_EDUCATION), 40, tmp_path / "leads.csv")
    result = runner.invoke(cli, ["import", "contacts", str(data), "--mapping", "x_education"])
    assert result.exit_code == 0, result.output
    assert "imported 40, updated 0, unchanged 0, skipped 0, bad 0" in result.stdout
    assert contacts(cli_app) == 40


def test_the_joined_file_can_be_given_as_an_option(cli_app: App, tmp_path: Path) -> None:
    data = slice_of(need(OLIST_MQL), 300, tmp_path / "mql.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    deals = elsewhere / "deals.csv"
    deals.write_bytes(need(OLIST_DEALS).read_bytes())
    missing = runner.invoke(cli, ["import", "contacts", str(data), "--mapping", "olist"])
    assert missing.exit_code == 2
    assert "the file to join, " in missing.output
    assert "olist_closed_deals_dataset.csv, is missing (the mapping's join (line" \
        in missing.output
    assert "names it beside mql.csv)" in missing.output
    result = runner.invoke(cli, ["import", "contacts", str(data), "--mapping", "olist",
                                 "--join-file", str(deals), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["imported"] == 300


def test_a_file_lacking_a_mapped_column_is_refused_and_nothing_written(cli_app: App,
                                                                       tmp_path: Path) -> None:
    _, mapping = shop_files(tmp_path)
    data = tmp_path / "other.csv"
    data.write_text("Customer ID,Email\nc1,a@shop.test\n", encoding="utf-8")
    result = runner.invoke(cli, ["import", "contacts", str(data), "--mapping", str(mapping)])
    assert result.exit_code == 2
    assert "error: line 1: other.csv: the header lacks mapped column(s) 'Name'" in result.output
    assert "Traceback" not in result.output
    assert contacts(cli_app) == 0


def test_an_unknown_mapping_lists_the_shipped_ones(cli_app: App, tmp_path: Path) -> None:
    data, _ = shop_files(tmp_path)
    result = runner.invoke(cli, ["import", "contacts", str(data), "--mapping", "hubspot"])
    assert result.exit_code == 2
    assert "no mapping file 'hubspot', and no shipped mapping of that name " \
           "(shipped: olist, x_education)" in result.output


def test_a_mapping_with_errors_is_shown_with_its_locations(cli_app: App, tmp_path: Path
                                                           ) -> None:
    data, _ = shop_files(tmp_path)
    mapping = tmp_path / "bad.yaml"
    mapping.write_text("name: shop\nid: Customer ID\nstage: {role: lead}\n", encoding="utf-8")
    result = runner.invoke(cli, ["import", "contacts", str(data), "--mapping", str(mapping)])
    assert result.exit_code == 2
    assert "configuration error" in result.output
    assert "stage.role (line 3): unknown role 'lead'" in result.output
