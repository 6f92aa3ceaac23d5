"""`leadflow forms add|list|show|update` as a marketer meets them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from leadflow.bootstrap import App
from leadflow.entrypoints.cli import app as _registers_every_command  # noqa: F401
from leadflow.entrypoints.cli.base import app as cli

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result.stdout + result.stderr


def test_a_marketer_adds_lists_shows_and_updates_a_form(cli_app: App) -> None:
    run("content", "add", "crm-guide", "--title", "The CRM guide", "--url", "/crm-guide.pdf",
        "--maturity", "evaluation", "--format", "white_paper", "--premium")
    out = run("forms", "add", "crm-guide", "--name", "CRM guide", "--headline",
              "Get the guide", "--item", "crm-guide", "-f", "company", "-f", "title",
              "-f", "budget", "--max-fields", "2", "--newsletter")
    assert "page: http://127.0.0.1:8000/p/crm-guide" in out
    assert "gates: crm-guide" in out
    assert "asks: at most 2 of company, title, budget" in out
    listed = json.loads(run("forms", "list", "--json"))
    assert [(f["key"], f["item_key"], f["newsletter"]) for f in listed] == [
        ("crm-guide", "crm-guide", True)]
    assert "CRM guide" in run("forms", "list")
    out = run("forms", "update", "crm-guide", "--inactive", "--no-item", "--default-fields")
    assert "inactive: the page answers 404" in out
    assert "gates: nothing" in out
    assert "(the configuration's)" in out
    shown = json.loads(run("forms", "show", "crm-guide", "--json"))
    assert (shown["active"], shown["item_key"], shown["fields"], shown["max_fields"]) == (
        False, None, [], 2)
    assert shown["asks"] == ["company", "title", "company_size", "timeline", "budget"]


def test_mistakes_are_one_line_naming_the_field(cli_app: App) -> None:
    out = run("forms", "add", "guide", "--name", "G", "--item", "nope", code=2)
    assert "item_key: no content item 'nope' to gate" in out
    out = run("forms", "add", "guide", "--name", "G", "-f", "shoe_size", code=2)
    assert "fields: unknown field 'shoe_size'" in out
    out = run("forms", "show", "nope", code=2)
    assert "key: no form 'nope'" in out
    assert run("forms", "list", "--json").strip() == "[]"
