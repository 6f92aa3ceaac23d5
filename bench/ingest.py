"""Tracking ingestion through the HTTP API, against a raw bulk insert of the same rows.

    python bench/ingest.py                          # SQLite, 1,000,000 events in batches of 100
    python bench/ingest.py --events 200000          # a shorter run
    python bench/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

What it does, in one run (these machines are shared and noisy, so the baseline is measured
in the same run as the thing it is compared with):

1. Builds a fresh database: a SQLite file in a work directory (default under bench/data/,
   removed at the end unless --keep), or, with --database-url, two new databases on that
   PostgreSQL server (dropped at the end unless --keep). Creates a public write key.
2. Generates realistic Segment messages (page views, track calls and identifies over
   --visitors anonymous visitors, some of whom identify and then carry a userId; page
   context, user agent, UTM campaigns), written as request bodies of --batch messages. By
   default their times are in the order they happen, one in 50 late (hours to days, as
   from a device that was offline); --order shuffled spreads them over 14 days in any order,
   the worst case, where most of a returning visitor's events are older than one stored.
3. Starts ``leadflow serve --no-worker`` as a subprocess with the tracking rate limit off
   (LEADFLOW_TRACKING_RATE_LIMIT=0), and streams every body once through POST /v1/batch with
   ``wrk`` (Debian's package: ``apt-get install -y wrk``) from a separate process: a Lua
   script cycles through the pre-generated bodies, each wrk thread its own share, and stops
   once all are sent and answered. Prints events/s (events stored over the span of their
   server-side arrival times, ``events.received_at``) and the p50/p99 request latency wrk
   measured; also how many events were stored and how many answers were not 200 (a
   request on a connection the server closed after a 500 is lost by wrk: it shows as
   unanswered).
4. A single-event run: --single requests of one message each (POST /v1/page, /v1/track,
   /v1/identify), by default over one connection; prints p50/p99.
5. Stops the server, reads back the rows the batch run stored in ``events``, and times their
   raw bulk insert into the ``events`` table of another fresh database migrated the same way
   (same indexes, same SQLite pragmas): SQLite ``executemany`` in one transaction, PostgreSQL
   binary COPY via psycopg. Prints rows/s and the ratio of the HTTP rate to it.

Scoring, identity resolution and stage evaluation are all part of the HTTP figure; the
embedded worker is off (the outbox is only written, not relayed). Not run in CI.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from leadflow.adapters.db import tables as t
from leadflow.adapters.db.engine import make_engine, migrate

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent / "leadflow"
LEADFLOW = ([str(BIN)] if BIN.exists() else
            [sys.executable, "-c", "from leadflow.entrypoints.cli.app import main; main()"])

# wrk: each thread loads its own file of "path<TAB>body" lines, sends each line once, and
# when every one of its requests has been answered writes a marker file and stops. wrk's
# main thread only stops at -d or SIGINT, which the parent sends when all markers are there.
LUA = r"""
-- Each thread sends each line of its own file once ("path<TAB>body"), then idles on
-- GET /t.js every 100 ms. Its work is done once every line is sent and no tracking answer
-- has come for 2 s: it writes a marker file and stops. (wrk's main thread only stops at -d
-- or SIGINT, which the parent sends when every thread's marker is there.)
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  dir = args[1]
  headers = {["Content-Type"] = "application/json", ["Authorization"] = args[2]}
  lines = {}
  for line in io.lines(dir .. "/requests-" .. id .. ".tsv") do lines[#lines + 1] = line end
  sent, answered, failed, finished, last = 0, 0, 0, false, os.time()
  -- wrk calls request() once on thread 0 to check the script: that one is not sent.
  checking = (id == 0)
end

function request()
  if checking then
    checking = false
    return wrk.format("GET", "/t.js")
  end
  if sent >= #lines then
    return wrk.format("GET", "/t.js")
  end
  sent = sent + 1
  local line = lines[sent]
  local tab = line:find("\t", 1, true)
  return wrk.format("POST", line:sub(1, tab - 1), headers, line:sub(tab + 1))
end

function delay()
  if sent >= #lines then return 100 end
  return 0
end

function response(status, hdrs, body)
  if body:find("leadflow first-party", 1, true) then  -- idle
    if sent >= #lines and not finished and os.difftime(os.time(), last) >= 2 then
      finished = true
      local f = io.open(dir .. "/done-" .. id, "w")
      f:write(answered .. " " .. failed .. " " .. #lines .. "\n")
      f:close()
      wrk.thread:stop()
    end
    return
  end
  answered = answered + 1
  last = os.time()
  if status ~= 200 then failed = failed + 1 end
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,' ..
    '"timeouts":%d}\n',
    summary.requests, latency:percentile(50.0), latency:percentile(90.0),
    latency:percentile(99.0), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout))
end
"""

PAGES = [("/", "Home"), ("/pricing", "Pricing"), ("/product", "Product"),
         ("/docs/getting-started", "Getting started"), ("/blog/lead-scoring", "Lead scoring"),
         ("/customers", "Customers"), ("/integrations", "Integrations"),
         ("/demo", "Book a demo"), ("/careers", "Careers"), ("/security", "Security")]
EVENTS: list[tuple[str, dict[str, Any]]] = [("Signed Up", {}), ("Demo Requested", {"plan": "pro"}),
          ("Whitepaper Downloaded", {"content_stage": "consideration", "premium": True}),
          ("Webinar Registered", {"content_stage": "awareness"}),
          ("Trial Started", {"plan": "team"}), ("Form Submitted", {"form_id": "contact"}),
          ("Video Played", {"video": "overview"}), ("Pricing Viewed", {})]
CAMPAIGNS = [{"source": "google", "medium": "cpc", "name": "brand"},
             {"source": "newsletter", "medium": "email", "name": "spring-launch"},
             {"source": "linkedin", "medium": "social", "name": "cto-webinar"}]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class Traffic:
    """Messages from a population of visitors: a few are busy, most come a few times; about
    one in five identifies (once) and carries a userId afterwards.

    ``order="arrival"`` (the default): messages are made in the order they happen, as SDKs
    send them, a few seconds before their batch is sent (its ``sentAt``), but for one in 50,
    from a device that was offline, hours to days late. ``order="shuffled"``: any message
    may be from any time in the last 14 days (most of a returning visitor's events arrive
    late, older than one already stored: the worst case, a contact replayed per event).
    """

    def __init__(self, visitors: int, seed: int, order: str = "arrival") -> None:
        self.rng = random.Random(seed)
        self.visitors = [uuid.UUID(int=self.rng.getrandbits(128)).hex for _ in range(visitors)]
        self.identified: dict[int, str] = {}
        self.now = time.time()
        self.order = order
        self.clock = self.now - 86400.0  # arrival order: the day before the run, onwards
        self.counter = 0

    def timestamp(self) -> float:
        rng = self.rng
        if self.order == "shuffled":
            return self.now - rng.uniform(60, 14 * 86400)
        self.clock += rng.expovariate(50.0)  # about 50 messages a second
        if rng.random() < 0.02:
            return self.clock - rng.uniform(3600, 3 * 86400)
        return self.clock

    def sent_at(self) -> float:
        """When a batch made of the messages so far is sent."""
        if self.order == "shuffled":
            return self.now
        return self.clock + self.rng.uniform(0.5, 10)

    def message(self, prefix: str) -> dict[str, Any]:
        rng = self.rng
        who = int(len(self.visitors) * rng.random() ** 1.6)
        self.counter += 1
        ts = self.timestamp()
        path, title = rng.choice(PAGES)
        url = f"https://www.acme-saas.example{path}"
        context: dict[str, Any] = {
            "page": {"url": url, "path": path, "title": title,
                     "referrer": rng.choice(["", "https://www.google.com/",
                                             "https://news.example/"])},
            "userAgent": rng.choice(AGENTS), "ip": f"203.0.113.{rng.randrange(1, 255)}",
            "library": {"name": "analytics.js", "version": "next-1.70.0"}, "locale": "en-US"}
        if rng.random() < 0.2:
            context["campaign"] = rng.choice(CAMPAIGNS)
        message: dict[str, Any] = {"messageId": f"{prefix}-{self.counter}",
                                   "anonymousId": self.visitors[who], "timestamp": iso(ts),
                                   "context": context}
        if who in self.identified:
            message["userId"] = self.identified[who]
        roll = rng.random()
        if roll < 0.012 and who not in self.identified and who % 5 == 0:
            user_id = f"user-{who}"
            self.identified[who] = user_id
            message |= {"type": "identify", "userId": user_id,
                        "traits": {"email": f"visitor{who}@corp{who % 997}.example",
                                   "firstName": "Sam", "lastName": f"Doe{who}",
                                   "title": rng.choice(["CTO", "VP Engineering",
                                                        "Developer", "Head of Sales"])}}
        elif roll < 0.32:
            event, properties = rng.choice(EVENTS)
            message |= {"type": "track", "event": event,
                        "properties": {**properties, "url": url}}
        else:
            message |= {"type": "page", "name": title,
                        "properties": {"url": url, "path": path, "title": title}}
        return message


def write_requests(directory: Path, lines: Iterator[str], threads: int) -> int:
    """Spread request lines round-robin over one file per wrk thread; how many lines."""
    directory.mkdir(parents=True, exist_ok=True)
    files = [open(directory / f"requests-{i}.tsv", "w") for i in range(threads)]  # noqa: SIM115
    count = 0
    try:
        for count, line in enumerate(lines, 1):
            files[count % threads].write(line + "\n")
    finally:
        for f in files:
            f.close()
    return count


def batch_lines(traffic: Traffic, events: int, batch: int) -> Iterator[str]:
    for start in range(0, events, batch):
        messages = [traffic.message("b") for _ in range(min(batch, events - start))]
        body = {"batch": messages, "sentAt": iso(traffic.sent_at())}
        yield "/v1/batch\t" + orjson.dumps(body).decode()


def single_lines(traffic: Traffic, count: int) -> Iterator[str]:
    for _ in range(count):
        message = traffic.message("s")
        message["sentAt"] = iso(traffic.sent_at())
        yield f"/v1/{message['type']}\t" + orjson.dumps(message).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    def __init__(self, database_url: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "serve.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
        self.env |= {"LEADFLOW_DATABASE_URL": database_url,
                     "LEADFLOW_DATA_DIR": str(workdir / "data"),
                     "LEADFLOW_TRACKING_RATE_LIMIT": "0"}
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        return subprocess.run([*LEADFLOW, *args], env=self.env, check=True, text=True,
                              capture_output=True).stdout

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*LEADFLOW, "serve", "--no-worker", "--host", "127.0.0.1",
                 "--port", str(self.port)], env=self.env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        with httpx.Client(timeout=5) as client:
            while True:
                if self.proc.poll() is not None:
                    sys.exit(f"leadflow serve exited; see {self.log}")
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    sys.exit(f"leadflow serve did not come up; see {self.log}")
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def run_wrk(server: Server, directory: Path, *, threads: int, connections: int,
            auth: str) -> tuple[float, dict[str, Any], list[tuple[int, int]]]:
    """Stream every request line once; (wall seconds, wrk's figures, per thread
    (answered, failed))."""
    script = directory / "stream.lua"
    script.write_text(LUA)
    for marker in directory.glob("done-*"):
        marker.unlink()
    started = time.monotonic()
    with open(directory / "wrk.out", "w") as out:
        proc = subprocess.Popen(
            ["wrk", f"-t{threads}", f"-c{max(connections, threads)}", "-d3600s",
             "--timeout", "60s", "-s", str(script), server.url, "--", str(directory), auth],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            while len(list(directory.glob("done-*"))) < threads:
                if proc.poll() is not None:
                    break
                if time.monotonic() - started > 3500:
                    print("wrk did not finish in time; stopping it", file=sys.stderr)
                    break
                time.sleep(0.05)
            wall = time.monotonic() - started
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = (directory / "wrk.out").read_text()
    figures = next((json.loads(line) for line in reversed(output.splitlines())
                    if line.startswith("{")), None)
    if figures is None:
        sys.exit(f"wrk printed no figures:\n{output}")
    counts = [tuple(int(x) for x in (directory / f"done-{i}").read_text().split()[:2])
              for i in range(threads) if (directory / f"done-{i}").exists()]
    return wall, figures, counts  # type: ignore[return-value]


def fresh_databases(url: str | None, workdir: Path) -> tuple[str, str, Any]:
    """(served database, raw-insert database, cleanup)."""
    if url is None or make_url(url).get_backend_name() == "sqlite":
        return (f"sqlite:///{workdir / 'served.db'}", f"sqlite:///{workdir / 'raw.db'}",
                lambda: None)
    tag = uuid.uuid4().hex[:8]
    names = [f"leadflow_bench_{tag}", f"leadflow_bench_raw_{tag}"]
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    base = make_url(url)
    served, raw = (base.set(database=n).render_as_string(hide_password=False) for n in names)
    return served, raw, drop


ROW_COLUMNS = ("contact_id", "ts", "shape_id", "message_id", "properties", "received_at")


def stored_rows(engine: Engine, prefix: str) -> tuple[list[tuple[Any, ...]],
                                                      list[dict[str, Any]]]:
    """The events a run stored (properties as JSON text), and the event shapes."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            query = text("SELECT contact_id, ts, shape_id, message_id, properties::text, "
                         "received_at FROM events WHERE message_id LIKE :p ORDER BY id")
        else:
            query = text("SELECT contact_id, ts, shape_id, message_id, properties, "
                         "received_at FROM events WHERE message_id LIKE :p ORDER BY id")
        rows = [tuple(r) for r in conn.execute(query, {"p": f"{prefix}-%"})]
        shapes = [dict(r._mapping) for r in conn.execute(select(t.event_shapes))]
    return rows, shapes


