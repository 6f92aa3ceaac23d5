"""Sales from the command line: users, the queue, accept/reject, tasks, activities, deals,
email in and out, the plan; ``--as`` keeps a rep to their own contacts."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from leadflow.bootstrap import App
from leadflow.entrypoints.cli.base import app as cli
from leadflow.services.events import EventIn, record_event
from tests.conftest import good_fit_contact

runner = CliRunner()


def run(*args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(cli, list(args), input=stdin)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result.stdout + result.stderr


def prospect(app: App, email: str) -> int:
    c = good_fit_contact(app, email=email)
    assert c.id is not None
    record_event(uow=app.uow(), ctx=app.ctx, event=EventIn(type="demo_request", contact_id=c.id))
    return c.id


def test_a_rep_works_their_queue_from_the_command_line(cli_app: App, tmp_path: Path) -> None:
    run("users", "add", "rob@sales.example", "-n", "Rob", "-r", "sales_rep", "-t", "FR",
        stdin="a long enough password\na long enough password\n")
    run("users", "add", "eve@sales.example", "-n", "Eve", "-r", "sales_rep", "-t", "DE",
        "--no-password")
    assert "unknown role 'boss'" in run("users", "add", "x@y.example", "-n", "X", "-r", "boss",
                                        "--no-password", code=2)
    cid = prospect(cli_app, "ann@acme.example")
    queue = json.loads(run("queue", "--as", "rob@sales.example", "--json"))
    assert [p["id"] for p in queue["prospects"]] == [cid]
    [task] = queue["tasks"]
    assert "not owned by you" in run("accept", str(cid), "--as", "eve@sales.example", code=2)
    assert "not yours to see" in run("queue", "--as", "eve@sales.example", "--owner",
                                     "rob@sales.example", code=2)
    run("accept", "ann@acme.example", "--as", "rob@sales.example")
    run("activity", "log", str(cid), "--kind", "call", "--outcome", "reached", "--as",
        "rob@sales.example")
    done = run("task", "done", str(task["id"]), "--outcome", "called", "--as",
               "rob@sales.example")
    assert "next follow-up" in done
    out = run("deal", "create", str(cid), "--name", "Acme seats", "--amount", "9000",
              "--as", "rob@sales.example", "--json")
    deal = json.loads(out)
    assert deal["deal_stage"] == "discovery"
    assert "unknown lost reason 'meh'" in run("deal", "lose", str(deal["id"]), "-r", "meh",
                                              code=2)
    plan = json.loads(run("plan", "--target", "50000", "--capacity", "3", "--budget", "100",
                          "--as", "rob@sales.example", "--json"))
    assert [i["contact_id"] for i in plan["items"]] == [cid]
    assert "customer" not in run("contact", "show", str(cid))
    run("deal", "win", str(deal["id"]), "--as", "rob@sales.example")
    assert json.loads(run("contact", "show", str(cid), "--json"))["stage"] == "customer"

    sent = run("email", "send", str(cid), "--subject", "Welcome", "--text", "Hello Ann",
               "--as", "rob@sales.example")
    assert "sent <" in sent
    assert len(list((cli_app.settings.data_dir / "mail-outbox").glob("*.eml"))) == 1
    reply = tmp_path / "reply.eml"
    reply.write_bytes(b"From: ann@acme.example\nTo: rob@sales.example\nSubject: Re: Welcome\n"
                      b"Message-ID: <r1@acme.example>\n\nThanks!\n")
    assert "logged inbound email on contact" in run("email", "inbound", str(reply))
    assert "already logged" in run("email", "inbound", str(reply))


def test_reassign_reject_and_the_cracks_list(cli_app: App) -> None:
    run("users", "add", "rob@sales.example", "-n", "Rob", "-r", "sales_rep", "--no-password")
    run("users", "add", "eve@sales.example", "-n", "Eve", "-r", "sales_rep", "--no-password",
        "--weight", "0.01")
    run("users", "add", "mia@sales.example", "-n", "Mia", "-r", "sales_manager",
        "--no-password", "--weight", "0.01")
    first, second = prospect(cli_app, "a@acme.example"), prospect(cli_app, "b@acme.example")
    assert "reassign" in run("assign", str(first), "--to", "eve@sales.example", "-r", "x",
                             "--as", "rob@sales.example", code=2)
    run("assign", str(first), "--to", "eve@sales.example", "-r", "Eve knows them")
    assert json.loads(run("queue", "--as", "eve@sales.example", "--json"))["total"] == 1
    run("reject", str(second), "-r", "a student", "--as", "rob@sales.example")
    assert json.loads(run("contact", "show", str(second), "--json"))["stage"] == "lead"
    assert json.loads(run("cracks", "--json")) == {"without_open_task": [], "owner_inactive": [],
                                                   "unassigned": []}
    run("users", "set", "eve@sales.example", "--inactive")
    assert [c["id"] for c in json.loads(run("cracks", "--json"))["owner_inactive"]] == [first]
    run("users", "set", "rob@sales.example", "--away-until", "2030-01-01")
    assert "away until 2030-01-01" in run("users", "list")
    assert "nothing to change" in run("users", "set", "rob@sales.example", code=2)
    assert "handed" not in run("handoff")
