"""Benchmark ``ticketd report`` over 100,000 tickets and 500,000 messages.

Builds the history with bulk inserts (sqlite3 ``executemany``; PostgreSQL ``COPY``): tickets over
the last 60 days in five teams and twenty agents, most answered and resolved, some rated, 1.5 tags
each, five messages each; business hours Monday to Friday 09:00-17:00 in Europe/Berlin. Then times

- ``ticketd report --format json --since 60d`` as a subprocess (every ticket is in the window),
  and ``--since 30d``, end to end (interpreter start, config, rules, queries, rendering);
- the report's queries alone, in this process;
- two baselines: ``SELECT COUNT(*) FROM message``, and fetching every ticket and message row into
  Python (what a report that aggregates in Python would have to do before computing anything).

    .venv/bin/python bench/report.py [--tickets 100000] [--messages 5] [--pg [ADMIN_DSN]]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maild.app import App  # noqa: E402
from maild.config import load_config  # noqa: E402
from maild.reports.build import load_business_hours, make_report, report_zone  # noqa: E402
from maild.reports.period import resolve_period  # noqa: E402

HOURS = (
    "business_hours:\n  timezone: Europe/Berlin\n  week: {mon-fri: '09:00-17:00'}\n"
    "  holidays: [2026-12-24, 2026-12-25, 2026-12-26, 2027-01-01]\n"
)
TEAMS = ("billing", "tech", "sales", "returns", None)
AGENTS = (*(f"agent{i}@example.com" for i in range(20)), None)
TAGS = tuple(f"tag{i:02d}" for i in range(30))
TICKET_COLS = (
    "id",
    "subject",
    "status",
    "priority",
    "team",
    "assignee",
    "requester_id",
    "support_address",
    "spam",
    "created_at",
    "updated_at",
    "first_response_at",
    "resolved_at",
    "first_response_due",
    "resolution_due",
    "satisfaction_rating",
)
MESSAGE_COLS = (
    "ticket_id",
    "direction",
    "kind",
    "message_id",
    "dedup_key",
    "from_addr",
    "from_name",
    "to_addrs",
    "cc_addrs",
    "subject",
    "body",
    "full_text",
    "in_reply_to",
    "references",
    "classification",
    "created_at",
)


def history(n: int, per_ticket: int, now: dt.datetime) -> tuple[list, list, list]:
    """Rows for tickets, tags and messages; times are naive UTC, deterministic (seeded)."""
    rnd = random.Random(8)
    tickets, tags, messages = [], [], []
    span = 60 * 86400
    for tid in range(1, n + 1):
        created = now - dt.timedelta(seconds=rnd.uniform(60, span))
        fr = created + dt.timedelta(minutes=rnd.lognormvariate(4.5, 1.2))
        fr = fr if rnd.random() < 0.92 and fr < now else None
        resolved = created + dt.timedelta(hours=rnd.lognormvariate(3.0, 1.3))
        resolved = resolved if fr and rnd.random() < 0.85 and resolved < now else None
        rating = rnd.randint(1, 5) if resolved and rnd.random() < 0.3 else None
        tickets.append(
            (
                tid,
                f"Question {tid}",
                "resolved" if resolved else "open",
                "normal",
                rnd.choice(TEAMS),
                rnd.choice(AGENTS),
                1,
                "support@example.com",
                False,
                created,
                resolved or fr or created,
                fr,
                resolved,
                created + dt.timedelta(hours=8),
                created + dt.timedelta(days=3),
                rating,
            )
        )
        for tag in rnd.sample(TAGS, rnd.choice((1, 1, 2))):
            tags.append((tid, tag))
        at = created
        for i in range(per_ticket):
            inbound = i % 2 == 0
            # Half the resolved tickets' last outbound message is a satisfaction survey.
            kind = "survey" if i == 3 and resolved and tid % 2 else "agent"
            messages.append(
                (
                    tid,
                    "in" if inbound else "out",
                    "customer" if inbound else kind,
                    f"b{tid}.{i}@bench.test",
                    f"mid:b{tid}.{i}@bench.test",
                    "c@customer.test" if inbound else "agent0@example.com",
                    "",
                    "[]",
                    "[]",
                    f"Question {tid}",
                    "Hello, a short body.",
                    "Hello, a short body.",
                    "",
                    "",
                    "human",
                    at,
                )
            )
            at = min(at + dt.timedelta(minutes=rnd.uniform(5, 600)), now)
    return tickets, tags, messages


def fill_sqlite(path: Path, rows: tuple[list, list, list]) -> None:
    import sqlite3

    tickets, tags, messages = rows
    conn = sqlite3.connect(path)
    text = lambda v: v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v  # noqa: E731
    with conn:
        conn.execute(
            "INSERT INTO contact (email, name, created_at) VALUES ('c@customer.test', '', "
            "'2026-01-01 00:00:00')"
        )
        conn.executemany(
            _insert("ticket", TICKET_COLS, "?"), ([text(v) for v in r] for r in tickets)
        )
        conn.executemany("INSERT INTO ticket_tag (ticket_id, tag) VALUES (?, ?)", tags)
        conn.executemany(
            _insert("message", MESSAGE_COLS, "?"), ([text(v) for v in r] for r in messages)
        )
    conn.execute("ANALYZE")
    conn.close()


def fill_postgres(url: str, rows: tuple[list, list, list]) -> None:
    import psycopg

    tickets, tags, messages = rows
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO contact (email, name, created_at) VALUES "
            "('c@customer.test', '', '2026-01-01')"
        )
        for table, cols, data in (
            ("ticket", TICKET_COLS, tickets),
            ("ticket_tag", ("ticket_id", "tag"), tags),
            ("message", MESSAGE_COLS, messages),
        ):
            names = ", ".join(f'"{c}"' for c in cols)
            with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in data:
                    copy.write_row(row)
        cur.execute("SELECT setval('ticket_id_seq', (SELECT MAX(id) FROM ticket))")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def _insert(table: str, cols: tuple[str, ...], mark: str) -> str:
    names = ", ".join(f'"{c}"' for c in cols)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join([mark] * len(cols))})"


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def cli(config: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "maild.cli.main", "report", "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(done.stdout)


def naive_load(app: App) -> int:
    """Every ticket and message row fetched into Python, as a Python aggregation would need."""
    db = app.db
    rows = db.execute_sql(
        "SELECT id, team, assignee, created_at, first_response_at, resolved_at, closed_at, "
        "first_response_due, resolution_due, satisfaction_rating, spam FROM ticket"
    ).fetchall()
    rows += db.execute_sql("SELECT ticket_id, direction, kind, created_at FROM message").fetchall()
    return len(rows)


@contextlib.contextmanager
def postgres_db(admin_dsn: str) -> Iterator[str]:
    import psycopg

    name = f"ticketd_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(admin_dsn, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        host = admin_dsn.rsplit("/", 1)[0]
        yield f"{host}/{name}"
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def run(url: str, folder: Path, args: argparse.Namespace) -> None:
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / "30-sla.yaml").write_text(HOURS)
    config = folder / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "instance": {
                    "ticket_prefix": "ACME",
                    "support_addresses": ["support@example.com"],
                    "data_dir": str(folder / "var"),
                },
                "database": {"url": url},
                "smtp_out": {"directory": str(folder / "var" / "sent")},
                "rules_dir": str(folder / "rules"),
                "templates_dir": str(ROOT / "templates"),
            }
        )
    )
    app = App.open(load_config(config))  # creates the schema
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = time.perf_counter()
    rows = history(args.tickets, args.messages, now)
    made = time.perf_counter() - start
    start = time.perf_counter()
    if url.startswith("sqlite"):
        app.close()
        fill_sqlite(Path(url[len("sqlite:///") :]), rows)
        app = App.open(load_config(config))
    else:
        fill_postgres(url, rows)
    print(
        f"history: {len(rows[0]):,} tickets, {len(rows[2]):,} messages, {len(rows[1]):,} tags "
        f"(generated in {made:.1f} s, inserted in {time.perf_counter() - start:.1f} s)"
    )

    runs = args.runs
    full, data = timed(lambda: cli(config, "--format", "json", "--since", "60d"), runs)
    month, _ = timed(lambda: cli(config, "--format", "json", "--since", "30d"), runs)
    bh = load_business_hours(app)
    period = resolve_period(now=app.clock.now(), zone=report_zone(bh), since="60d")
    inner, _ = timed(lambda: make_report(app, period, business_hours=bh), runs)
    count, _ = timed(lambda: app.db.execute_sql("SELECT COUNT(*) FROM message").fetchone(), runs)
    naive, loaded = timed(lambda: naive_load(app), runs)
    app.close()
    s = data["summary"]
    print(
        f"covered: created {s['created']:,}, resolved {s['resolved']:,}, "
        f"first responses {s['first_response']['count']:,}, "
        f"{len(data['days'])} days, {len(data['teams'])} teams, {len(data['agents'])} agents"
    )
    print(f"report --format json --since 60d (CLI, all tickets): {full:.2f} s")
    print(f"report --format json --since 30d (CLI):               {month:.2f} s")
    print(f"report queries alone (60d, in process):              {inner:.2f} s")
    print(
        f"baseline SELECT COUNT(*) FROM message:               {count * 1000:.1f} ms "
        f"-> report CLI is {full / count:,.0f}x"
    )
    print(
        f"baseline fetch all {loaded:,} ticket+message rows:  {naive:.2f} s "
        f"-> report CLI is {full / naive:.2f}x, its queries {inner / naive:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=5, help="messages per ticket")
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the median is shown")
    parser.add_argument(
        "--pg",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/test",
        metavar="ADMIN_DSN",
        help="also on PostgreSQL (a private database)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("== SQLite")
        run(f"sqlite:///{folder / 'bench.db'}", folder, args)
        if args.pg:
            print("== PostgreSQL")
            (folder / "pg").mkdir()
            with postgres_db(args.pg) as url:
                run(url, folder / "pg", args)


if __name__ == "__main__":
    main()