def raw_insert(url: str, rows: list[tuple[Any, ...]], shapes: list[dict[str, Any]]) -> float:
    """Seconds to bulk insert the rows into a freshly migrated database's events table."""
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(insert(t.event_shapes), shapes)
    raw = engine.raw_connection()
    try:
        dbapi: Any = raw.driver_connection
        columns = ", ".join(ROW_COLUMNS)
        if engine.dialect.name == "postgresql":
            start = time.perf_counter()
            with dbapi.cursor() as cur, cur.copy(
                    f"COPY events ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                # json's binary form is its text: the pre-serialized properties go as is.
                copy.set_types(["int4", "float8", "int4", "varchar", "text", "float8"])
                for row in rows:
                    copy.write_row(row)
            dbapi.commit()
            return time.perf_counter() - start
        start = time.perf_counter()
        cur = dbapi.cursor()
        cur.executemany(f"INSERT INTO events ({columns}) VALUES (?, ?, ?, ?, ?, ?)", rows)
        dbapi.commit()
        cur.close()
        return time.perf_counter() - start
    finally:
        raw.close()
        engine.dispose()


def count_events(engine: Engine, prefix: str) -> tuple[int, float, float]:
    with engine.connect() as conn:
        n, first, last = conn.execute(
            select(func.count(), func.min(t.events.c.received_at),
                   func.max(t.events.c.received_at))
            .where(t.events.c.message_id.like(f"{prefix}-%"))).one()
    return int(n), float(first or 0), float(last or 0)


def report(stored: int, expected: int, what: str, answers: list[tuple[int, int]],
           requests: int, figures: dict[str, Any]) -> None:
    answered = sum(a for a, _ in answers)
    failed = sum(f for _, f in answers)
    errors = {k: v for k, v in figures.items()
              if k.endswith(("errors", "timeouts")) and v and k != "status_errors"}
    print(f"  {stored:,} of {expected:,} {what} stored; {answered:,} of {requests:,} requests "
          f"answered, {failed:,} of them not 200" + (f"; wrk: {errors}" if errors else ""))
    print(f"  request latency p50 {figures['p50_us'] / 1000:.1f} ms, "
          f"p90 {figures['p90_us'] / 1000:.1f} ms, p99 {figures['p99_us'] / 1000:.1f} ms, "
          f"max {figures['max_us'] / 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100, help="messages per request")
    parser.add_argument("--visitors", type=int, default=50_000)
    parser.add_argument("--single", type=int, default=20_000,
                        help="requests of the single-event run (0: skip it)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server: two fresh databases are made on it")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections (batches)")
    parser.add_argument("--single-connections", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--order", choices=("arrival", "shuffled"), default="arrival",
                        help="message times: in the order they happen, 1 in 50 late "
                             "(default), or any time in 14 days (every return visit late)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="default: a new directory under bench/data/")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and databases")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")

    if args.workdir is None:
        (HERE / "data").mkdir(exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="ingest-", dir=HERE / "data"))
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    served_url, raw_url, drop = fresh_databases(args.database_url, workdir)
    server = Server(served_url, workdir)
    engine = make_engine(served_url)
    try:
        dialect = make_url(served_url).get_backend_name()
        print(f"database: {dialect}; work dir: {workdir}")
        key = server.cli("keys", "create", "bench", "--public").strip().splitlines()[-1]
        auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()

        started = time.perf_counter()
        traffic = Traffic(args.visitors, args.seed, args.order)
        batches = write_requests(workdir / "batches",
                                 batch_lines(traffic, args.events, args.batch), args.threads)
        singles = write_requests(workdir / "singles", single_lines(traffic, args.single),
                                 1) if args.single else 0
        size = sum(f.stat().st_size for f in (workdir / "batches").glob("*.tsv"))
        print(f"generated {args.events:,} messages in {batches:,} bodies "
              f"({size / 2**20:.0f} MiB; {len(traffic.identified):,} visitors identify) "
              f"and {singles:,} single messages in {time.perf_counter() - started:.1f} s")

        server.start()
        _, figures, answers = run_wrk(server, workdir / "batches", threads=args.threads,
                                      connections=args.connections, auth=auth)
        stored, first, last = count_events(engine, "b")
        rate = stored / (last - first) if last > first else float("nan")
        print(f"\nbatches of {args.batch} messages over {args.connections} connections:")
        report(stored, args.events, "events", answers, batches, figures)
        print(f"  {rate:,.0f} events/s (stored events over the {last - first:.1f} s "
              "span of their arrival times)")

        if singles:
            _, single_figures, answers = run_wrk(
                server, workdir / "singles", threads=1, connections=args.single_connections,
                auth=auth)
            stored_single, first, last = count_events(engine, "s")
            print(f"\nsingle events over {args.single_connections} connection(s):")
            report(stored_single, singles, "events", answers, singles, single_figures)
            if last > first:
                print(f"  {stored_single / (last - first):,.0f} requests/s")
        server.stop()

        rows, shapes = stored_rows(engine, "b")
        seconds = raw_insert(raw_url, rows, shapes)
        raw_rate = len(rows) / seconds
        how = "binary COPY" if dialect == "postgresql" else "executemany"
        print(f"\nraw bulk insert ({how}) of the same {len(rows):,} rows into a fresh events "
              f"table with the same indexes: {raw_rate:,.0f} rows/s ({seconds:.1f} s)")
        print(f"ratio HTTP ingestion / raw insert: {rate / raw_rate:.3f}")
    finally:
        server.stop()
        engine.dispose()
        if not args.keep:
            drop()
            if args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
