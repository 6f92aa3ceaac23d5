"""The content library from the command line, a contact's next content and its export;
``--as`` keeps a rep to their own contacts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from leadflow.bootstrap import App
from leadflow.entrypoints.cli.base import app as cli

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result.stdout + result.stderr


def test_the_library_is_managed_from_the_command_line(cli_app: App, tmp_path: Path) -> None:
    shown = run("content", "add", "crm-guide", "--title", "The CRM [guide]", "--url",
                "https://acme.example/guides/crm/", "--maturity", "discovery", "--format",
                "article", "-t", "CRM", "-t", "sales")
    assert "The CRM [guide]" in shown
    assert "page views of /guides/crm consume it" in shown
    assert "an item with the key 'crm-guide' exists" in run(
        "content", "add", "crm-guide", "--title", "x", "--url", "/x", "--maturity",
        "discovery", "--format", "article", code=2)
    assert "maturity: maturity is one of" in run(
        "content", "add", "late", "--title", "x", "--url", "/x", "--maturity", "final",
        "--format", "article", code=2)
    run("content", "add", "pricing", "--title", "Pricing", "--url", "/pricing", "--maturity",
        "decision", "--format", "pricing", "--premium")
    listed = json.loads(run("content", "list", "--json"))
    assert (listed["total"], [i["key"] for i in listed["items"]]) == (2, ["crm-guide",
                                                                         "pricing"])
    assert [i["key"] for i in json.loads(run("content", "list", "--maturity", "decision",
                                             "--json"))["items"]] == ["pricing"]
    assert "crm-guide" in run("content", "list", "--topic", "crm")
    updated = json.loads(run("content", "update", "crm-guide", "--not-premium", "-t", "crm",
                             "--summary", "Start here", "--json"))
    assert (updated["topics"], updated["summary"], updated["premium"]) == (
        ["crm"], "Start here", False)
    assert json.loads(run("content", "update", "crm-guide", "--no-topics",
                          "--json"))["topics"] == []
    assert "nothing to change" in run("content", "update", "crm-guide", code=2)
    assert "archived pricing" in run("content", "archive", "pricing")
    assert [i["key"] for i in json.loads(run("content", "list", "--json"))["items"]] == [
        "crm-guide"]
    assert "ARCHIVED" in run("content", "show", "pricing")
    assert json.loads(run("content", "update", "pricing", "--restore",
                          "--json"))["archived"] is False
    assert "no content item with key 'nope'" in run("content", "show", "nope", code=2)

    good = tmp_path / "catalogue.csv"
    good.write_text("key,title,url,maturity,format,premium,topics\n"
                    "roi,ROI paper,/papers/roi,evaluation,white_paper,yes,roi;finance\n"
                    "bad one,Bad,/bad,evaluation,article,no,\n"
                    "pricing,Pricing (2026),/pricing,decision,pricing,yes,\n")
    out = run("content", "import", str(good), code=1)
    assert "3 rows: created 1, updated 1, unchanged 0, bad 1" in out
    assert "bad line 3 [key]: a key is lower-case letters" in out
    report = json.loads(run("content", "import", str(good), "--json", code=1))
    assert (report["unchanged"], report["bad_rows"][0]["line"]) == (2, 3)
    assert json.loads(run("content", "show", "pricing", "--json"))["title"] == "Pricing (2026)"
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("key,title\nx,X\n")
    assert "line 1, url: the header lacks the column(s) url, maturity, format" in run(
        "content", "import", str(wrong), code=2)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    assert "is not UTF-8 text" in run("content", "import", str(binary), code=2)
    assert "cannot read" in run("content", "import", str(tmp_path / "missing.csv"), code=2)


def test_next_content_and_export_for_a_contact(cli_app: App, tmp_path: Path) -> None:
    for key, maturity, url, topic in [("crm-guide", "discovery", "/guides/crm", "crm"),
                                      ("crm-compare", "evaluation", "/guides/compare", "crm"),
                                      ("pricing", "decision", "/pricing", "price")]:
        run("content", "add", key, "--title", key.title(), "--url", url, "--maturity",
            maturity, "--format", "article", "-t", topic)
    run("users", "add", "rob@sales.example", "-n", "Rob", "-r", "sales_rep", "--no-password")
    run("users", "add", "eve@sales.example", "-n", "Eve", "-r", "sales_rep", "--no-password")
    run("lead", "add", "--email", "ann@acme.example", "--first-name", "Ann", "--reason",
        "met at the fair")
    run("track", "page_view", "--email", "ann@acme.example", "--url",
        "https://acme.example/guides/crm/?utm_source=news")
    found = json.loads(run("contact", "next-content", "ann@acme.example", "--json"))
    assert found["consumed"] == ["crm-guide"]
    assert [r["item"]["key"] for r in found["recommendations"]] == ["crm-compare"]
    text = run("contact", "next-content", "ann@acme.example")
    assert "stage lead (interest), language en; offered discovery and evaluation" in text
    assert "1. crm-compare" in text
    assert "about crm, which it read about before" in text
    run("assign", "ann@acme.example", "--to", "rob@sales.example", "-r", "Rob covers FR")
    assert "not owned by you" in run("contact", "next-content", "ann@acme.example", "--as",
                                     "eve@sales.example", code=2)
    assert "not owned by you" in run("contact", "export", "ann@acme.example", "--as",
                                     "eve@sales.example", code=2)
    printed = json.loads(run("contact", "export", "ann@acme.example", "--as",
                             "rob@sales.example"))
    assert printed["contact"]["email"] == "ann@acme.example"
    assert [c["key"] for c in printed["content_consumed"]] == ["crm-guide"]
    target = tmp_path / "ann.json"
    target.write_text("old")
    target.chmod(0o644)
    assert f"to {target}" in run("contact", "export", "ann@acme.example", "-o", str(target))
    saved = json.loads(target.read_text())
    assert saved["contact"]["first_name"] == "Ann"
    assert any(e["kind"] == "event" and e["properties"].get("url", "").endswith("news")
               for e in saved["timeline"])
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "cannot write" in run("contact", "export", "ann@acme.example", "-o",
                                 str(tmp_path / "no" / "dir.json"), code=2)
    assert "no contact 'who@x.example'" in run("contact", "export", "who@x.example", code=2)
