"""One day of nurture for the 1M-contact demo, planned and sent into a local SMTP server,
against plain smtplib sending as many prepared messages to the same server.

    python bench/nurture.py                      # SQLite under bench/data, 1M contacts
    python bench/nurture.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    python bench/nurture.py --limit 20000        # a quick run: send at most 20,000 emails
    python bench/nurture.py --send-only --limit 20000  # send more of what a --limit run left

Builds the demo first when the database holds no contacts (minutes), its sales team when it
holds no users and the content library when that is empty (demos built before it existed).
Starts from a clean nurture state: every row of ``enrollments`` and ``mail_messages`` is
deleted (only those tables), then ANALYZEd (VACUUM ANALYZE on PostgreSQL), so runs repeat;
on PostgreSQL, which runs here without autovacuum, they are ANALYZEd once a minute while the
timed phases fill them, as autovacuum would do.
Times, for one day:
- planning: ``nurture.tick`` (set-based track membership, milestone autoresponders, then each
  due member's step: content chosen, email queued);
- sending: ``send_due`` through ``SmtpMailer`` into an aiosmtpd server in a process of its
  own (it counts and discards), as ``leadflow nurture send`` does;
- the baseline: plain smtplib over one connection, sending as many prepared messages (bytes
  built beforehand from messages leadflow rendered) to the same server.
Planning and sending run once each (a day's send empties the queue it sends from).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import smtplib
import socket
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, text

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.repositories import SqlUnitOfWork
from leadflow.adapters.mail.senders import SmtpMailer, build_message
from leadflow.adapters.mail.templates import JinjaRenderer
from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.demo.content_library import install_content
from leadflow.demo.install import install_demo
from leadflow.demo.sales_team import install_sales_team
from leadflow.domain.ports import OutgoingMail
from leadflow.entrypoints.cli.output import RichProgress
from leadflow.services import nurture
from leadflow.services.mail_sending import Postage, SendReport, send_due

PROGRESS_SECONDS = 15.0
AUTOANALYZE_SECONDS = 60.0  # autovacuum's naptime: how often it would ANALYZE a growing table
SAMPLE = 2000  # rendered messages kept for the baseline to send (cycled)


# --- the SMTP server, in a process of its own -------------------------------------------------

class Counter:
    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        self.bytes += len(envelope.content)
        return "250 OK"


def serve(port: int, ready: EventType, stop: EventType, results: Any, parent: int) -> None:
    from aiosmtpd.controller import Controller

    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while not stop.wait(1.0) and os.getppid() == parent:  # ends with the bench if killed
        pass
    controller.stop()
    results.put((counter.messages, counter.bytes))


def free_port() -> int:
    with socket.socket() as probe:  # aiosmtpd checks readiness by connecting: no port 0
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- helpers -----------------------------------------------------------------------------------

class Ticker:
    """Prints a progress line at most every PROGRESS_SECONDS."""

    def __init__(self, phase: str) -> None:
        self.phase = phase
        self.start = self.last = time.perf_counter()

    def __call__(self, line: Callable[[], str]) -> None:
        now = time.perf_counter()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            print(f"  {self.phase}: {line()} ({now - self.start:.0f} s)", flush=True)


class Autoanalyze:
    """On PostgreSQL, ANALYZE the nurture tables once a minute while they fill, as autovacuum
    would: this server runs without it, and plans psycopg prepared while ``mail_messages`` was
    empty would otherwise seq-scan it for every member and every email (quadratic). The
    ANALYZEs run in the timed phases (a few hundred ms each)."""

    def __init__(self, app: App) -> None:
        self.app, self.last, self.runs = app, time.perf_counter(), 0

    def __call__(self) -> None:
        if self.app.engine.dialect.name != "postgresql":
            return
        if time.perf_counter() - self.last >= AUTOANALYZE_SECONDS:
            with self.app.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE enrollments, mail_messages"))
            self.last = time.perf_counter()
            self.runs += 1


class Watched:
    """The mailer leadflow sends through, counted for progress; keeps a sample of what went
    (for the baseline to send the same kind of messages)."""

    def __init__(self, mailer: SmtpMailer, ticker: Ticker, autoanalyze: Autoanalyze) -> None:
        self.mailer, self.ticker, self.autoanalyze = mailer, ticker, autoanalyze
        self.sent = 0
        self.sample: list[OutgoingMail] = []

    def send(self, mail: OutgoingMail) -> None:
        self.mailer.send(mail)
        self.sent += 1
        if len(self.sample) < SAMPLE:
            self.sample.append(mail)
        self.ticker(lambda: f"{self.sent:,} emails sent")
        self.autoanalyze()

    def forget(self, message_ids: Sequence[str]) -> None:
        self.mailer.forget(message_ids)


def count(app: App, table: Any) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def analyze(app: App, tables: Sequence[str]) -> None:
    """Fresh planner statistics for tables just emptied or filled (PostgreSQL here runs with
    autovacuum off)."""
    if app.engine.dialect.name == "postgresql":
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in tables:
                conn.execute(text(f"VACUUM ANALYZE {name}"))
    else:
        with app.engine.begin() as conn:
            for name in tables:
                conn.execute(text(f"ANALYZE {name}"))


def analyzed(autoanalyze: Autoanalyze) -> str:
    return f"; ANALYZEd {autoanalyze.runs} time(s) meanwhile" if autoanalyze.runs else ""


def prepare(app: App, args: argparse.Namespace) -> None:
    if count(app, t.contacts) == 0:
        start = time.perf_counter()
        totals = install_demo(app, contacts=args.contacts, seed=7, progress=RichProgress())
        print(f"demo: {totals['contacts']:,} contacts in {time.perf_counter() - start:.0f} s")
    if count(app, t.users) == 0:
        install_sales_team(app, seed=7)
    added = install_content(app)
    if added["content_items"]:
        print(f"installed the demo content library: {added['content_items']} items, "
              f"{added['forms']} forms")
    with app.engine.begin() as conn:  # a clean nurture state: only these two tables
        conn.execute(delete(t.mail_messages))
        conn.execute(delete(t.enrollments))
    analyze(app, ["enrollments", "mail_messages"])


def plan(app: App, autoanalyze: Autoanalyze) -> tuple[float, nurture.NurtureReport]:
    ticker = Ticker("planning")
    units = 0

    def uow() -> SqlUnitOfWork:  # tick opens one unit to sync, then one per batch of members
        nonlocal units
        units += 1
        ticker(lambda: f"{max(units - 2, 0) * 500:,} members' steps run")
        autoanalyze()
        return app.uow()

    start = time.perf_counter()
    report = nurture.tick(uow=uow, ctx=app.ctx)
    return time.perf_counter() - start, report


def send(app: App, mailer: Watched, limit: int | None) -> tuple[float, SendReport]:
    postage = Postage(mailer=mailer, renderer=JinjaRenderer(), links=app.links,
                      sender=app.settings.mail_from, company=app.settings.company_name)
    start = time.perf_counter()
    if limit is None:
        report = send_due(uow=app.uow, ctx=app.ctx, postage=postage)
    else:  # batch by batch, as send_due does, until `limit` went or nothing is due
        report, batch = SendReport(), 200
        while report.sent < limit:
            one = send_due(uow=app.uow, ctx=app.ctx, postage=postage, max_batches=1,
                           batch_size=min(batch, limit - report.sent))
            report.sent += one.sent
            report.skipped += one.skipped
            report.held += one.held
            report.retried += one.retried
            report.failed += one.failed
            for reason, n in one.reasons.items():
                report.reasons[reason] = report.reasons.get(reason, 0) + n
            if not (one.sent or one.skipped or one.held or one.retried or one.failed):
                break
    return time.perf_counter() - start, report


def baseline(port: int, sample: list[OutgoingMail], n: int) -> float:
    """Plain smtplib, one connection, ``n`` messages prepared beforehand (as bytes)."""
    prepared = []
    for m in sample:
        message = build_message(m)  # as smtplib's send_message flattens it: CRLF line ends
        prepared.append((m.sender, [m.to],
                         message.as_bytes(policy=message.policy.clone(linesep="\r\n"))))
    ticker = Ticker("baseline")
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(n):
            sender, to, raw = prepared[i % len(prepared)]
            smtp.sendmail(sender, to, raw)
            ticker(lambda: f"{i + 1:,} emails sent")  # noqa: B023 - called right away
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=None,
                        help="send at most this many emails (default: the whole day)")
    parser.add_argument("--send-only", action="store_true",
                        help="keep the queue a --limit run left and only time sending it")
    args = parser.parse_args()
    app = App(Settings(data_dir=Path(__file__).parent / "data",
                       database_url=args.database_url))
    if args.send_only:
        analyze(app, ["mail_messages"])
    else:
        prepare(app, args)
    print(f"{app.engine.dialect.name}: {count(app, t.contacts):,} contacts; "
          f"{count(app, t.content_items)} content items", flush=True)

    context = mp.get_context("spawn")
    port = free_port()
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    server = context.Process(target=serve, args=(port, ready, stop, results, os.getpid()),
                             daemon=True)
    server.start()
    if not ready.wait(30):
        sys.exit("the SMTP server did not start")
    try:
        plan_s = 0.0
        if not args.send_only:
            autoanalyze = Autoanalyze(app)
            plan_s, planned = plan(app, autoanalyze)
            print(f"planning: {plan_s:.1f} s; {planned.entered:,} members entered, "
                  f"{planned.advanced:,} steps run, {planned.queued:,} emails queued by "
                  f"tracks, {planned.autoresponses:,} by autoresponders, "
                  f"{planned.nothing_to_send:,} with nothing to send"
                  f"{analyzed(autoanalyze)}", flush=True)
            analyze(app, ["enrollments", "mail_messages"])  # not timed

        smtp = SmtpMailer(host="127.0.0.1", port=port, username=None, password=None,
                          starttls=False)
        watched = Watched(smtp, Ticker("sending"), Autoanalyze(app))
        send_s, sent = send(app, watched, args.limit)
        smtp.close()
        rate = sent.sent / send_s if send_s else 0.0
        print(f"sending: {sent.sent:,} emails in {send_s:.1f} s = {rate:,.0f} emails/s "
              f"({sent.skipped:,} skipped, {sent.held:,} held, {sent.retried:,} retried, "
              f"{sent.failed:,} failed){' ' + str(sent.reasons) if sent.reasons else ''}"
              f"{analyzed(watched.autoanalyze)}", flush=True)
        if not sent.sent:
            sys.exit("nothing was sent: no baseline to compare with")

        base_s = baseline(port, watched.sample, sent.sent)
        base_rate = sent.sent / base_s
        print(f"baseline, plain smtplib over one connection: {sent.sent:,} prepared emails "
              f"in {base_s:.1f} s = {base_rate:,.0f} emails/s")
        print(f"send ratio to baseline: {send_s / base_s:.1f}x the time "
              f"({rate / base_rate:.2f} of its rate)")
        if not args.send_only:
            print(f"one day (plan + send): {plan_s + send_s:.1f} s for {sent.sent:,} emails"
                  f"{'' if args.limit is None else ' (sending capped by --limit)'}")
    finally:
        stop.set()
    received, size = results.get(timeout=60)
    server.join(10)
    print(f"server received {received:,} messages ({size / max(received, 1) / 1024:.1f} KiB "
          "on average)")


if __name__ == "__main__":
    main()
